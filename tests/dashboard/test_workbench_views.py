"""Terminal, files and outputs from an instance's row, in headless Chromium, with screenshots."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from PIL import Image, PngImagePlugin
from playwright.sync_api import expect

from tests.dashboard.conftest import Dashboard

PHONE = {"width": 390, "height": 844}
PROMPT = {
    "3": {"class_type": "KSampler", "inputs": {"seed": 42424242, "steps": 28, "cfg": 6.5,
                                               "sampler_name": "dpmpp_2m", "scheduler": "karras"}},
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sdxl_base.safetensors"}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a lighthouse at dusk, volumetric light"}},
}


def _png(path: Path, color: tuple[int, int, int]) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("prompt", json.dumps(PROMPT))
    info.add_text("workflow", json.dumps({"nodes": [{"id": 3, "type": "KSampler"}]}))
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", (768, 512), color)
    for x in range(0, 768, 4):
        image.putpixel((x, (x * 2) % 512), (255, 255, 255))
    image.save(path, pnginfo=info)


def _instance(board: Dashboard, name: str) -> tuple[int, Path]:
    inst = board.api("POST", "/api/instances", {"name": name, "blueprint": "demo", "gpu_ids": "0"})
    return inst["id"], board.server.data_dir / "instances" / name


def test_terminal_runs_a_command_in_the_instance_environment(dashboard: Callable[..., Dashboard]) -> None:
    board = dashboard()
    board.login()
    _instance(board, "studio")
    page = board.page
    row = page.locator(board.row("studio"))
    row.locator(".more-toggle").click()
    row.locator("[data-action='terminal']").click()
    dialog = board.tool("terminal")
    expect(dialog).to_be_visible()
    screen = dialog.locator(".terminal-host:not([hidden]) .xterm-rows")
    expect(screen).to_contain_text("/instances/studio", timeout=20_000)
    page.keyboard.type("echo name=$INSTANCE_NAME gpus=$CUDA_VISIBLE_DEVICES; ls --color=always\n")
    expect(screen).to_contain_text("name=studio gpus=0")
    expect(screen).to_contain_text("launch.sh")
    board.shot("terminal", readme=True)
    # Every key goes to the shell but F6, which leaves it for the other pane and comes back.
    page.keyboard.press("F6")
    expect(page.locator("#main")).to_be_focused()
    page.keyboard.press("F6")
    expect(page.locator("#tool-terminal-tab")).to_be_focused()
    # A second shell beside the first, then both end with the Terminal tab.
    page.click("#terminal-new")
    expect(dialog.locator(".terminal-tab")).to_have_count(2)
    page.locator("#tools-tabs [data-tool='terminal'] .tool-close").click()
    expect(dialog).to_be_hidden()
    page.wait_for_function("fetch('/api/terminals').then(r => r.json()).then(l => l.length === 0)")


def test_files_lists_uploads_and_edits(dashboard: Callable[..., Dashboard], tmp_path: Path) -> None:
    board = dashboard()
    board.login()
    _, folder = _instance(board, "studio")
    page = board.page
    board.action("studio", "files").click()
    dialog = board.tool("files")
    expect(dialog.locator("tr[data-path='launch.sh']")).to_be_visible()
    # Files focuses nothing of its own: the keyboard lands on its new tab, the panel one Tab away.
    expect(page.locator("#tool-files-tab")).to_be_focused()
    expect(page.locator("#tool-files-tab")).to_have_attribute("title", "Files — studio")
    upload = tmp_path / "workflow.json"
    upload.write_text('{"nodes": []}\n')
    page.set_input_files("#files-upload", str(upload))
    expect(dialog.locator("tr[data-path='workflow.json']")).to_be_visible()
    expect(page.locator("#files-progress-text")).to_contain_text("Uploaded 1 file")
    assert (folder / "workflow.json").read_text() == '{"nodes": []}\n'
    board.shot("files", readme=True)
    dialog.locator("tr[data-path='workflow.json'] button", has_text="Edit").click()
    expect(page.locator("#files-editor")).to_be_visible()
    page.locator("#files-editor-host .CodeMirror").click()
    page.keyboard.press("Control+End")
    page.keyboard.type('{"edited": true}\n')
    page.click("#files-editor-save")
    expect(page.locator("#files-editor-dirty")).to_have_text("")
    assert '{"edited": true}' in (folder / "workflow.json").read_text()
    board.shot("files-editor")


def test_outputs_gallery_shows_parameters_and_new_images_live(dashboard: Callable[..., Dashboard]) -> None:
    board = dashboard()
    board.login()
    _, folder = _instance(board, "studio")
    _png(folder / "output" / "ComfyUI_00001_.png", (40, 90, 160))
    _png(folder / "output" / "ComfyUI_00002_.png", (160, 70, 40))
    page = board.page
    board.action("studio", "outputs").click()
    grid = page.locator("#outputs-grid")
    expect(grid.locator(".output-card")).to_have_count(2)
    _png(folder / "output" / "ComfyUI_00003_.png", (60, 150, 80))
    expect(grid.locator(".output-card")).to_have_count(3)
    expect(grid.locator(".output-card").first).to_have_attribute("data-path", "ComfyUI_00003_.png")
    board.shot("outputs")
    grid.locator(".output-card").first.click()
    params = page.locator("#outputs-params")
    expect(params).to_contain_text("a lighthouse at dusk")
    expect(params).to_contain_text("42424242")
    expect(params).to_contain_text("sdxl_base.safetensors")
    board.shot("outputs-detail", readme=True)


def test_outputs_and_files_fit_a_phone(dashboard: Callable[..., Dashboard]) -> None:
    board = dashboard(viewport=PHONE)
    board.login()
    _, folder = _instance(board, "studio")
    _png(folder / "output" / "ComfyUI_00001_.png", (40, 90, 160))
    page = board.page
    board.action("studio", "outputs").click()
    page.locator("#outputs-grid .output-card").first.click()
    expect(page.locator("#outputs-params")).to_contain_text("42424242")
    board.shot("outputs-phone")
    page.locator("#outputs-dialog [data-close]").click()
    board.action("studio", "files").click()
    expect(page.locator("#tool-files tr[data-path='launch.sh']")).to_be_visible()
    width = page.evaluate("[document.documentElement.scrollWidth, document.getElementById('tool-files').scrollWidth]")
    assert max(width) <= PHONE["width"] + 1, width
    board.shot("files-phone")
