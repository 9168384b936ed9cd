"""The phase protocol's two ends: the logwriter's marker reading, and the cause of a failed phase."""

from __future__ import annotations

import json
import os
from pathlib import Path

from aikore.supervisor.logwriter import PhaseFile
from aikore.supervisor.phases import failure_cause, read_progress


def test_a_marker_split_across_reads_sets_the_phase_with_its_fraction(tmp_path: Path) -> None:
    phases = PhaseFile(tmp_path / "instance.phase.json")
    phases.feed(b"Cloning into 'app'...\n::aikore-ph")
    assert not phases.path.exists()
    phases.feed(b"ase cloning 0.45\nmore output")
    state = json.loads(phases.path.read_text())
    assert (state["phase"], state["fraction"], state["pid"]) == ("cloning", 0.45, os.getpid())
    assert state["started"] <= state["since"]
    progress = read_progress(phases.path, os.getpid())
    assert progress is not None and progress.installing and progress.label == "cloning"
    # Another launch's file is not this one's progress.
    assert read_progress(phases.path, os.getpid() + 1) is None


def test_a_new_phase_restarts_its_clock_and_a_fraction_update_does_not(tmp_path: Path) -> None:
    phases = PhaseFile(tmp_path / "p.json")
    phases.feed(b"::aikore-phase cloning\n")
    since = json.loads(phases.path.read_text())["since"]
    phases.feed(b"::aikore-phase cloning 1\n")
    assert json.loads(phases.path.read_text())["since"] == since
    phases.feed(b"::aikore-phase launching\r\n")
    progress = read_progress(phases.path, os.getpid())
    assert progress is not None and progress.phase == "launching" and not progress.installing


def test_what_is_not_a_marker_changes_nothing(tmp_path: Path) -> None:
    phases = PhaseFile(tmp_path / "p.json")
    phases.feed(b"::aikore-phase cloning\n")
    for line in (
        b"  ::aikore-phase indented\n",
        b"::aikore-phase Upper\n",
        b"::aikore-phase cloning 1.5\n",
        b"echo ::aikore-phase quoted\n",
        b"x" * 500 + b"::aikore-phase inside-a-long-line\n",
    ):
        phases.feed(line)
    assert json.loads(phases.path.read_text())["phase"] == "cloning"


def test_an_earlier_launchs_phase_file_is_removed_at_the_start(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"pid": os.getpid(), "phase": "old"}))
    PhaseFile(path)
    assert not path.exists()


def test_git_cannot_resolve_the_host() -> None:
    lines = [
        "::aikore-phase cloning",
        "Cloning into '/data/instances/comfy/config/ComfyUI'...",
        "fatal: unable to access 'https://github.com/comfyanonymous/ComfyUI.git/': "
        "Could not resolve host: github.com",
        "===== 2026-12-04 10:00:00 UTC exited with code 128 =====",
    ]
    assert failure_cause(lines) == "could not resolve github.com"


def test_uv_without_a_solution_gives_its_error_and_its_reason() -> None:
    lines = [
        "::aikore-phase cloning 0.90",
        "fatal: an error of an earlier phase",
        "::aikore-phase installing-requirements",
        "Using Python 3.11.7 environment at: /env",
        "  \u00d7 No solution found when resolving dependencies:",
        "  \u2570\u2500\u25b6 Because foo was not found in the package registry, your requirements are unsatisfiable.",
    ]
    assert failure_cause(lines) == (
        "No solution found when resolving dependencies: — "
        "Because foo was not found in the package registry, your requirements are unsatisfiable."
    )


def test_a_python_traceback_gives_its_exception_and_a_quiet_failure_its_last_line() -> None:
    traceback = ["::aikore-phase launching", "Traceback (most recent call last):", '  File "main.py", line 1',
                 "ModuleNotFoundError: No module named 'torch'"]
    assert failure_cause(traceback) == "ModuleNotFoundError: No module named 'torch'"
    assert failure_cause(["::aikore-phase building-ui", "npm warn deprecated x", "killed"]) == "killed"
    assert failure_cause(["::aikore-phase cloning"]) is None
