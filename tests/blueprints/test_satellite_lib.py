"""A satellite run of a real blueprint (stand-ins for git, uv and the app): it launches from the
parent's install with its own port, output and arguments, and installs or changes nothing there."""

from __future__ import annotations

import os
from pathlib import Path

from tests.blueprints.conftest import PORT


def snapshot(folder: Path) -> dict[str, tuple[bool, int]]:
    """Every path under ``folder`` with whether it is a link and its mtime: any change shows."""
    found = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(root) / name
            found[str(path.relative_to(folder))] = (path.is_symlink(), path.lstat().st_mtime_ns)
    return found


def test_a_satellite_of_comfyui_launches_the_parents_install_and_installs_nothing(blueprint_run, tmp_path) -> None:
    run = blueprint_run("comfyui")
    run.run()  # the parent's first start installs (git, uv, model links)
    assert run.calls("git") and run.uv_calls("pip install")
    before = snapshot(run.conf_dir)

    own_conf, own_output = tmp_path / "sat" / "config", tmp_path / "sat" / "output"
    own_conf.mkdir(parents=True)
    (own_conf / "launch_args.txt").write_text("--preview-method auto\n")
    sat = run.run(env={
        "AIKORE_SATELLITE_OF": "comfy", "AIKORE_OWN_CONF_DIR": str(own_conf), "INSTANCE_OUTPUT_DIR": str(own_output),
        "INSTANCE_NAME": "comfy-gpu1", "WEBUI_PORT": str(int(PORT) + 1), "CUDA_VISIBLE_DEVICES": "1",
    })

    assert run.calls("git") == [] and run.calls("uv") == [] and run.calls("pip") == [], run.calls()
    assert "satellite of comfy: using its app checkout" in sat.stdout
    assert "satellite of comfy: using its Python environment" in sat.stdout
    assert snapshot(run.conf_dir) == before, "nothing in the parent's install folder changed"
    launch = run.launch()
    assert launch.cwd == str(run.conf_dir / "ComfyUI")
    assert launch.args[launch.args.index("--port") + 1] == str(int(PORT) + 1)
    assert launch.args[launch.args.index("--output-directory") + 1] == str(own_output)
    assert launch.args[-2:] == ["--preview-method", "auto"]
    assert launch.env["VIRTUAL_ENV"] == str(run.venv) and launch.env["CUDA_VISIBLE_DEVICES"] == "1"


def test_a_satellite_of_a_parent_that_never_installed_says_to_start_the_parent(blueprint_run) -> None:
    run = blueprint_run("comfyui")
    proc = run.run(check=False, env={"AIKORE_SATELLITE_OF": "comfy"})
    assert proc.returncode != 0
    assert "start comfy once to install it" in proc.stderr
    assert run.calls("git") == [] and run.calls("uv") == []
