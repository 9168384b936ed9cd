"""Instance CRUD and script API through HTTP: every validation rule, and nothing left half-done."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from aikore.config import Settings


async def _create(client: TestClient, **fields: Any) -> dict[str, Any]:
    body = {"name": "demo1", "blueprint": "demo", **fields}
    resp = await client.post("/api/instances", json=body)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def _error(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status == status, await resp.text()
    body = await resp.json()
    assert set(body["error"]) == {"code", "message", "field"} and body["error"]["message"]
    # The field at fault is named apart from the message, and the message starts with it.
    field = body["error"]["field"]
    assert field is None or body["error"]["message"].startswith(f"{field}:")
    return body["error"]


def _rows(settings: Settings) -> list[str]:
    con = sqlite3.connect(settings.db_path)
    try:
        return [r[0] for r in con.execute("SELECT name FROM instances ORDER BY id")]
    finally:
        con.close()


def _folders(settings: Settings) -> list[str]:
    return sorted(p.name for p in settings.instances_dir.iterdir()) if settings.instances_dir.exists() else []


async def test_create_copies_blueprint_and_lists_it(client: TestClient, settings: Settings) -> None:
    inst = await _create(client, gpu_ids="0, 1", autostart=True)
    assert inst["name"] == "demo1" and inst["blueprint"] == "demo" and inst["gpu_ids"] == "0,1"
    assert inst["status"] == "stopped" and inst["autostart"] is True and inst["url"] == "/app/demo1/"
    script = settings.instances_dir / "demo1" / "launch.sh"
    assert script.read_text() == (Path(__file__).parents[2] / "blueprints" / "demo.sh").read_text()
    listed = await (await client.get("/api/instances")).json()
    assert [i["id"] for i in listed] == [inst["id"]]
    one = await (await client.get(f"/api/instances/{inst['id']}")).json()
    assert one["name"] == "demo1"


@pytest.mark.parametrize(
    "name",
    ["..", "../etc", "a/b", "with space", "UPPER", "-leading", "_leading", "", "x" * 64, "é", "a\x00b", 7, None],
)
async def test_bad_names_are_400_and_leave_nothing(client: TestClient, settings: Settings, name: Any) -> None:
    err = await _error(await client.post("/api/instances", json={"name": name, "blueprint": "demo"}), 400)
    assert err["code"] == "invalid_field" and err["message"].startswith("name")
    assert err["field"] == "name"
    assert _rows(settings) == [] and _folders(settings) == []


async def test_longest_valid_name_is_accepted(client: TestClient) -> None:
    assert (await _create(client, name="a" * 63))["name"] == "a" * 63


@pytest.mark.parametrize("gpu_ids", ["0;rm -rf /", "a,b", "0,,1", "1,1", "$(id)", "-1", 3, [0, "1"], True])
async def test_bad_gpu_ids_are_400(client: TestClient, settings: Settings, gpu_ids: Any) -> None:
    resp = await client.post("/api/instances", json={"name": "g", "blueprint": "demo", "gpu_ids": gpu_ids})
    err = await _error(resp, 400)
    assert err["message"].startswith("gpu_ids")
    assert _rows(settings) == [] and _folders(settings) == []


async def test_gpu_ids_as_list_is_normalised(client: TestClient) -> None:
    assert (await _create(client, gpu_ids=[2, 0]))["gpu_ids"] == "2,0"


async def test_unknown_blueprint_is_400(client: TestClient, settings: Settings) -> None:
    for bp in ["nope", "../demo", "demo.sh", "/etc/passwd"]:
        err = await _error(await client.post("/api/instances", json={"name": "x", "blueprint": bp}), 400)
        assert "blueprint" in err["message"]
    assert _rows(settings) == [] and _folders(settings) == []


async def test_duplicate_name_is_409(client: TestClient, settings: Settings) -> None:
    await _create(client)
    err = await _error(await client.post("/api/instances", json={"name": "demo1", "blueprint": "demo"}), 409)
    assert err["code"] == "name_taken"
    assert _rows(settings) == ["demo1"] and _folders(settings) == ["demo1"]


async def test_leftover_folder_is_409_and_untouched(client: TestClient, settings: Settings) -> None:
    keep = settings.instances_dir / "old" / "model.safetensors"
    keep.parent.mkdir(parents=True)
    keep.write_text("precious")
    err = await _error(await client.post("/api/instances", json={"name": "old", "blueprint": "demo"}), 409)
    assert err["code"] == "folder_exists" and keep.read_text() == "precious" and _rows(settings) == []


async def test_public_port_outside_pool_or_taken_is_409(client: TestClient, settings: Settings) -> None:
    err = await _error(
        await client.post("/api/instances", json={"name": "p", "blueprint": "demo", "public_port": 80}), 409
    )
    assert "public_port" in err["message"] and "pool" in err["message"]
    await _create(client, name="p1", public_port=19005)
    err = await _error(
        await client.post("/api/instances", json={"name": "p2", "blueprint": "demo", "public_port": 19005}), 409
    )
    assert "p1" in err["message"]
    assert _rows(settings) == ["p1"] and _folders(settings) == ["p1"]


async def test_wrong_types_and_unknown_fields_are_400(client: TestClient) -> None:
    for body in [
        {"name": "a", "blueprint": "demo", "autostart": "yes"},
        {"name": "a", "blueprint": "demo", "public_port": "19001"},
        {"name": "a", "blueprint": "demo", "restart_policy": "always"},
        {"name": "a", "blueprint": "demo", "colour": "red"},
        {"blueprint": "demo"},
    ]:
        await _error(await client.post("/api/instances", json=body), 400)


@pytest.mark.parametrize("raw", [b"{", b"[1,2]", b"\xff\xfe", b"", b'"name"', b"null"])
async def test_malformed_json_is_400(client: TestClient, settings: Settings, raw: bytes) -> None:
    resp = await client.post("/api/instances", data=raw, headers={"Content-Type": "application/json"})
    assert (await _error(resp, 400))["code"] == "invalid_json"
    assert _rows(settings) == []


async def test_huge_body_is_413(client: TestClient) -> None:
    resp = await client.post("/api/instances", data=b"{" + b" " * (2 * 1024 * 1024) + b"}")
    await _error(resp, 413)


@pytest.mark.parametrize("path", ["/api/instances/999", "/api/instances/abc", "/api/instances/999/script"])
async def test_unknown_id_is_404(client: TestClient, path: str) -> None:
    await _error(await client.get(path), 404)


async def test_unknown_id_404_on_patch_and_delete(client: TestClient) -> None:
    await _error(await client.patch("/api/instances/42", json={"autostart": True}), 404)
    await _error(await client.delete("/api/instances/42"), 404)


async def test_rename_moves_folder_with_its_files(client: TestClient, settings: Settings) -> None:
    inst = await _create(client)
    marker = settings.instances_dir / "demo1" / "output" / "image.png"
    marker.write_bytes(b"png")
    resp = await client.patch(f"/api/instances/{inst['id']}", json={"name": "renamed", "gpu_ids": "1"})
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert (body["name"], body["gpu_ids"], body["url"]) == ("renamed", "1", "/app/renamed/")
    assert _folders(settings) == ["renamed"]
    assert (settings.instances_dir / "renamed" / "output" / "image.png").read_bytes() == b"png"


async def test_rename_onto_existing_name_is_409_and_changes_nothing(client: TestClient, settings: Settings) -> None:
    a = await _create(client, name="a")
    await _create(client, name="b")
    await _error(await client.patch(f"/api/instances/{a['id']}", json={"name": "b"}), 409)
    await _error(await client.patch(f"/api/instances/{a['id']}", json={"name": "Bad Name"}), 400)
    assert _rows(settings) == ["a", "b"] and _folders(settings) == ["a", "b"]


async def test_script_round_trip_keeps_backup(client: TestClient, settings: Settings) -> None:
    inst = await _create(client)
    folder = settings.instances_dir / "demo1"
    original = (folder / "launch.sh").read_text()
    got = await (await client.get(f"/api/instances/{inst['id']}/script")).json()
    assert got["content"] == original
    resp = await client.put(f"/api/instances/{inst['id']}/script", json={"content": "#!/bin/bash\necho v2\n"})
    assert resp.status == 200
    assert (folder / "launch.sh").read_text() == "#!/bin/bash\necho v2\n"
    assert (folder / "launch.sh.bak").read_text() == original
    await client.put(f"/api/instances/{inst['id']}/script", json={"content": "echo v3\n"})
    assert (folder / "launch.sh.bak").read_text() == "#!/bin/bash\necho v2\n"
    assert (folder / "launch.sh").stat().st_mode & 0o111


async def test_bad_script_bodies_change_nothing(client: TestClient, settings: Settings) -> None:
    inst = await _create(client)
    script = settings.instances_dir / "demo1" / "launch.sh"
    before = script.read_text()
    for body in [{"content": 5}, {}, {"content": "a\x00b"}, {"content": "x", "mode": 777}]:
        await _error(await client.put(f"/api/instances/{inst['id']}/script", json=body), 400)
    await _error(await client.put(f"/api/instances/{inst['id']}/script", json={"content": "x" * 600_000}), 413)
    assert script.read_text() == before and not (script.parent / "launch.sh.bak").exists()


async def test_delete_moves_folder_to_trash(client: TestClient, settings: Settings) -> None:
    inst = await _create(client)
    (settings.instances_dir / "demo1" / "output" / "keep.txt").write_text("mine")
    resp = await client.delete(f"/api/instances/{inst['id']}")
    assert resp.status == 200
    moved = Path((await resp.json())["folder_moved_to"])
    assert (moved / "output" / "keep.txt").read_text() == "mine"
    assert _rows(settings) == [] and _folders(settings) == []
    await _error(await client.get(f"/api/instances/{inst['id']}"), 404)


async def test_blueprints_endpoint_lists_demo(client: TestClient) -> None:
    blueprints = await (await client.get("/api/blueprints")).json()
    demo = next(b for b in blueprints if b["id"] == "demo")
    assert demo["name"] == "Demo" and demo["health"] == "/health" and demo["source"] == "builtin"


async def test_custom_blueprint_dir_is_discovered(client: TestClient, settings: Settings) -> None:
    assert settings.blueprints_dir is not None
    (settings.blueprints_dir / "mine.sh").write_text("#!/bin/bash\necho mine\n")
    ids = [b["id"] for b in await (await client.get("/api/blueprints")).json()]
    assert "mine" in ids
    assert (await _create(client, name="m", blueprint="mine"))["blueprint"] == "mine"


async def test_header_edits_in_launch_sh_change_the_proxy_mode(client: TestClient) -> None:
    inst = await _create(client)
    assert inst["proxy_mode"] == "strip-prefix"
    script = (await (await client.get(f"/api/instances/{inst['id']}/script")).json())["content"]
    edited = script.replace("# aikore.proxy: strip-prefix", "# aikore.proxy: keep-prefix")
    assert (await client.put(f"/api/instances/{inst['id']}/script", json={"content": edited})).status == 200
    assert (await (await client.get(f"/api/instances/{inst['id']}")).json())["proxy_mode"] == "keep-prefix"
