"""Persistent mode, AiKore's side: what a desktop session needs and how it joins an instance.

The session itself runs as its own process (``aikore.desktop.session``); the supervisor starts it
as a companion of the instance's app, records it for re-adoption and stops it with the app. This
module checks the system pieces before a start (a clear error, never a hang), builds the session's
command line from the instance's settings and keeps its Selkies port. ``aikore.desktop.routes``
serves it at ``/desktop/<name>/``.
"""

from __future__ import annotations

import json
import shlex
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import proxy
from aikore.desktop.display import free_display, socket_path
from aikore.errors import AikoreError
from aikore.store.blueprints import Blueprint
from aikore.store.instance import Instance
from aikore.store.validation import parse_resolution
from aikore.supervisor.process import CompanionSpec
from aikore.supervisor.states import STOPPED_STATES
from aikore.supervisor.supervisor import Supervisor

PREFIX = "/desktop"
# The supervisor's role name for the session process (a row in process_groups).
ROLE = "desktop"
BROWSERS = ("chromium", "chromium-browser", "google-chrome-stable", "google-chrome")
_TRUE = {"1", "true", "yes", "on"}
_INSTALL_HINT = "install it (Debian/Ubuntu: apt-get install xvfb openbox chromium) or turn persistent_mode off"


@dataclass(frozen=True)
class Programs:
    """The system programs a session runs, found on PATH."""

    xvfb: str
    window_manager: str
    browser: str | None


def is_desktop_app(meta: Blueprint) -> bool:
    """True when the blueprint header says ``# aikore.desktop: true`` (an app with no web UI)."""
    return (meta.get("desktop") or "").strip().lower() in _TRUE


def find_programs(needs_browser: bool) -> Programs:
    """Every program the session needs, or a 409 naming each one that is missing."""
    xvfb, wm = shutil.which("Xvfb"), shutil.which("openbox")
    browser = next((found for name in BROWSERS if (found := shutil.which(name))), None)
    missing = [label for label, path in (("Xvfb", xvfb), ("openbox", wm)) if path is None]
    if needs_browser and browser is None:
        missing.append("a Chromium browser (" + " / ".join(BROWSERS) + ")")
    if find_spec("selkies") is None:
        missing.append("the selkies Python package (pip install 'aikore[persistent]')")
    if missing:
        raise AikoreError(
            "desktop_unavailable",
            f"persistent_mode: this machine lacks {', '.join(missing)}; {_INSTALL_HINT}",
            409,
            field="persistent_mode",
        )
    assert xvfb is not None and wm is not None
    return Programs(xvfb, wm, browser if needs_browser else None)


def session_dir(instance_dir: Path) -> Path:
    """Where a session keeps its state file, logs and HOME (inside the instance folder)."""
    return instance_dir / "desktop"


def state_path(instance_dir: Path) -> Path:
    return session_dir(instance_dir) / "state.json"


def read_state(instance_dir: Path) -> dict[str, Any] | None:
    """The running session's state (display, port, process ids), or None when there is none."""
    try:
        data = json.loads(state_path(instance_dir).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def internal_url(port: int, name: str, meta: Blueprint) -> str:
    """The app's own address: what the in-desktop browser opens (keep-prefix apps live under /app/<name>)."""
    base = f"http://127.0.0.1:{port}"
    return f"{base}/app/{name}/" if meta.proxy_mode == proxy.KEEP_PREFIX else f"{base}/"


def ready_url(port: int, name: str, meta: Blueprint) -> str:
    health = meta.health if meta.health.startswith("/") else f"/{meta.health}"
    prefix = f"/app/{name}" if meta.proxy_mode == proxy.KEEP_PREFIX else ""
    return f"http://127.0.0.1:{port}{prefix}{health}"


def session_command(
    *,
    instance_dir: Path,
    programs: Programs,
    port: int,
    resolution: str,
    fps: int,
    app_url: str | None,
    app_ready_url: str | None,
    display: int | None = None,
) -> list[str]:
    """The command line of one instance's desktop session process."""
    width, height = parse_resolution(resolution)
    folder = session_dir(instance_dir)
    command = [
        sys.executable, "-m", "aikore.desktop.session",
        "--state", str(state_path(instance_dir)),
        "--home", str(folder / "home"),
        "--port", str(port),
        "--width", str(width), "--height", str(height), "--fps", str(fps),
        "--xvfb", programs.xvfb, "--window-manager", programs.window_manager,
    ]  # fmt: skip
    if display is not None:
        command += ["--display", str(display)]
    if programs.browser and app_url:
        command += ["--browser", programs.browser, "--url", app_url, "--ready-url", app_ready_url or app_url]
    return command


def desktop_url(instance: Instance) -> str | None:
    """Where the desktop of a persistent instance is opened, on the main port."""
    return f"{PREFIX}/{instance.name}/" if instance.persistent_mode else None


# -- part of the instance: a supervisor companion ---------------------------------------------


class Desktops:
    """Adds a desktop session to every start of a persistent instance.

    The session's Selkies port is reserved in the supervisor's port pool and written to the
    instance's ``persistent_port`` with the start (so the route is right from the first
    "starting" event, and a restarted AiKore finds it when it re-adopts the session). Selkies
    answering is part of the instance's readiness: ``running`` means the desktop is up too.
    """

    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor
        # Displays promised to desktop apps whose Xvfb may not have claimed them yet.
        self.displays: dict[int, int] = {}

    def companion(self, instance: Instance, env: Mapping[str, str]) -> CompanionSpec | None:
        """The supervisor's companion factory: the session's command for a persistent instance."""
        if not instance.persistent_mode:
            return None
        workspace = self.supervisor.workspace
        meta = workspace.metadata(instance.name, instance.blueprint)
        desktop_app = is_desktop_app(meta)
        programs = find_programs(needs_browser=not desktop_app)
        app_port = int(env["WEBUI_PORT"])
        if desktop_app:
            # No web UI: Selkies takes the app's port, so readiness (its health path) and
            # /app/<name>/ both mean the desktop the app shows on.
            port = app_port
        else:
            port = self.supervisor.ports.reserve(_owner(instance), preferred=instance.persistent_port)
        folder = workspace.path(instance.name)
        session_dir(folder).mkdir(parents=True, exist_ok=True)
        display = self._promise_display(instance.id) if desktop_app else None
        command = session_command(
            instance_dir=folder,
            programs=programs,
            port=port,
            resolution=instance.desktop_resolution,
            fps=instance.desktop_fps,
            app_url=None if desktop_app else internal_url(app_port, instance.name, meta),
            app_ready_url=None if desktop_app else ready_url(app_port, instance.name, meta),
            display=display,
        )
        main_env = _display_env(folder, display, env) if display is not None else {}
        return CompanionSpec(
            role=ROLE, argv=command, port=port, main_env=main_env,
            # A desktop app's Selkies is probed as the app itself (same port).
            ready_path=None if desktop_app else "/",
            row_fields={"persistent_port": port},
        )

    def _promise_display(self, instance_id: int) -> int:
        promised = {n for iid, n in self.displays.items() if iid != instance_id}
        number = free_display()
        while number in promised:
            number = free_display(number + 1)
        self.displays[instance_id] = number
        return number

    def stopped(self, instance: Instance) -> None:
        """Supervisor ``on_stop``: the Selkies port goes back to the pool."""
        self.displays.pop(instance.id, None)
        self.supervisor.ports.release(instance.persistent_port, _owner(instance))


def live_port(instance: Instance) -> int | None:
    """The Selkies port of a persistent instance while it has processes, else None."""
    if not instance.persistent_mode or instance.status in STOPPED_STATES:
        return None
    return instance.persistent_port


_WAIT_FOR_DISPLAY = """# Written by AiKore (persistent mode): bash reads this file (BASH_ENV) before launch.sh, so a
# desktop app starts only once its X display accepts clients; the session starts alongside it.
for _ in $(seq 300); do [ -S {socket} ] && break; sleep 0.1; done
{previous}
"""


def _display_env(folder: Path, display: int, env: Mapping[str, str]) -> dict[str, str]:
    """A desktop app's additions to its environment: its display, and a wait for that display."""
    previous = env.get("BASH_ENV")
    wait = session_dir(folder) / "wait-for-display.sh"
    wait.write_text(
        _WAIT_FOR_DISPLAY.format(
            socket=shlex.quote(str(socket_path(display))),
            previous=f". {shlex.quote(previous)}" if previous else "",
        )
    )
    return {"DISPLAY": f":{display}", "BASH_ENV": str(wait)}


def _owner(instance: Instance) -> str:
    return f"{instance.name}/{ROLE}"
