"""aik_python_env and aik_pip_* with the real uv and PyPI: the pins really hold, rebuild really rebuilds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = """source "$AIKORE_BLUEPRINTS_LIB/aikore.sh"
aik_python_env "$INSTANCE_CONF_DIR/env"
# What aik_torch writes for torch, done here for a small package: the pins every install obeys.
printf 'six==1.16.0\\n' >"$AIK_CONSTRAINTS"
aik_pip_requirements "$INSTANCE_CONF_DIR/requirements.txt"
"""
UV_DIR = Path(sys.executable).parent


def real_uv_run(blueprint_run):
    run = blueprint_run("lib", script=SCRIPT, AIKORE_VENV_PYTHON=sys.executable)
    (run.root / "bin" / "uv").unlink()
    run.extra_env["PATH"] = f"{run.root / 'bin'}:/usr/local/bin:/usr/bin:/bin:{UV_DIR}"
    (run.conf_dir / "requirements.txt").write_text("six\n")
    return run


def installed_six(run) -> str:
    python = run.venv / "bin" / "python"
    return subprocess.run([str(python), "-c", "import six; print(six.__version__)"], check=True,
                          capture_output=True, text=True).stdout.strip()


def test_requirements_install_under_the_pins_once_and_rebuild_starts_clean(blueprint_run) -> None:
    run = real_uv_run(blueprint_run)
    first = run.run()
    assert installed_six(run) == "1.16.0", first.stdout + first.stderr
    assert "already installed" in run.run().stdout

    (run.venv / "marker").write_text("from the old environment")
    rebuilt = run.run(env={"AIKORE_REBUILD_ENV": "1"})
    assert "AIKORE_REBUILD_ENV=1: removing" in rebuilt.stdout
    assert not (run.venv / "marker").exists()
    assert installed_six(run) == "1.16.0"
