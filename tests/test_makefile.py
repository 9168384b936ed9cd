"""`make run` installs what running needs; `make test` adds the test toolchain; the README's quick
start and CI's entry point name the same commands."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from tests.helpers import REPO


def _dry_run(target: str, venv: Path) -> str:
    """What make would do (``-n``: nothing is run), with the virtual environment under ``venv``."""
    # A make of its own, not a sub-make of the `make test` running this suite: with the parent's
    # MAKEFLAGS/MAKELEVEL it would also print "Entering directory" lines and take its flags.
    env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES"}}
    done = subprocess.run(
        ["make", "-n", target, f"VENV={venv}"], cwd=REPO, capture_output=True, text=True, check=True, timeout=30,
        env=env,
    )
    return done.stdout


def test_make_run_installs_only_what_running_needs(tmp_path: Path) -> None:
    commands = _dry_run("run", tmp_path / "venv")
    assert "pip install --quiet -e '.[persistent]'" in commands
    assert "[test]" not in commands
    assert commands.rstrip().endswith(f"{tmp_path}/venv/bin/aikore")


def test_make_test_adds_the_toolchain_once_and_run_reuses_it(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    commands = _dry_run("test", venv)
    assert commands.index("-e '.[persistent]'") < commands.index("-e '.[test]'") < commands.index("-m pytest")
    # Once running is installed, a test run adds only the toolchain; once both are, nothing.
    venv.mkdir()
    (venv / ".installed-run").touch()
    assert "'.[persistent]'" not in _dry_run("test", venv)
    assert "-e '.[test]'" in _dry_run("test", venv)
    (venv / ".installed-test").touch()
    assert "pip" not in _dry_run("test", venv)
    assert "pip" not in _dry_run("run", venv)
    # A changed pyproject.toml reinstalls both.
    later = (REPO / "pyproject.toml").stat().st_mtime - 3600
    os.utime(venv / ".installed-run", (later, later))
    assert "-e '.[test]'" in _dry_run("test", venv)


def test_the_quick_start_names_make_targets_and_ci_runs_the_readmes_test_command() -> None:
    readme = (REPO / "README.md").read_text()
    quick_start = readme[readme.index("## Quick start"):readme.index("\n## ", readme.index("## Quick start") + 5)]
    targets = set(re.findall(r"^make (\w+)", quick_start, re.MULTILINE))
    assert {"run", "test"} <= targets
    makefile = (REPO / "Makefile").read_text()
    assert all(re.search(rf"^{target}:", makefile, re.MULTILINE) for target in targets)
    assert "--port" in quick_start and "--data-dir" in quick_start, "the quick start says how to choose both"
    ci = (REPO / ".ci" / "run").read_text()
    assert re.search(r"^make test\b", ci, re.MULTILINE), "CI runs the README's test command"
