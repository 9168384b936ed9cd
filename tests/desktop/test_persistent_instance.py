"""A persistent instance of the demo blueprint in a real AiKore: desktop, proxy, stop, re-adoption."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
from playwright.sync_api import sync_playwright

from aikore.desktop.display import lock_path
from tests.desktop.conftest import BROWSER, desktop_browser_hits, marked, needs_desktop
from tests.helpers import AikoreProcess, free_port, wait_until

pytestmark = needs_desktop

# Reads every canvas of the Selkies client back through a 2D copy and counts non-black samples.
_LIT_PIXELS = """() => [...document.querySelectorAll('canvas')].map(c => {
  if (!c.width || !c.height) return 0;
  const copy = document.createElement('canvas');
  copy.width = c.width; copy.height = c.height;
  const ctx = copy.getContext('2d');
  ctx.drawImage(c, 0, 0);
  const px = ctx.getImageData(0, 0, c.width, c.height).data;
  let lit = 0;
  for (let i = 0; i < px.length; i += 4 * 101) if (px[i] | px[i + 1] | px[i + 2]) lit++;
  return lit;
})"""


def _create(aikore: AikoreProcess, name: str, **extra: Any) -> dict[str, Any]:
    body = {"name": name, "blueprint": "demo", "persistent_mode": True, "desktop_resolution": "1280x720", **extra}
    created = aikore.request("POST", "/api/instances", body)
    assert created.status == 201, created.body
    return created.json()


def _start_and_wait_running(aikore: AikoreProcess, instance_id: int) -> dict[str, Any]:
    started = aikore.request("POST", f"/api/instances/{instance_id}/start")
    assert started.status == 200, started.body

    def running() -> dict[str, Any] | None:
        data = aikore.request("GET", f"/api/instances/{instance_id}").json()
        assert data["status"] in ("starting", "running"), data
        return data if data["status"] == "running" else None

    return wait_until(running, timeout=90, what="the instance to be running")


def _session_state(aikore: AikoreProcess, name: str) -> dict[str, Any] | None:
    path = aikore.data_dir / "instances" / name / "desktop" / "state.json"
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return state if {"selkies", "browser"} <= set(state["processes"]) else None


def _stop_and_check_nothing_left(aikore: AikoreProcess, instance_id: int, name: str, state: dict[str, Any]) -> None:
    stopped = aikore.request("POST", f"/api/instances/{instance_id}/stop")
    assert stopped.status == 200, stopped.body
    wait_until(
        lambda: aikore.request("GET", f"/api/instances/{instance_id}").json()["status"] == "stopped",
        timeout=60,
        what="the instance to stop",
    )
    marker = str(aikore.data_dir / "instances" / name / "desktop" / "state.json")
    assert marked(marker) == []
    for role, pid in state["processes"].items():
        alive = psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        assert not alive, f"{role} (pid {pid}) outlived the stop"
    assert not psutil.pid_exists(state["pid"]) or psutil.Process(state["pid"]).status() == psutil.STATUS_ZOMBIE
    assert not lock_path(state["display"]).exists()


def _lit_canvas_pixels(base: str, desktop_url: str) -> tuple[int, int]:
    """Lit samples of the Selkies client's canvas: opened directly, then framed in a dashboard page."""
    assert BROWSER is not None
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=BROWSER, args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
        try:
            page = browser.new_page()
            page.goto(base + desktop_url)

            def lit_direct() -> int:
                return max(page.evaluate(_LIT_PIXELS) or [0])

            direct = wait_until(lit_direct, timeout=60, interval=0.5, what="video on the client's canvas")
            # The dashboard's "View" frames the desktop: both headers (AiKore's frame-src, Selkies'
            # frame-ancestors) must allow it on this origin.
            page.goto(base + "/")
            page.evaluate(
                "url => { const f = document.createElement('iframe'); f.id = 'desk'; f.width = 1280; "
                "f.height = 720; f.src = url; document.body.appendChild(f); }",
                desktop_url,
            )

            def lit_framed() -> int:
                element = page.query_selector("#desk")
                frame = element.content_frame() if element is not None else None
                return max(frame.evaluate(_LIT_PIXELS) or [0]) if frame is not None else 0

            framed = wait_until(lit_framed, timeout=60, interval=0.5, what="video in the framed client")
            return direct, framed
        finally:
            browser.close()


def test_persistent_demo_instance_is_streamed_at_its_desktop_route_and_stops_cleanly(
    aikore_process: Callable[..., AikoreProcess],
):
    aikore = aikore_process()
    created = _create(aikore, "desk", desktop_fps=20)
    assert created["desktop_url"] == "/desktop/desk/"
    assert (created["desktop_resolution"], created["desktop_fps"]) == ("1280x720", 20)
    running = _start_and_wait_running(aikore, created["id"])
    assert isinstance(running["persistent_port"], int) and running["persistent_port"] != running["port"]
    state = wait_until(lambda: _session_state(aikore, "desk"), timeout=60, what="the desktop session")
    assert state["port"] == running["persistent_port"] and (state["width"], state["height"]) == (1280, 720)

    # The browser inside the desktop shows the app: the app logs its page load by a windowed Chromium.
    instance_log = aikore.data_dir / "instances" / "desk" / "logs" / "instance.log"
    wait_until(lambda: desktop_browser_hits(instance_log), timeout=60, what="the in-desktop browser to load the app")

    # Through AiKore's proxy, the Selkies client loads and its websocket carries video.
    direct, framed = _lit_canvas_pixels(aikore.base, created["desktop_url"])
    assert direct > 0 and framed > 0
    _stop_and_check_nothing_left(aikore, created["id"], "desk", state)


def test_kill_9_of_aikore_then_restart_readopts_the_whole_desktop_session(
    aikore_process: Callable[..., AikoreProcess],
):
    aikore = aikore_process()
    created = _create(aikore, "keep")
    _start_and_wait_running(aikore, created["id"])
    before = wait_until(lambda: _session_state(aikore, "keep"), timeout=60, what="the desktop session")
    aikore.kill()
    assert psutil.pid_exists(before["pid"]), "the desktop session must outlive AiKore"

    again = aikore_process(data_dir=aikore.data_dir, port=aikore.port)
    data = again.request("GET", f"/api/instances/{created['id']}").json()
    assert data["status"] == "running" and data["persistent_port"] == before["port"]
    after = _session_state(again, "keep")
    assert after is not None and after["pid"] == before["pid"] and after["display"] == before["display"]
    # The same programs, not new ones (the browser alone may have been restarted by the session meanwhile).
    for role in ("xvfb", "window-manager", "selkies"):
        assert after["processes"][role] == before["processes"][role]

    def selkies_page() -> bytes | None:
        page = again.request("GET", "/desktop/keep/", headers={"Accept": "text/html"})
        return page.body if page.status == 200 else None

    assert b"<html" in wait_until(selkies_page, timeout=30, what="the re-adopted desktop to be served").lower()
    _stop_and_check_nothing_left(again, created["id"], "keep", after)


def test_start_without_xvfb_fails_at_once_naming_what_is_missing(
    aikore_process: Callable[..., AikoreProcess], tmp_path: Path
):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # Only what the launch itself needs: no Xvfb, openbox or browser on this PATH.
    os.symlink("/bin/bash", bin_dir / "bash")
    aikore = aikore_process(env={"PATH": str(bin_dir)})
    created = _create(aikore, "nox")
    answer = aikore.request("POST", f"/api/instances/{created['id']}/start")
    # Refused outright, or recorded as the failed start's reason: either way it names what is missing.
    if answer.status == 409:
        error = answer.json()["error"]
        assert error["code"] == "desktop_unavailable" and "Xvfb" in error["message"]
    else:
        assert answer.status == 200, answer.body
    data = aikore.request("GET", f"/api/instances/{created['id']}").json()
    assert data["status"] in ("stopped", "error") and data["pid"] is None
    if data["status"] == "error":
        assert "Xvfb" in data["status_message"] and "persistent_mode" in data["status_message"]


def test_desktop_settings_can_change_while_the_instance_runs(aikore_process: Callable[..., AikoreProcess]):
    aikore = aikore_process()
    created = _create(aikore, "live")
    _start_and_wait_running(aikore, created["id"])
    patched = aikore.request("PATCH", f"/api/instances/{created['id']}", {"desktop_fps": 15})
    assert patched.status == 200 and patched.json()["desktop_fps"] == 15
    assert aikore.request("POST", f"/api/instances/{created['id']}/stop").status == 200


def test_the_desktop_is_served_on_the_instance_public_port_too(aikore_process: Callable[..., AikoreProcess]):
    public = free_port()
    aikore = aikore_process(extra_args=["--no-auth", "--public-ports", f"{public}-{public}"])
    created = _create(aikore, "pub", public_port=public)
    _start_and_wait_running(aikore, created["id"])
    there = AikoreProcess(data_dir=aikore.data_dir, port=public)

    def selkies_page() -> bytes | None:
        page = there.request("GET", "/desktop/pub/", headers={"Accept": "text/html"})
        return page.body if page.status == 200 else None

    assert b"<html" in wait_until(selkies_page, timeout=60, what="the desktop on the public port").lower()
    # The rest of the public port is still the app, and no other instance's desktop is reachable there.
    assert b"AiKore demo app" in there.request("GET", "/").body
    assert there.request("GET", "/desktop/other/").status == 404


def test_the_auth_gate_covers_the_desktop_and_selkies_asks_for_no_login_of_its_own(
    aikore_process: Callable[..., AikoreProcess],
):
    token = "persistent-token-0123456789abcdef"
    aikore = aikore_process(extra_args=["--token", token])
    aikore.token = token
    created = _create(aikore, "gated")
    _start_and_wait_running(aikore, created["id"])

    def selkies_page() -> bytes | None:
        page = aikore.request("GET", "/desktop/gated/", headers={"Accept": "text/html"})
        return page.body if page.status == 200 else None

    # With AiKore's credentials the client loads, with no Basic-auth challenge from Selkies behind it.
    assert b"<html" in wait_until(selkies_page, timeout=60, what="the desktop with a token").lower()
    anonymous = aikore.request("GET", "/desktop/gated/", auth=False)
    assert anonymous.status == 401
    upgrade = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}  # fmt: skip
    refused = aikore.request("GET", "/desktop/gated/api/websockets", headers=upgrade, auth=False)
    assert refused.status in (401, 403)
