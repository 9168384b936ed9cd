"""The Models view in headless Chromium: add a download, watch its bar, see the file, rename, delete."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import expect

from tests.dashboard.conftest import Dashboard, browser, dashboard  # noqa: F401 - fixtures used here
from tests.models.fileserver import FileServer, sha256


def test_a_download_shows_its_progress_lands_in_its_kind_and_can_be_renamed_and_deleted(
    dashboard: Callable[..., Dashboard], files: FileServer, tmp_path: Path  # noqa: F811
) -> None:
    files.slow_pause = 0.05
    data = files.add("style.safetensors", 4 * 1024 * 1024)
    board = dashboard()
    board.login("/#/models")
    page = board.page
    expect(page.locator("#models-title")).to_be_visible()
    expect(page.locator("details[data-kind='loras']")).to_be_visible()

    page.fill("#download-url", "ftp://example.org/x.bin")
    page.select_option("#download-kind", "loras")
    page.click("#download-submit")
    expect(page.locator("#download-form [data-error-for='url']")).to_contain_text("http:// or https://")

    page.fill("#download-url", f"{files.base}/slow/style.safetensors")
    page.get_by_text("File name and checksum").click()
    page.fill("#download-sha256", sha256(data))
    page.click("#download-submit")
    item = page.locator("li.download").first
    expect(item.locator("progress")).to_be_visible()
    expect(item.locator("[data-show='progress']")).to_contain_text("ETA")
    board.shot("models-downloading", readme=True)
    expect(item).to_have_attribute("data-state", "done", timeout=60_000)
    row = page.locator("tr[data-model='loras/style.safetensors']")
    expect(row).to_be_visible()
    expect(row).to_contain_text(sha256(data)[:12])
    models = tmp_path / "data" / "models"
    assert (models / "loras" / "style.safetensors").read_bytes() == data

    row.get_by_role("button", name="Rename / move").click()
    page.fill("#model-move-name", "renamed.safetensors")
    page.select_option("#model-move-kind", "checkpoints")
    page.click("#model-move-save")
    renamed = page.locator("tr[data-model='checkpoints/renamed.safetensors']")
    expect(renamed).to_be_visible()
    assert (models / "checkpoints" / "renamed.safetensors").read_bytes() == data

    renamed.get_by_role("button", name="Delete").click()
    expect(page.locator("#confirm-dialog")).to_be_visible()
    page.click("#confirm-ok")
    expect(renamed).to_have_count(0)
    assert not (models / "checkpoints" / "renamed.safetensors").exists()
    assert any(p.name.endswith("renamed.safetensors") for p in (tmp_path / "data" / "trash").iterdir())

    page.fill("#download-url", f"{files.base}/status/404")
    page.fill("#download-filename", "missing.safetensors")
    page.fill("#download-sha256", "")
    page.click("#download-submit")
    failed = page.locator("li.download[data-state='failed']")
    expect(failed).to_contain_text("HTTP 404")
    expect(failed.get_by_role("button", name="Retry")).to_be_visible()
