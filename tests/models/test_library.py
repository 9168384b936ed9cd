"""The model tree through the API: kinds, rename, move, delete to the trash, and every path refused."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from aikore.config import Settings
from aikore.models.library import KINDS, linked_kinds


def _models(settings: Settings) -> Path:
    assert settings.models_dir is not None
    return settings.models_dir


def _put(settings: Settings, kind: str, path: str, data: bytes = b"weights") -> Path:
    target = _models(settings) / kind / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return target


def _read(path: str) -> bytes:
    return Path(path).read_bytes()


async def _tree(client: TestClient) -> dict[str, Any]:
    resp = await client.get("/api/models")
    assert resp.status == 200
    return {k["kind"]: k for k in (await resp.json())["kinds"]}


async def _error(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status == status, await resp.text()
    return (await resp.json())["error"]


async def test_the_tree_lists_every_kind_with_files_totals_and_hides_parts(
    models_client: TestClient, settings: Settings
) -> None:
    _put(settings, "loras", "style/a.safetensors", b"x" * 10)
    _put(settings, "loras", "b.safetensors", b"y" * 5)
    _put(settings, "loras", "c.safetensors.part", b"half")
    tree = await _tree(models_client)
    assert list(tree) == list(KINDS)
    assert [f["path"] for f in tree["loras"]["files"]] == ["b.safetensors", "style/a.safetensors"]
    assert tree["loras"]["total_bytes"] == 15 and tree["loras"]["count"] == 2
    assert tree["vae"]["files"] == [] and tree["vae"]["instances"] == []


async def test_rename_move_and_delete_to_the_trash(models_client: TestClient, settings: Settings) -> None:
    _put(settings, "checkpoints", "old.safetensors")
    resp = await models_client.post(
        "/api/models/move", json={"kind": "checkpoints", "path": "old.safetensors", "new_path": "new.safetensors"}
    )
    assert resp.status == 200 and (await resp.json())["path"] == "new.safetensors"
    resp = await models_client.post(
        "/api/models/move", json={"kind": "checkpoints", "path": "new.safetensors", "new_kind": "diffusion_models"}
    )
    assert resp.status == 200
    assert (_models(settings) / "diffusion_models" / "new.safetensors").read_bytes() == b"weights"
    resp = await models_client.post("/api/models/delete", json={"kind": "diffusion_models", "path": "new.safetensors"})
    assert resp.status == 200
    trashed = (await resp.json())["trashed_to"]
    assert Path(trashed).parent == settings.data_dir / "trash" and _read(trashed) == b"weights"
    assert (await _tree(models_client))["diffusion_models"]["files"] == []


async def test_a_move_never_overwrites(models_client: TestClient, settings: Settings) -> None:
    _put(settings, "vae", "a.pt")
    _put(settings, "vae", "b.pt")
    resp = await models_client.post("/api/models/move", json={"kind": "vae", "path": "a.pt", "new_path": "b.pt"})
    assert (await _error(resp, 409))["field"] == "new_path"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "loras", "path": "../../aikore.db"}, "path"),
        ({"kind": "loras", "path": "/etc/passwd"}, "path"),
        ({"kind": "loras", "path": "a\u0000b"}, "path"),
        ({"kind": "loras", "path": ".hidden"}, "path"),
        ({"kind": "nope", "path": "a"}, "kind"),
        ({"kind": "../loras", "path": "a"}, "kind"),
    ],
)
async def test_paths_that_leave_the_models_folder_and_unknown_kinds_are_refused(
    models_client: TestClient, body: dict[str, str], field: str
) -> None:
    error = await _error(await models_client.post("/api/models/delete", json=body), 400)
    assert error["field"] == field and error["message"].startswith(f"{field}:")


async def test_a_symlink_that_leads_out_of_the_models_folder_is_refused(
    models_client: TestClient, settings: Settings, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("keep")
    (_models(settings) / "loras").mkdir(parents=True, exist_ok=True)
    os.symlink(outside, _models(settings) / "loras" / "escape")
    resp = await models_client.post("/api/models/delete", json={"kind": "loras", "path": "escape/secret.txt"})
    assert "outside the models folder" in (await _error(resp, 400))["message"]
    assert (outside / "secret.txt").read_text() == "keep"


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"url": "ftp://example.org/a.bin", "kind": "loras"}, "url", "http:// or https://"),
        ({"url": "file:///etc/passwd", "kind": "loras"}, "url", "http:// or https://"),
        ({"url": "http://x/a.bin", "kind": "shoes"}, "kind", "must be one of"),
        ({"url": "http://x/a.bin", "kind": "loras", "filename": "../a.bin"}, "filename", "inside the models folder"),
        ({"url": "http://x/a.bin", "kind": "loras", "sha256": "abc"}, "sha256", "64 hexadecimal"),
        ({"source": "huggingface", "repo": "no-slash", "file": "a", "kind": "loras"}, "repo", "owner/name"),
    ],
)
async def test_bad_download_input_is_a_400_naming_the_field(
    models_client: TestClient, body: dict[str, str], field: str, words: str
) -> None:
    error = await _error(await models_client.post("/api/models/downloads", json=body), 400)
    assert error["field"] == field and words in error["message"], error


async def test_a_download_from_aikore_itself_is_refused(models_client: TestClient) -> None:
    port = models_client.server.port
    for host in ("127.0.0.1", "localhost"):
        body = {"url": f"http://{host}:{port}/api/instances", "kind": "loras", "filename": "x.bin"}
        error = await _error(await models_client.post("/api/models/downloads", json=body), 400)
        assert error["field"] == "url" and "AiKore itself" in error["message"]


async def test_a_download_to_an_existing_file_is_a_409(models_client: TestClient, settings: Settings) -> None:
    _put(settings, "loras", "a.bin")
    body = {"url": "http://127.0.0.1:9/a.bin", "kind": "loras"}
    assert (await _error(await models_client.post("/api/models/downloads", json=body), 409))["field"] == "filename"


async def test_secrets_are_never_returned_and_unknown_ones_are_404(models_client: TestClient) -> None:
    resp = await models_client.put("/api/models/secrets/civitai", json={"value": "very-secret"})
    assert "very-secret" not in await resp.text()
    assert (await (await models_client.get("/api/models/secrets")).json())["civitai"] == {"set": True}
    assert (await models_client.delete("/api/models/secrets/civitai")).status == 200
    assert (await (await models_client.get("/api/models/secrets")).json())["civitai"] == {"set": False}
    await _error(await models_client.put("/api/models/secrets/github", json={"value": "x"}), 404)


def test_linked_kinds_reads_the_shared_folders_a_launch_script_links() -> None:
    script = (
        'aik_link_models "$app" \\\n\tmodels/Stable-diffusion=checkpoints models/Lora=loras \\\n'
        "\tembeddings=embeddings\naik_link_dir x y\n"
    )
    assert linked_kinds(script) == {"checkpoints", "loras", "embeddings"}
    assert linked_kinds('aik_link_models "$app/models" clip=clip unet=unet vae=vae\n') == {"clip", "unet", "vae"}


async def test_the_tree_names_the_instances_that_see_each_kind(models_client: TestClient) -> None:
    for name, blueprint in (("comfy", "comfyui"), ("gym", "fluxgym")):
        resp = await models_client.post("/api/instances", json={"name": name, "blueprint": blueprint})
        assert resp.status == 201, await resp.text()
    tree = await _tree(models_client)
    assert [i["name"] for i in tree["unet"]["instances"]] == ["comfy", "gym"]
    assert [i["name"] for i in tree["loras"]["instances"]] == ["comfy"]
