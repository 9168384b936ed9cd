"""Custom blueprints on a real aikore: saved from an instance's script, imported, edited and
deleted as files in the custom blueprints folder; built-ins stay read-only."""

from __future__ import annotations

from tests.helpers import REPO
from tests.instances.conftest import call, create, refused

BUILTIN_DEMO = REPO / "blueprints" / "demo.sh"


def test_save_an_instance_script_as_a_blueprint_then_create_edit_and_delete_it(tiny) -> None:
    custom_dir = tiny.data_dir.parent / "blueprints"
    instance = create(tiny, "tuned", blueprint="demo")
    script = call(tiny, "GET", f"/api/instances/{instance['id']}/script")["content"] + "# tuned by hand\n"
    call(tiny, "PUT", f"/api/instances/{instance['id']}/script", {"content": script})

    saved = call(tiny, "POST", "/api/blueprints", {
        "id": "my-demo", "instance_id": instance["id"], "name": "My demo", "category": "Mine",
        "description": "The demo, tuned",
    }, expect=201)
    assert (saved["id"], saved["name"], saved["category"], saved["source"]) == ("my-demo", "My demo", "Mine", "custom")
    assert saved["content"].endswith("# tuned by hand\n")
    on_disk = (custom_dir / "my-demo.sh").read_text()
    assert on_disk == saved["content"] and "# aikore.name: My demo\n" in on_disk
    assert "# aikore.health: /health" in on_disk, "the rest of the header is kept"
    listed = {b["id"]: b for b in call(tiny, "GET", "/api/blueprints")}
    assert listed["my-demo"]["source"] == "custom" and listed["demo"]["source"] == "builtin"

    made = create(tiny, "from-mine", blueprint="my-demo")
    assert call(tiny, "GET", f"/api/instances/{made['id']}/script")["content"] == on_disk

    edited = call(tiny, "PUT", "/api/blueprints/my-demo", {"description": "Edited", "content": on_disk + "# v2\n"})
    assert edited["description"] == "Edited" and edited["name"] == "My demo" and edited["content"].endswith("# v2\n")
    assert call(tiny, "GET", "/api/blueprints/my-demo")["content"] == (custom_dir / "my-demo.sh").read_text()

    deleted = call(tiny, "DELETE", "/api/blueprints/my-demo")
    assert not (custom_dir / "my-demo.sh").exists()
    assert deleted["moved_to"].startswith(str(tiny.data_dir / "trash" / "blueprints"))
    assert "# v2" in open(deleted["moved_to"]).read(), "a deleted blueprint is kept in the trash"
    assert "my-demo" not in {b["id"] for b in call(tiny, "GET", "/api/blueprints")}
    # The instance made from it keeps its own launch.sh.
    assert call(tiny, "GET", f"/api/instances/{made['id']}/script")["content"] == on_disk


def test_an_imported_script_gets_a_header_and_is_found_by_its_category(tiny) -> None:
    imported = call(tiny, "POST", "/api/blueprints", {
        "id": "hello", "content": "#!/bin/bash\necho hello\n", "category": "Imported",
    }, expect=201)
    assert imported["content"].startswith("#!/bin/bash\n### AIKORE-METADATA-START ###\n")
    assert imported["content"].endswith("### AIKORE-METADATA-END ###\necho hello\n")
    assert (imported["name"], imported["category"]) == ("hello", "Imported")
    bare = call(tiny, "POST", "/api/blueprints", {"id": "bare", "content": "echo bare\n", "name": "Bare"},
                expect=201)
    assert bare["content"].startswith("#!/usr/bin/env bash\n") and bare["name"] == "Bare"


def test_built_ins_are_read_only_and_bad_ids_or_bodies_are_refused(tiny) -> None:
    before = BUILTIN_DEMO.read_bytes()
    call(tiny, "POST", "/api/blueprints", {"id": "mine", "content": "echo\n"}, expect=201)
    refused(tiny, "PUT", "/api/blueprints/demo", {"description": "x"}, 403, "demo", "read-only")
    refused(tiny, "DELETE", "/api/blueprints/demo", None, 403, "demo", "read-only")
    refused(tiny, "POST", "/api/blueprints", {"id": "demo", "content": "echo\n"}, 409, "built-in")
    refused(tiny, "POST", "/api/blueprints", {"id": "mine", "content": "echo\n"}, 409, "mine", "already exists")
    for bad in ("../escape", "a/b", ".hidden", "", "x" * 64, "name.sh", 7):
        refused(tiny, "POST", "/api/blueprints", {"id": bad, "content": "echo\n"}, 400, "id")
    refused(tiny, "POST", "/api/blueprints", {"content": "echo\n"}, 400, "id")
    refused(tiny, "POST", "/api/blueprints", {"id": "x"}, 400, "content", "instance_id")
    refused(tiny, "POST", "/api/blueprints", {"id": "x", "content": "a", "instance_id": 1}, 400, "either")
    refused(tiny, "POST", "/api/blueprints", {"id": "x", "instance_id": 999}, 404, "999")
    refused(tiny, "POST", "/api/blueprints", {"id": "x", "instance_id": "1"}, 400, "instance_id")
    refused(tiny, "POST", "/api/blueprints", {"id": "x", "content": "a\x00b"}, 400, "NUL")
    refused(tiny, "POST", "/api/blueprints", {"id": "x", "content": "a", "name": "two\nlines"}, 400, "name")
    refused(tiny, "POST", "/api/blueprints", {"id": "x", "content": "a", "name": ""}, 400, "name")
    refused(tiny, "POST", "/api/blueprints", {"id": "x", "content": "a", "category": "c" * 61}, 400, "category")
    refused(tiny, "POST", "/api/blueprints", {"id": "x", "content": "a", "proxy": "port-only"}, 400, "proxy")
    refused(tiny, "POST", "/api/blueprints", {"id": "x", "content": "a" * (512 * 1024 + 1)}, 413, "content")
    refused(tiny, "PUT", "/api/blueprints/nothing", {"description": "x"}, 404, "nothing")
    refused(tiny, "DELETE", "/api/blueprints/nothing", None, 404, "nothing")
    refused(tiny, "GET", "/api/blueprints/nothing", None, 404, "nothing")
    refused(tiny, "PUT", "/api/blueprints/mine", {"content": 5}, 400, "content")
    assert BUILTIN_DEMO.read_bytes() == before
    assert sorted(p.name for p in (tiny.data_dir.parent / "blueprints").iterdir()) == ["mine.sh", "tiny.sh"]


def test_a_path_that_cannot_name_a_blueprint_is_a_404_for_every_method(tiny) -> None:
    for path in ("/api/blueprints/%C2%91x", "/api/blueprints/.hidden", "/api/blueprints/a%2F..%2Fb"):
        refused(tiny, "GET", path, None, 404, "does not exist")
        refused(tiny, "PUT", path, {"description": "x"}, 404, "does not exist")
        refused(tiny, "DELETE", path, None, 404, "does not exist")
