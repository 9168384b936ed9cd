"""Update and roll back a real app on a real aikore: real git remote, real uv environment."""

from __future__ import annotations

import threading
from pathlib import Path

import psutil

from tests.helpers import git, wait_until

V1_REQS = "aikore-probe==1.0\n"
V2_REQS = "aikore-probe==2.0\naikore-extra==1.0\n"


def test_update_to_the_new_release_then_roll_back_to_the_exact_commit_and_packages(versioned) -> None:
    board = versioned(extra_args=["--keep-snapshots", "2"])
    v1 = board.upstream.release("v1", V1_REQS)
    board.upstream.release("v2", V2_REQS)
    iid = board.create("app")

    # Before the first start: the pin is known, the remote too (the script names it), no clone.
    before = board.api("GET", f"/api/instances/{iid}/version")
    assert before["app"] is None
    assert before["pinned"] == {"variable": "APP_REF", "ref": "v1"}
    assert before["latest"]["status"] == "known" and before["latest"]["tag"] == "v2"
    refused = board.api("POST", f"/api/instances/{iid}/version/update", status=409)
    assert refused["error"]["code"] == "no_app_checkout"

    board.api("POST", f"/api/instances/{iid}/start")
    first = board.wait_status(iid, "running")
    assert board.page("app") == {"release": "v1", "probe": "1.0"}
    frozen_v1 = board.freeze("app")
    version = board.api("GET", f"/api/instances/{iid}/version")
    assert version["app"]["tag"] == "v1" and version["app"]["commit"] == v1
    assert version["app"]["path"] == "config/app" and version["installed_in"] == {"id": iid, "name": "app"}
    assert version["update_available"] is True and version["snapshots"] == []

    updated = board.api("POST", f"/api/instances/{iid}/version/update")
    assert updated["target"] == "v2"
    assert updated["instance"]["status"] == "starting"
    assert updated["snapshot"]["tag"] == "v1" and updated["snapshot"]["commit"] == v1
    board.wait_status(iid, "running")
    assert board.page("app") == {"release": "v2", "probe": "2.0"}
    assert not psutil.pid_exists(first["pid"]), "the v1 app must be gone"
    version = board.api("GET", f"/api/instances/{iid}/version")
    assert version["app"]["tag"] == "v2" and version["pinned"]["ref"] == "v2"
    assert version["update_available"] is False
    assert [s["id"] for s in version["snapshots"]] == [updated["snapshot"]["id"]]
    assert version["snapshots"][0]["created_at"].endswith("Z")
    assert "aikore-extra==1.0" in board.freeze("app")
    script = board.api("GET", f"/api/instances/{iid}/script")["content"]
    assert "APP_REF=${APP_REF:-v2}" in script
    assert (board.folder("app") / "launch.sh.bak").read_text().count("APP_REF=${APP_REF:-v1}") == 1

    rolled = board.api("POST", f"/api/instances/{iid}/version/rollback")
    assert rolled["snapshot"]["id"] == updated["snapshot"]["id"] and rolled["target"] == "v1"
    board.wait_status(iid, "running")
    assert board.page("app") == {"release": "v1", "probe": "1.0"}
    assert git(board.folder("app") / "config" / "app", "rev-parse", "HEAD") == v1
    assert board.freeze("app") == frozen_v1, "the exact v1 package set (aikore-extra removed)"
    assert "APP_REF=${APP_REF:-v1}" in board.api("GET", f"/api/instances/{iid}/script")["content"]
    last_start = board.log(iid).rsplit("start of app", 1)[-1]
    # The start after a rollback neither fetches nor installs: the snapshot's state is what runs.
    assert "keeping" in last_start and "at v1" in last_start and "already installed" in last_start

    # A satellite runs this app: it shows this version, and is updated through its parent only.
    sat = board.api("POST", f"/api/instances/{iid}/satellites", {"name": "sat"}, status=201)["id"]
    seen = board.api("GET", f"/api/instances/{sat}/version")
    assert seen["installed_in"] == {"id": iid, "name": "app"} and seen["app"]["commit"] == v1
    assert seen["snapshots"][0]["id"] == updated["snapshot"]["id"]
    board.api("POST", f"/api/instances/{sat}/version/update", status=409)
    board.api("DELETE", f"/api/instances/{sat}")

    # Update again: the requirements of v2 are installed again (the rollback put the records back).
    board.api("POST", f"/api/instances/{iid}/version/update", {"ref": "v2"})
    board.wait_status(iid, "running")
    assert board.page("app") == {"release": "v2", "probe": "2.0"}
    snapshots = board.api("GET", f"/api/instances/{iid}/version")["snapshots"]
    assert len(snapshots) == 2 and snapshots[0]["created_at"] >= snapshots[1]["created_at"]


def test_a_broken_release_fails_to_install_and_the_rollback_brings_the_old_one_back(versioned) -> None:
    board = versioned()
    v1 = board.upstream.release("v1", V1_REQS)
    iid = board.create("app")
    board.api("POST", f"/api/instances/{iid}/start")
    board.wait_status(iid, "running")
    frozen_v1 = board.freeze("app")
    board.upstream.release("v3", "aikore-probe==9.9\n")  # no such version: the install fails

    version = board.api("GET", f"/api/instances/{iid}/version?refresh=1")
    assert version["latest"]["tag"] == "v3" and version["update_available"] is True
    board.api("POST", f"/api/instances/{iid}/version/update", {"ref": "v3"})
    failed = board.wait_status(iid, "error")
    assert "aikore-probe==9.9" in board.log(iid)
    assert failed["pid"] is None
    snapshots = board.api("GET", f"/api/instances/{iid}/version")["snapshots"]
    assert len(snapshots) == 1 and snapshots[0]["commit"] == v1

    board.api("POST", f"/api/instances/{iid}/version/rollback", {"snapshot": snapshots[0]["id"]})
    board.wait_status(iid, "running")
    assert board.page("app") == {"release": "v1", "probe": "1.0"}
    assert board.freeze("app") == frozen_v1


def test_refusals_are_clear_and_change_nothing(versioned) -> None:
    board = versioned()
    board.upstream.release("v1", V1_REQS)
    board.upstream.release("v2", V2_REQS)
    iid = board.create("app")
    update, rollback = f"/api/instances/{iid}/version/update", f"/api/instances/{iid}/version/rollback"

    assert board.api("POST", "/api/instances/999/version/update", status=404)["error"]["code"] == "not_found"
    assert board.api("GET", "/api/instances/999/version", status=404)["error"]["code"] == "not_found"
    assert board.api("POST", rollback, status=409)["error"]["code"] == "no_snapshot"

    board.api("POST", f"/api/instances/{iid}/start")
    board.wait_status(iid, "running")
    bad = board.api("POST", update, {"ref": "v9"}, status=422)["error"]
    assert bad["code"] == "unknown_ref" and bad["field"] == "ref"
    for hostile in ("v2}; rm -rf /", "v2\n", "$(id)", "-v2"):
        assert board.api("POST", update, {"ref": hostile}, status=422)["error"]["field"] == "ref"
    assert board.api("POST", update, {"ref": 2}, status=400)["error"]["field"] == "ref"
    assert board.api("POST", update, {"tag": "v2"}, status=400)["error"]["code"] == "unknown_field"
    assert board.api("POST", update, {"ref": "v1"}, status=409)["error"]["code"] == "up_to_date"
    gone = board.api("POST", rollback, {"snapshot": "20200101T000000Z-abcd"}, status=404)["error"]
    assert gone["code"] == "not_found"
    for hostile in ("../../etc", "20200101T000000Z-abcd\n"):
        assert board.api("POST", rollback, {"snapshot": hostile}, status=404)["error"]["code"] == "not_found"
    script = board.api("GET", f"/api/instances/{iid}/script")["content"]
    assert "APP_REF=${APP_REF:-v1}" in script and not (board.folder("app") / "launch.sh.bak").exists()

    # Edits to the app's own files are never discarded by an update.
    app_py = board.folder("app") / "config" / "app" / "app.py"
    original = app_py.read_text()
    app_py.write_text(original + "# edited by hand\n")
    assert board.api("POST", update, status=409)["error"]["code"] == "local_changes"
    app_py.write_text(original)

    # While it starts (the script waits on a file), nothing may move under it.
    hold = board.folder("app") / "config" / "hold"
    hold.touch()
    board.api("POST", f"/api/instances/{iid}/restart")
    board.wait_status(iid, "starting")
    assert board.api("POST", update, status=409)["error"]["code"] == "instance_busy"
    hold.unlink()
    board.wait_status(iid, "running")
    assert board.page("app")["release"] == "v1"
    assert board.api("GET", f"/api/instances/{iid}/version")["snapshots"] == []

    # A remote that cannot be asked: unknown, not an error; an update without a ref is refused.
    git(board.folder("app") / "config" / "app", "remote", "set-url", "origin", "file:///nonexistent/app.git")
    version = board.api("GET", f"/api/instances/{iid}/version?refresh=1")
    assert version["latest"]["status"] == "unknown" and version["latest"]["reason"]
    assert version["update_available"] is None
    assert board.api("POST", update, status=409)["error"]["code"] == "latest_unknown"


def test_an_instance_without_a_pinned_app_has_no_version_to_update(versioned) -> None:
    board = versioned()
    iid = board.api("POST", "/api/instances", {"name": "plain", "blueprint": "demo"}, status=201)["id"]
    version = board.api("GET", f"/api/instances/{iid}/version")
    assert version["app"] is None and version["pinned"] is None and version["latest"] is None
    assert version["update_available"] is None
    refused = board.api("POST", f"/api/instances/{iid}/version/update", status=422)["error"]
    assert refused["code"] == "no_pinned_ref"
    wait_until(lambda: board.instance(iid)["status"] == "stopped", 5, what="it stays stopped")


def test_one_operation_at_a_time_and_nothing_of_the_old_app_is_left(versioned, tmp_path: Path) -> None:
    board = versioned(extra_args=["--stop-timeout", "2"])
    board.upstream.release("v1", V1_REQS)
    board.upstream.release("v2", V2_REQS)
    iid = board.create("app")
    board.api("POST", f"/api/instances/{iid}/start")
    old = board.wait_status(iid, "running")
    # The running v1 ignores SIGTERM: the update's stop waits for the stop timeout, then kills.
    (board.folder("app") / "config" / "stubborn").touch()
    board.api("POST", f"/api/instances/{iid}/restart")
    old = wait_until(lambda: (i := board.instance(iid))["status"] == "running" and i["pid"] != old["pid"] and i,
                     60, what="the restarted, stubborn v1")
    (board.folder("app") / "config" / "stubborn").unlink()

    answers: list[int] = []
    first = threading.Thread(target=lambda: answers.append(
        board.server.request("POST", f"/api/instances/{iid}/version/update", timeout=120).status))
    first.start()
    operation = wait_until(lambda: (o := board.api("GET", f"/api/instances/{iid}/version")["operation"])
                           and o["target"] == "v2" and o, 30, what="the update to v2 to be under way")
    assert operation["kind"] == "update"
    second = board.api("POST", f"/api/instances/{iid}/version/update", status=409)["error"]
    assert second["code"] == "operation_running" and "v2" in second["message"]
    assert board.api("POST", f"/api/instances/{iid}/version/rollback", status=409)["error"]["code"] in (
        "operation_running", "instance_busy")
    first.join(60)
    assert answers == [200]
    board.wait_status(iid, "running")
    assert board.page("app")["release"] == "v2"
    assert not psutil.pid_exists(old["pid"]), "the v1 app that ignored SIGTERM must have been killed"
    assert board.api("GET", f"/api/instances/{iid}/version")["operation"] is None

    board.server.stop()
    left = [p.pid for p in psutil.process_iter(["cmdline"]) if str(tmp_path) in " ".join(p.info["cmdline"] or [])]
    assert left == [], "no process of the instance, git or uv may outlive AiKore's stop"
