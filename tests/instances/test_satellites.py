"""Satellites on a real aikore: a second instance on its parent's app and environment, with its
own port, GPUs, output folder and launch arguments, installing nothing; a parent with satellites
is neither deleted nor rebuilt."""

from __future__ import annotations

from tests.instances.conftest import (
    app_info,
    call,
    copy_done,
    create,
    folder,
    log_of,
    named,
    refused,
    start,
    status,
)


def test_a_satellite_runs_beside_its_parent_on_the_parents_app_and_environment(tiny) -> None:
    parent = create(tiny, "main")
    start(tiny, parent["id"])
    before = sorted(p.name for p in (folder(tiny, "main") / "config").iterdir())

    sat = call(tiny, "POST", f"/api/instances/{parent['id']}/satellites", {"name": "sat", "gpu_ids": "0"},
               expect=201)
    assert (sat["parent_id"], sat["blueprint"], sat["status"]) == (parent["id"], "tiny", "stopped")
    assert [s["name"] for s in call(tiny, "GET", f"/api/instances/{parent['id']}/satellites")] == ["sat"]
    (folder(tiny, "sat") / "config" / "launch_args.txt").write_text("--satellite 'one'\n")
    start(tiny, sat["id"])

    main_info, sat_info = app_info(tiny, "main"), app_info(tiny, "sat")
    parent_conf = folder(tiny, "main") / "config"
    # The same app file and the same interpreter: one environment for both.
    assert sat_info["app"] == main_info["app"] == str(parent_conf / "app" / "app.py")
    assert sat_info["python"] == main_info["python"] == str(parent_conf / "env" / "bin" / "python")
    # Its own name, port, GPUs, output folder and launch arguments.
    assert sat_info["env"]["INSTANCE_NAME"] == "sat" and sat_info["env"]["AIKORE_SATELLITE_OF"] == "main"
    assert sat_info["env"]["WEBUI_PORT"] != main_info["env"]["WEBUI_PORT"]
    assert (sat_info["env"]["CUDA_VISIBLE_DEVICES"], main_info["env"]["CUDA_VISIBLE_DEVICES"]) == ("0", "")
    assert sat_info["env"]["INSTANCE_OUTPUT_DIR"] == str(folder(tiny, "sat") / "output")
    assert sat_info["env"]["AIKORE_OWN_CONF_DIR"] == str(folder(tiny, "sat") / "config")
    assert (sat_info["args"], main_info["args"]) == (["--satellite", "'one'"], [])

    # It installed nothing: no clone, no environment, nothing new in the parent's folder or its own.
    log = log_of(tiny, sat["id"])
    assert "satellite of main: using its app checkout" in log and "using its Python environment" in log, log
    assert "cloning" not in log and "installing:" not in log and "creating Python" not in log, log
    assert sorted(p.name for p in parent_conf.iterdir()) == before
    assert sorted(p.name for p in (folder(tiny, "sat") / "config").iterdir()) == ["launch_args.txt"]

    # Renaming the parent would move the folder the running satellite uses.
    call(tiny, "POST", f"/api/instances/{parent['id']}/stop")
    status(tiny, parent["id"], "stopped")
    refused(tiny, "PATCH", f"/api/instances/{parent['id']}", {"name": "renamed"}, 409, "sat", "running")
    refused(tiny, "POST", f"/api/instances/{parent['id']}/rebuild", None, 409, "sat", "satellites")
    assert app_info(tiny, "sat")["env"]["INSTANCE_NAME"] == "sat", "the satellite outlives its parent's stop"


def test_a_parent_with_satellites_is_neither_deleted_nor_rebuilt_and_every_refusal_says_why(tiny) -> None:
    parent = create(tiny, "main")
    sat = call(tiny, "POST", f"/api/instances/{parent['id']}/satellites", {"name": "sat"}, expect=201)
    url = f"/api/instances/{parent['id']}"

    refused(tiny, "DELETE", url, None, 409, "main", "sat", "delete them")
    assert named(tiny, "main") is not None and (folder(tiny, "main") / "launch.sh").exists()
    refused(tiny, "POST", f"{url}/rebuild", None, 409, "sat", "rebuilding")
    refused(tiny, "POST", f"/api/instances/{sat['id']}/rebuild", None, 409, "satellite of main", "rebuilding main")
    # Updating or rolling back the app is a reinstall too, of the parent's or of nothing of its own.
    refused(tiny, "POST", f"{url}/version/update", {"ref": "v1"}, 409, "sat", "updating")
    refused(tiny, "POST", f"{url}/version/rollback", {}, 409, "sat", "rolling back")
    refused(tiny, "POST", f"/api/instances/{sat['id']}/version/update", {}, 409, "satellite of main")
    refused(tiny, "POST", f"/api/instances/{sat['id']}/satellites", {"name": "moon"}, 409, "sat", "itself a satellite")
    refused(tiny, "POST", f"{url}/satellites", {"name": "x", "blueprint": "demo"}, 400, "blueprint")
    refused(tiny, "POST", f"{url}/satellites", {"name": "sat"}, 409, "sat")
    refused(tiny, "POST", f"{url}/satellites", {"name": "Nope"}, 400, "name")
    refused(tiny, "POST", "/api/instances/999/satellites", {"name": "x"}, 404, "999")
    refused(tiny, "POST", f"/api/instances/{sat['id']}/copy", {"name": "x", "environment": "copy"}, 409,
            "satellite", "fresh")

    # A satellite of a parent that never installed anything says so, and what to do.
    call(tiny, "POST", f"/api/instances/{sat['id']}/start")
    status(tiny, sat["id"], "error")
    assert "start main once to install it" in log_of(tiny, sat["id"])

    # Copying a satellite makes another satellite of the same parent.
    job = call(tiny, "POST", f"/api/instances/{sat['id']}/copy", {"name": "sat2"}, expect=202)
    assert copy_done(tiny, job["id"])["state"] == "done"
    assert named(tiny, "sat2")["parent_id"] == parent["id"]

    for satellite in ("sat", "sat2"):
        call(tiny, "DELETE", f"/api/instances/{named(tiny, satellite)['id']}")
    call(tiny, "DELETE", url)
    assert call(tiny, "GET", "/api/instances") == []
