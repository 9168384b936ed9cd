"""The file browser's API: listing, folders, rename, trash, text, upload and download, confinement."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from aikore.config import Settings


@pytest.fixture
async def folder(client: TestClient, settings: Settings) -> tuple[str, Path]:
    resp = await client.post("/api/instances", json={"name": "files1", "blueprint": "demo"})
    assert resp.status == 201, await resp.text()
    inst = await resp.json()
    return f"/api/files/{inst['id']}", settings.instances_dir / "files1"


async def _json(resp: Any, status: int) -> Any:
    assert resp.status == status, await resp.text()
    return await resp.json() if status != 204 else None


async def test_list_shows_folders_first_with_sizes_and_dates(client: TestClient, folder: tuple[str, Path]) -> None:
    base, path = folder
    (path / "b.txt").write_text("hello")
    (path / "sub").mkdir()
    listing = await _json(await client.get(base), 200)
    names = [e["name"] for e in listing["entries"]]
    assert names[0] in ("config", "logs", "output", "sub") and "launch.sh" in names and "b.txt" in names
    dirs = [e for e in listing["entries"] if e["type"] == "dir"]
    assert listing["entries"][: len(dirs)] == dirs
    b = next(e for e in listing["entries"] if e["name"] == "b.txt")
    assert b["size"] == 5 and b["path"] == "b.txt" and b["mtime"] > 0
    sub = await _json(await client.get(base, params={"path": "sub"}), 200)
    assert sub == {"path": "sub", "entries": []}


async def test_mkdir_rename_and_delete_to_the_trash(client: TestClient, folder: tuple[str, Path],
                                                    settings: Settings) -> None:
    base, path = folder
    made = await _json(await client.post(f"{base}/folders", json={"name": "workflows"}), 201)
    assert made["type"] == "dir" and (path / "workflows").is_dir()
    await _json(await client.post(f"{base}/folders", json={"name": "workflows"}), 409)
    await _json(await client.put(f"{base}/text", json={"path": "workflows/a.json", "content": "{}"}), 200)
    renamed = await _json(await client.post(f"{base}/rename", json={"path": "workflows/a.json", "name": "b.json"}), 200)
    assert renamed["path"] == "workflows/b.json" and (path / "workflows" / "b.json").read_text() == "{}"
    await _json(await client.delete(f"{base}/entry", params={"path": "workflows"}), 204)
    assert not (path / "workflows").exists()
    trashed = list((settings.data_dir / "trash" / "files").iterdir())
    assert len(trashed) == 1 and (trashed[0] / "b.json").read_text() == "{}"


async def test_text_round_trip_keeps_the_mode(client: TestClient, folder: tuple[str, Path]) -> None:
    base, path = folder
    text = await _json(await client.get(f"{base}/text", params={"path": "launch.sh"}), 200)
    assert text["content"].startswith("#!") and text["path"] == "launch.sh"
    mode = (path / "launch.sh").stat().st_mode
    await _json(await client.put(f"{base}/text", json={"path": "launch.sh", "content": "echo hi\n"}), 200)
    assert (path / "launch.sh").read_text() == "echo hi\n" and (path / "launch.sh").stat().st_mode == mode
    (path / "blob.bin").write_bytes(b"\xff\xfe\x00")
    await _json(await client.get(f"{base}/text", params={"path": "blob.bin"}), 415)


async def test_upload_and_download_a_file_and_a_folder(client: TestClient, folder: tuple[str, Path]) -> None:
    base, path = folder
    data = os.urandom(3 * 1024 * 1024 + 17)
    entry = await _json(await client.put(f"{base}/upload", params={"path": "output/x.bin"}, data=data), 201)
    assert entry["size"] == len(data) and (path / "output" / "x.bin").read_bytes() == data
    await _json(await client.put(f"{base}/upload", params={"path": "output/x.bin"}, data=b"again"), 409)
    await _json(await client.put(f"{base}/upload", params={"path": "output/x.bin", "overwrite": "1"}, data=b"v2"), 201)
    assert [p.name for p in (path / "output").iterdir()] == ["x.bin"]  # no temp left behind
    resp = await client.get(f"{base}/download", params={"path": "output/x.bin"})
    assert resp.status == 200 and await resp.read() == b"v2"
    assert "x.bin" in resp.headers["Content-Disposition"]
    (path / "output" / "deep" / "er").mkdir(parents=True)
    (path / "output" / "deep" / "er" / "y.txt").write_text("y")
    resp = await client.get(f"{base}/download", params={"path": "output"})
    assert resp.status == 200 and resp.headers["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(await resp.read()))
    assert sorted(archive.namelist()) == ["deep/er/y.txt", "x.bin"]
    assert archive.read("deep/er/y.txt") == b"y"


async def test_models_root_is_the_shared_models_folder(client: TestClient, settings: Settings) -> None:
    await _json(await client.put("/api/files/models/upload", params={"path": "m.safetensors"}, data=b"w"), 201)
    assert settings.models_dir is not None and (settings.models_dir / "m.safetensors").read_bytes() == b"w"
    listing = await _json(await client.get("/api/files/models"), 200)
    assert [e["name"] for e in listing["entries"]] == ["m.safetensors"]


_TRAVERSALS = [
    "..", "../", "../../etc/passwd", "a/../../x", "sub/../..", "/etc/passwd", "//etc/passwd", "x\x00y",
    "\x00", "../files1/launch.sh", "output/../../../aikore.db",
]


@pytest.mark.parametrize("bad", _TRAVERSALS)
async def test_every_traversal_attempt_is_refused(client: TestClient, folder: tuple[str, Path], bad: str,
                                                  settings: Settings) -> None:
    base, _ = folder
    before = sorted(str(p) for p in settings.data_dir.rglob("*"))
    calls = [
        client.get(base, params={"path": bad}),
        client.get(f"{base}/download", params={"path": bad}),
        client.get(f"{base}/text", params={"path": bad}),
        client.put(f"{base}/upload", params={"path": bad}, data=b"x"),
        client.put(f"{base}/text", json={"path": bad, "content": "x"}),
        client.post(f"{base}/folders", json={"path": bad, "name": "n"}),
        client.post(f"{base}/rename", json={"path": bad, "name": "n"}),
        client.delete(f"{base}/entry", params={"path": bad}),
        client.get("/api/files/models", params={"path": bad}),
    ]
    for call in calls:
        resp = await call
        assert resp.status in (400, 403), (bad, resp.status)
        body = await resp.json()
        assert body["error"]["code"] in ("invalid_path", "outside_root", "invalid_name"), body
    assert sorted(str(p) for p in settings.data_dir.rglob("*")) == before


@pytest.mark.parametrize("name", ["..", ".", "a/b", "x\x00", "", "../up"])
async def test_bad_new_names_are_refused(client: TestClient, folder: tuple[str, Path], name: str) -> None:
    base, path = folder
    for resp in (
        await client.post(f"{base}/folders", json={"name": name}),
        await client.post(f"{base}/rename", json={"path": "launch.sh", "name": name}),
    ):
        assert resp.status == 400, (name, resp.status)
    assert (path / "launch.sh").exists()


@pytest.mark.parametrize("path", [-131071, None, ["a"], {"a": 1}, True])
async def test_a_path_that_is_not_a_string_is_a_400_naming_it(client: TestClient, folder: tuple[str, Path],
                                                             path: object) -> None:
    base, where = folder
    for url, body in ((f"{base}/folders", {"path": path, "name": "n"}), (f"{base}/rename", {"path": path, "name": "n"}),
                      (f"{base}/text", {"path": path, "content": ""})):
        resp = await client.request("PUT" if url.endswith("/text") else "POST", url, json=body)
        assert resp.status == 400, (url, path, resp.status)
        assert (await resp.json())["error"]["field"] == "path"
    assert not (where / "n").exists()


async def test_links_pointing_out_are_refused_and_not_archived(client: TestClient, folder: tuple[str, Path],
                                                               tmp_path: Path) -> None:
    base, path = folder
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "key").write_text("s3cret")
    (path / "out").symlink_to(secret)
    (path / "outfile").symlink_to(secret / "key")
    (path / "output" / "in").symlink_to(path / "launch.sh")
    for resp in (
        await client.get(base, params={"path": "out"}),
        await client.get(f"{base}/download", params={"path": "out/key"}),
        await client.get(f"{base}/download", params={"path": "outfile"}),
        await client.get(f"{base}/text", params={"path": "outfile"}),
        await client.put(f"{base}/upload", params={"path": "out/new"}, data=b"x"),
        await client.put(f"{base}/text", json={"path": "outfile", "content": "overwritten"}),
    ):
        assert resp.status == 403, resp.status
    assert (secret / "key").read_text() == "s3cret" and not (secret / "new").exists()
    # A link inside the root is followed; the link itself (not its target) is what gets deleted.
    assert (await client.get(f"{base}/text", params={"path": "output/in"})).status == 200
    resp = await client.get(f"{base}/download", params={"path": ""})
    names = zipfile.ZipFile(io.BytesIO(await resp.read())).namelist()
    assert "launch.sh" in names and not any(n.startswith(("out/", "outfile")) for n in names)
    await _json(await client.delete(f"{base}/entry", params={"path": "out"}), 204)
    assert (secret / "key").read_text() == "s3cret"


async def test_unknown_root_and_top_folder_operations(client: TestClient, folder: tuple[str, Path]) -> None:
    base, _ = folder
    assert (await client.get("/api/files/99")).status == 404
    assert (await client.get("/api/files/etc")).status == 404
    assert (await client.delete(f"{base}/entry", params={"path": ""})).status == 400
    assert (await client.post(f"{base}/rename", json={"path": "", "name": "x"})).status == 400
