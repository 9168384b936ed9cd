"""The desktop session process on its own: real Xvfb, openbox, Selkies and Chromium."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from aikore.desktop.companion import Programs, find_programs, read_state, session_command, state_path
from aikore.desktop.display import lock_path, socket_path
from aikore.desktop.session import _sandbox_refused, browser_command
from aikore.errors import AikoreError
from tests.desktop.conftest import BROWSER, desktop_browser_hits, marked, needs_desktop
from tests.helpers import free_port, wait_until

pytestmark = needs_desktop


@pytest.fixture
def session(tmp_path: Path, demo_app: tuple[int, Path]) -> Iterator[dict[str, Any]]:
    """A session for a fake instance folder whose browser opens the demo app."""
    app_port, _ = demo_app
    instance_dir = tmp_path / "instances" / "demo1"
    instance_dir.mkdir(parents=True)
    (instance_dir / "desktop").mkdir()
    port = free_port()
    command = session_command(
        instance_dir=instance_dir,
        programs=find_programs(needs_browser=True),
        port=port,
        resolution="1280x720",
        fps=15,
        app_url=f"http://127.0.0.1:{app_port}/",
        app_ready_url=f"http://127.0.0.1:{app_port}/health",
    )
    with (instance_dir / "desktop" / "desktop.log").open("ab") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    info = {"proc": proc, "dir": instance_dir, "port": port, "marker": str(state_path(instance_dir))}
    yield info
    if info["proc"].poll() is None:
        info["proc"].terminate()
        info["proc"].wait(timeout=30)
    for leftover in marked(info["marker"]):
        leftover.kill()


def _state_with(instance_dir: Path, *names: str) -> dict[str, Any] | None:
    state = read_state(instance_dir)
    return state if state and all(n in state["processes"] for n in names) else None


def test_session_shows_the_app_in_a_browser_on_its_own_display(session: dict[str, Any], demo_app: tuple[int, Path]):
    state = wait_until(
        lambda: _state_with(session["dir"], "xvfb", "window-manager", "selkies", "browser"),
        timeout=60,
        what="every program of the session to run",
    )
    assert state["display"] >= 100
    assert socket_path(state["display"]).exists()
    browser = psutil.Process(state["processes"]["browser"])
    assert browser.environ()["DISPLAY"] == f":{state['display']}"
    wait_until(lambda: desktop_browser_hits(demo_app[1]), timeout=60, what="the desktop browser to load the app")


def test_selkies_serves_its_client_on_the_internal_port_without_a_login(session: dict[str, Any]):
    url = f"http://127.0.0.1:{session['port']}/"

    def page() -> str:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode()

    body = wait_until(page, timeout=60, what="Selkies to answer")
    assert "<html" in body.lower()


def test_a_dead_browser_is_restarted_and_reopens_the_app(session: dict[str, Any], demo_app: tuple[int, Path]):
    first = wait_until(lambda: _state_with(session["dir"], "browser"), timeout=60, what="the browser")
    wait_until(lambda: desktop_browser_hits(demo_app[1]), timeout=60, what="the first page load")
    loads = len(desktop_browser_hits(demo_app[1]))
    os.kill(first["processes"]["browser"], signal.SIGKILL)

    def restarted() -> bool:
        state = read_state(session["dir"])
        return bool(state) and state["processes"].get("browser") not in (None, first["processes"]["browser"])

    wait_until(restarted, timeout=60, what="a new browser process")
    wait_until(lambda: len(desktop_browser_hits(demo_app[1])) > loads, timeout=60, what="the app to load again")


def test_sigterm_stops_every_program_and_frees_the_display(session: dict[str, Any]):
    state = wait_until(lambda: _state_with(session["dir"], "selkies", "browser"), timeout=60, what="the session")
    session["proc"].terminate()
    assert session["proc"].wait(timeout=30) == 0
    assert marked(session["marker"]) == []
    for pid in state["processes"].values():
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not lock_path(state["display"]).exists()
    assert not state_path(session["dir"]).exists()


def test_a_new_session_ends_programs_a_killed_one_left_behind(session: dict[str, Any], tmp_path: Path):
    state = wait_until(lambda: _state_with(session["dir"], "selkies", "browser"), timeout=60, what="the session")
    session["proc"].kill()
    session["proc"].wait()
    orphans = marked(session["marker"])
    assert orphans, "SIGKILL of the session alone leaves its programs running"
    command = json.loads(json.dumps(session["proc"].args))
    command[command.index("--port") + 1] = str(free_port())
    with (session["dir"] / "desktop" / "desktop.log").open("ab") as log:
        session["proc"] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    wait_until(
        lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in orphans),
        timeout=60,
        what="the old session's programs to be ended",
    )

    def new_session_runs() -> bool:
        new = _state_with(session["dir"], "selkies")
        return bool(new) and new["pid"] == session["proc"].pid != state["pid"]

    wait_until(new_session_runs, timeout=60, what="the new session")


def test_missing_xvfb_is_a_clear_error_naming_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(AikoreError) as caught:
        find_programs(needs_browser=True)
    error = caught.value
    assert error.status == 409 and error.code == "desktop_unavailable"
    assert "Xvfb" in str(error) and "openbox" in str(error) and "Chromium" in str(error)


def test_a_desktop_app_needs_no_browser():
    assert BROWSER is not None
    programs = find_programs(needs_browser=False)
    assert isinstance(programs, Programs) and programs.browser is None


def test_a_browser_run_that_found_no_usable_sandbox_is_recognised(tmp_path: Path):
    log = tmp_path / "browser.log"
    log.write_bytes(b"[1:1:FATAL:zygote_host_impl_linux.cc(127)] No usable sandbox! ...\n")
    mark = log.stat().st_size
    assert _sandbox_refused(log, 0)
    assert not _sandbox_refused(log, mark)  # only what the last run wrote counts
    command = browser_command("chromium", "http://127.0.0.1:1/", tmp_path, 800, 600, sandbox=False)
    assert "--no-sandbox" in command and "--kiosk" in command and "--app=http://127.0.0.1:1/" in command
