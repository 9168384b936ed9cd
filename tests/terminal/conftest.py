"""Shells in these tests start from a home of their own, not the machine's ~/.bashrc."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def shell_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME whose ~/.bashrc puts a decoy ``python`` first on PATH, as pyenv or conda would."""
    home = tmp_path / "home"
    (home / "bin").mkdir(parents=True)
    decoy = home / "bin" / "python"
    decoy.write_text("#!/bin/sh\necho decoy-python\n")
    decoy.chmod(0o755)
    (home / ".bashrc").write_text('export PATH="$HOME/bin:$PATH"\n')
    monkeypatch.setenv("HOME", str(home))
    return home
