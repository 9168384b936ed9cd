"""The outputs gallery: newest first, cached thumbnails, PNG parameters, live changes, confinement."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from PIL import Image, PngImagePlugin

from aikore.config import Settings
from aikore.outputs import gallery

COMFY_PROMPT = {
    "3": {"class_type": "KSampler", "inputs": {"seed": 156680208700286, "steps": 20, "cfg": 8.0,
                                               "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0,
                                               "model": ["4", 0], "positive": ["6", 0]}},
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}},
    "6": {"class_type": "CLIPTextEncode",
          "inputs": {"text": "beautiful scenery nature glass bottle", "clip": ["4", 1]}},
}
A1111 = (
    "a cat in a hat\nNegative prompt: blurry, lowres\n"
    'Steps: 30, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 1234, Size: 512x512, Model: "sd, xl"'
)


def _png(path: Path, color: str = "red", **text: str) -> None:
    info = PngImagePlugin.PngInfo()
    for key, value in text.items():
        info.add_text(key, value)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (800, 600), color).save(path, pnginfo=info)


@pytest.fixture
async def outputs(client: TestClient, settings: Settings) -> tuple[str, Path]:
    resp = await client.post("/api/instances", json={"name": "gal", "blueprint": "demo"})
    assert resp.status == 201, await resp.text()
    folder = settings.instances_dir / "gal" / "output"
    folder.mkdir(exist_ok=True)
    return f"/api/instances/{(await resp.json())['id']}/outputs", folder


async def test_gallery_lists_images_and_videos_newest_first(client: TestClient, outputs: tuple[str, Path]) -> None:
    base, folder = outputs
    _png(folder / "old.png")
    (folder / "sub").mkdir()
    (folder / "sub" / "clip.mp4").write_bytes(b"\x00" * 10)
    _png(folder / "new.png", "blue")
    (folder / "notes.txt").write_text("not media")
    now = time.time()
    for age, name in ((300, "old.png"), (200, "sub/clip.mp4"), (100, "new.png")):
        os.utime(folder / name, (now - age, now - age))
    body = await (await client.get(base)).json()
    assert body["total"] == 3
    assert [(i["path"], i["kind"]) for i in body["items"]] == [
        ("new.png", "image"), ("sub/clip.mp4", "video"), ("old.png", "image")]
    page = await (await client.get(base, params={"limit": "1", "offset": "1"})).json()
    assert [i["path"] for i in page["items"]] == ["sub/clip.mp4"]


async def test_png_with_comfyui_metadata_shows_its_parameters(client: TestClient, outputs: tuple[str, Path]) -> None:
    base, folder = outputs
    workflow = {"last_node_id": 9, "nodes": [{"id": 3, "type": "KSampler"}]}
    _png(folder / "ComfyUI_00001_.png", prompt=json.dumps(COMFY_PROMPT), workflow=json.dumps(workflow))
    body = await (await client.get(f"{base}/parameters", params={"path": "ComfyUI_00001_.png"})).json()
    summary = body["comfyui"]["summary"]
    assert summary["seed"] == 156680208700286 and summary["steps"] == 20 and summary["cfg"] == 8.0
    assert summary["sampler_name"] == "euler" and summary["model"] == "v1-5-pruned-emaonly.safetensors"
    assert summary["prompts"] == ["beautiful scenery nature glass bottle"]
    assert body["comfyui"]["workflow"] == workflow and body["a1111"] is None


async def test_png_with_a1111_parameters_is_parsed(client: TestClient, outputs: tuple[str, Path]) -> None:
    base, folder = outputs
    _png(folder / "00001-1234.png", parameters=A1111)
    body = await (await client.get(f"{base}/parameters", params={"path": "00001-1234.png"})).json()
    assert body["a1111"]["prompt"] == "a cat in a hat" and body["a1111"]["negative_prompt"] == "blurry, lowres"
    assert body["a1111"]["settings"]["Seed"] == "1234" and body["a1111"]["settings"]["Model"] == "sd, xl"
    assert body["a1111"]["settings"]["Sampler"] == "DPM++ 2M Karras" and body["comfyui"] is None


async def test_thumbnail_is_made_once_and_cached(client: TestClient, outputs: tuple[str, Path],
                                                 settings: Settings) -> None:
    base, folder = outputs
    _png(folder / "a.png")
    resp = await client.get(f"{base}/thumbnail", params={"path": "a.png"})
    assert resp.status == 200 and resp.headers["Content-Type"] == "image/jpeg"
    cache = settings.instances_dir / "gal" / ".thumbnails"
    [thumb] = list(cache.iterdir())
    made = thumb.stat().st_mtime_ns
    with Image.open(thumb) as img:
        assert max(img.size) == 384
    assert (await client.get(f"{base}/thumbnail", params={"path": "a.png"})).status == 200
    assert [p.stat().st_mtime_ns for p in cache.iterdir()] == [made]
    (folder / "broken.png").write_bytes(b"not a png")
    assert (await client.get(f"{base}/thumbnail", params={"path": "broken.png"})).status == 415


async def test_full_view_download_and_delete_to_the_trash(client: TestClient, outputs: tuple[str, Path],
                                                          settings: Settings) -> None:
    base, folder = outputs
    _png(folder / "a.png")
    resp = await client.get(f"{base}/file", params={"path": "a.png"})
    assert resp.status == 200 and resp.headers["Content-Type"] == "image/png"
    assert resp.headers["Content-Disposition"].startswith("inline")
    resp = await client.get(f"{base}/file", params={"path": "a.png", "download": "1"})
    assert resp.headers["Content-Disposition"].startswith("attachment")
    assert (await client.delete(f"{base}/file", params={"path": "a.png"})).status == 204
    assert not (folder / "a.png").exists()
    assert any(p.name.endswith("a.png") for p in (settings.data_dir / "trash" / "files").iterdir())


@pytest.mark.parametrize("bad", ["../launch.sh", "/etc/passwd", "a\x00.png", "../../aikore.db", "out.png"])
async def test_paths_outside_the_output_folder_are_refused(client: TestClient, outputs: tuple[str, Path],
                                                           bad: str, tmp_path: Path) -> None:
    base, folder = outputs
    _png(tmp_path / "elsewhere.png")
    (folder / "out.png").symlink_to(tmp_path / "elsewhere.png")
    for sub in ("file", "thumbnail", "parameters"):
        resp = await client.get(f"{base}/{sub}", params={"path": bad})
        assert resp.status in (400, 403), (sub, bad, resp.status)
    assert (await client.delete(f"{base}/file", params={"path": bad})).status in (400, 403)
    assert (tmp_path / "elsewhere.png").exists()


async def test_changes_report_new_and_removed_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gallery, "POLL", 0.05)
    _png(tmp_path / "first.png")
    closing = asyncio.Event()
    stream = gallery.changes(tmp_path, closing)
    waiting = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.2)
    _png(tmp_path / "second.png")
    kind, item = await asyncio.wait_for(waiting, 5)
    assert kind == "added" and item["path"] == "second.png"
    (tmp_path / "first.png").unlink()
    assert await asyncio.wait_for(anext(stream), 5) == ("removed", {"path": "first.png"})
    closing.set()


async def test_live_stream_sends_new_outputs(client: TestClient, outputs: tuple[str, Path],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gallery, "POLL", 0.1)
    base, folder = outputs
    resp = await client.get(f"{base}/stream")
    assert resp.status == 200
    await asyncio.sleep(0.3)
    _png(folder / "live.png")
    text = b""
    async with asyncio.timeout(10):
        while b"live.png" not in text:
            text += await resp.content.readany()
    assert b"event: added" in text
    resp.close()


async def test_jpeg_with_a1111_exif_user_comment_is_parsed(client: TestClient, outputs: tuple[str, Path]) -> None:
    base, folder = outputs
    exif = Image.Exif()
    # What A1111 writes through piexif: "UNICODE\0" then the text in UTF-16 big-endian.
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\x00" + A1111.encode("utf-16-be")
    Image.new("RGB", (64, 64), "green").save(folder / "00002-1234.jpg", exif=exif)
    body = await (await client.get(f"{base}/parameters", params={"path": "00002-1234.jpg"})).json()
    assert body["a1111"]["prompt"] == "a cat in a hat" and body["a1111"]["settings"]["Steps"] == "30"
