"""Copying an instance on a real aikore: in the background while the source runs, with its app and
environment or fresh, and a cancelled or failed copy leaving nothing behind."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import AikoreProcess, wait_until
from tests.instances.conftest import app_info, call, copy_done, create, folder, log_of, named, refused, running, start


def test_a_copy_with_its_environment_is_made_while_the_source_runs_and_runs_on_its_own_copy(tiny) -> None:
    source = create(tiny, "src", gpu_ids="0", restart_policy="on-failure")
    start(tiny, source["id"])
    (folder(tiny, "src") / "output" / "picture.png").write_bytes(b"the source's output")

    job = call(tiny, "POST", f"/api/instances/{source['id']}/copy", {"name": "dup", "environment": "copy"},
               expect=202)
    assert job["state"] == "copying" and job["name"] == "dup" and job["source_name"] == "src"
    job = copy_done(tiny, job["id"])
    assert job["state"] == "done", job
    assert job["files_done"] == job["files_total"] > 0 and job["bytes_done"] == job["bytes_total"]

    # The source never stopped: same process, still answering.
    assert call(tiny, "GET", f"/api/instances/{source['id']}")["pid"] == running(tiny, source["id"])["pid"]
    assert app_info(tiny, "src")["env"]["INSTANCE_NAME"] == "src"

    dup = named(tiny, "dup")
    assert dup is not None and dup["id"] == job["instance_id"]
    assert (dup["blueprint"], dup["gpu_ids"], dup["restart_policy"]) == ("tiny", "0", "on-failure")
    assert dup["status"] == "stopped" and dup["parent_id"] is None
    # Outputs stay with the source; the environment's own paths now name the copy's folder.
    assert not (folder(tiny, "dup") / "output" / "picture.png").exists()
    env = folder(tiny, "dup") / "config" / "env"
    for script in (env / "bin" / "activate", env / "bin" / "tool"):
        text = script.read_text()
        assert str(env) in text and str(folder(tiny, "src")) not in text, script

    start(tiny, dup["id"])
    info = app_info(tiny, "dup")
    assert info["app"] == str(folder(tiny, "dup") / "config" / "app" / "app.py")
    assert info["python"] == str(env / "bin" / "python")
    log = log_of(tiny, dup["id"])
    assert "cloning" not in log and "installing:" not in log, log
    assert app_info(tiny, "src")["python"] == str(folder(tiny, "src") / "config" / "env" / "bin" / "python")


def test_a_fresh_copy_takes_the_script_and_settings_and_installs_its_own_at_first_start(tiny) -> None:
    source = create(tiny, "src", restart_policy="on-failure", gpu_ids="0")
    start(tiny, source["id"])
    script = call(tiny, "GET", f"/api/instances/{source['id']}/script")["content"] + "# tuned by hand\n"
    call(tiny, "PUT", f"/api/instances/{source['id']}/script", {"content": script})
    (folder(tiny, "src") / "config" / "launch_args.txt").write_text("--from-the-source\n")

    job = call(tiny, "POST", f"/api/instances/{source['id']}/copy", {"name": "fresh", "gpu_ids": ""}, expect=202)
    assert job["environment"] == "fresh"
    assert copy_done(tiny, job["id"])["state"] == "done"
    fresh = named(tiny, "fresh")
    assert fresh is not None and (fresh["gpu_ids"], fresh["restart_policy"]) == ("", "on-failure")
    assert call(tiny, "GET", f"/api/instances/{fresh['id']}/script")["content"] == script
    assert not (folder(tiny, "fresh") / "config" / "app").exists()

    start(tiny, fresh["id"])
    assert "cloning" in log_of(tiny, fresh["id"])
    info = app_info(tiny, "fresh")
    assert info["python"] == str(folder(tiny, "fresh") / "config" / "env" / "bin" / "python")
    assert info["args"] == ["--from-the-source"]
    assert info["env"]["CUDA_VISIBLE_DEVICES"] == ""


def many_files(conf: Path) -> None:
    """Enough files that a copy of ``conf`` is still under way while a test acts on it."""
    for n in range(20):
        sub = conf / "bulk" / f"d{n}"
        sub.mkdir(parents=True)
        for m in range(200):
            (sub / f"f{m}").write_bytes(b"x")


def test_a_copy_holds_its_name_and_a_cancelled_or_failed_copy_leaves_no_instance_nor_folder(tiny) -> None:
    source = create(tiny, "big")
    many_files(folder(tiny, "big") / "config")

    held = call(tiny, "POST", f"/api/instances/{source['id']}/copy",
                {"name": "held", "environment": "copy", "public_port": 19007}, expect=202)
    gone = call(tiny, "POST", f"/api/instances/{source['id']}/copy", {"name": "gone", "environment": "copy"},
                expect=202)
    assert call(tiny, "GET", f"/api/copies/{gone['id']}")["state"] == "copying"
    cancelled = call(tiny, "DELETE", f"/api/copies/{gone['id']}", expect=202)
    assert cancelled["name"] == "gone"

    # While "held" is being made its name is taken; its public port is not (ports are checked at its end).
    assert call(tiny, "GET", f"/api/copies/{held['id']}")["state"] == "copying"
    refused(tiny, "POST", "/api/instances", {"name": "held", "blueprint": "tiny"}, 409, "held", "being made")
    refused(tiny, "POST", f"/api/instances/{source['id']}/copy", {"name": "held"}, 409, "held")
    create(tiny, "other", public_port=19007)

    assert copy_done(tiny, gone["id"], timeout=120)["state"] == "cancelled"
    failed = copy_done(tiny, held["id"], timeout=120)
    assert failed["state"] == "failed" and "19007" in failed["error"] and "other" in failed["error"], failed
    refused(tiny, "DELETE", f"/api/copies/{held['id']}", None, 409, "already ended")

    names = sorted(i["name"] for i in call(tiny, "GET", "/api/instances"))
    assert names == ["big", "other"]
    leftovers = sorted(p.name for p in (tiny.data_dir / "instances").iterdir())
    assert leftovers == ["big", "other"], leftovers
    # The name is free again.
    create(tiny, "held")


def test_copy_refusals_name_the_problem(tiny) -> None:
    source = create(tiny, "src")
    other = create(tiny, "taken")
    url = f"/api/instances/{source['id']}/copy"
    refused(tiny, "POST", url, {"name": "taken"}, 409, "taken")
    refused(tiny, "POST", url, {"name": "Bad Name"}, 400, "name")
    refused(tiny, "POST", url, {}, 400, "name")
    refused(tiny, "POST", url, {"name": "x", "environment": "all"}, 400, "environment")
    refused(tiny, "POST", url, {"name": "x", "blueprint": "demo"}, 400, "blueprint")
    refused(tiny, "POST", url, {"name": "x", "public_port": 1}, 409, "public_port")
    refused(tiny, "POST", url, {"name": "x", "gpu_ids": "zero"}, 400, "gpu_ids")
    refused(tiny, "POST", "/api/instances/999/copy", {"name": "x"}, 404, "999")
    refused(tiny, "GET", "/api/copies/77", None, 404, "77")
    refused(tiny, "GET", "/api/copies/x", None, 404, "copy")
    assert named(tiny, "x") is None and other["name"] == "taken"
    wait_until(lambda: call(tiny, "GET", "/api/copies") == [], what="no copy jobs")


def test_a_copy_an_aikore_crash_interrupts_leaves_nothing_after_the_next_start(tiny: AikoreProcess) -> None:
    source = create(tiny, "big")
    many_files(folder(tiny, "big") / "config")
    job = call(tiny, "POST", f"/api/instances/{source['id']}/copy", {"name": "dup", "environment": "copy"},
               expect=202)
    wait_until(lambda: call(tiny, "GET", f"/api/copies/{job['id']}")["files_done"] > 0, what="the copy to begin")
    assert [p.name for p in (tiny.data_dir / "instances").glob(".creating-dup.*")], "staged while copying"
    tiny.kill()

    tiny.start()
    assert [i["name"] for i in call(tiny, "GET", "/api/instances")] == ["big"]
    assert sorted(p.name for p in (tiny.data_dir / "instances").iterdir()) == ["big"]
    assert call(tiny, "GET", "/api/copies") == []
    create(tiny, "dup")
