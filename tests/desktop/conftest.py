"""Fixtures for persistent mode: skip cleanly where the desktop's system pieces are missing."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from importlib.util import find_spec
from pathlib import Path

import psutil
import pytest

from aikore.desktop.companion import BROWSERS
from aikore.desktop.session import MARKER
from tests.helpers import listening_port

BROWSER = next((found for name in BROWSERS if (found := shutil.which(name))), None)
MISSING = [
    name
    for name, ok in (
        ("Xvfb", shutil.which("Xvfb")),
        ("openbox", shutil.which("openbox")),
        ("chromium", BROWSER),
        ("selkies", find_spec("selkies")),
    )
    if not ok
]
needs_desktop = pytest.mark.skipif(bool(MISSING), reason=f"persistent mode needs {', '.join(MISSING)}")


def marked(marker: str) -> list[psutil.Process]:
    """Live processes of the desktop session whose state file is ``marker``."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(MARKER) == marker and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def access_log_lines(path: Path) -> list[str]:
    """The demo app's access-log lines for its page, as a browser inside a desktop fetches it."""
    text = path.read_text(errors="replace") if path.exists() else ""
    return [line for line in text.splitlines() if '"GET / HTTP/1.1" 200' in line]


def desktop_browser_hits(path: Path) -> list[str]:
    """Page loads by a real windowed Chromium (headless test browsers say HeadlessChrome)."""
    return [line for line in access_log_lines(path) if "X11; Linux" in line and "HeadlessChrome" not in line]


@pytest.fixture
def demo_app(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """The demo app on a port the OS chooses; yields (port, its output file)."""
    out = tmp_path / "demo.log"
    with out.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "aikore.demo", "--host", "127.0.0.1", "--port", "0"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    port = listening_port(proc)
    yield port, out
    proc.terminate()
    proc.wait(timeout=30)
