"""A blueprint that is a desktop app (``# aikore.desktop: true``): the app itself runs on the display."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from selkies.Xlib import display as xdisplay

from tests.desktop.conftest import marked, needs_desktop
from tests.helpers import AikoreProcess, wait_until

pytestmark = needs_desktop

WINDOW_TITLE = "aikore-desktop-app"
BLUEPRINT = f"""#!/usr/bin/env bash
### AIKORE-METADATA-START ###
# aikore.name: X window
# aikore.category: Test
# aikore.description: Opens one X window on $DISPLAY and keeps it open (no web UI)
# aikore.desktop: true
### AIKORE-METADATA-END ###
exec "$AIKORE_PYTHON" - <<'PY'
import os
from selkies.Xlib import X, display
d = display.Display()
screen = d.screen()
window = screen.root.create_window(0, 0, 400, 300, 0, screen.root_depth, X.InputOutput, X.CopyFromParent,
                                   background_pixel=screen.white_pixel)
window.set_wm_name("{WINDOW_TITLE}")
window.map()
d.sync()
print("window on", os.environ["DISPLAY"], flush=True)
while True:
    d.next_event()
PY
"""


def _window_titles(number: int) -> list[str]:
    conn = xdisplay.Display(f":{number}")
    try:
        titles = []
        pending = [conn.screen().root]
        while pending:
            window = pending.pop()
            name = window.get_wm_name()
            if name:
                titles.append(str(name))
            pending.extend(window.query_tree().children)
        return titles
    finally:
        conn.close()


def test_desktop_app_blueprint_runs_the_app_itself_on_the_desktop(
    aikore_process: Callable[..., AikoreProcess], tmp_path: Path
):
    blueprints = tmp_path / "blueprints"
    blueprints.mkdir()
    (blueprints / "xwindow.sh").write_text(BLUEPRINT)
    aikore = aikore_process(extra_args=["--no-auth", "--blueprints-dir", str(blueprints)])
    created = aikore.request(
        "POST", "/api/instances", {"name": "xapp", "blueprint": "xwindow", "persistent_mode": True}
    )
    assert created.status == 201, created.body
    instance_id = created.json()["id"]
    assert aikore.request("POST", f"/api/instances/{instance_id}/start").status == 200

    def running() -> dict[str, Any] | None:
        data = aikore.request("GET", f"/api/instances/{instance_id}").json()
        assert data["status"] in ("starting", "running"), data
        return data if data["status"] == "running" else None

    # No web UI: the instance is ready once its desktop answers on the app's port.
    data = wait_until(running, timeout=90, what="the desktop app instance to be running")
    assert data["persistent_port"] == data["port"]
    state_file = aikore.data_dir / "instances" / "xapp" / "desktop" / "state.json"
    state = json.loads(state_file.read_text())
    assert "browser" not in state["processes"]
    log = aikore.data_dir / "instances" / "xapp" / "logs" / "instance.log"
    wait_until(lambda: f"window on :{state['display']}" in log.read_text(), timeout=60, what="the app's window")
    assert WINDOW_TITLE in _window_titles(state["display"])

    page = aikore.request("GET", "/desktop/xapp/", headers={"Accept": "text/html"})
    assert page.status == 200 and b"<html" in page.body.lower()
    assert aikore.request("POST", f"/api/instances/{instance_id}/stop").status == 200
    wait_until(
        lambda: aikore.request("GET", f"/api/instances/{instance_id}").json()["status"] == "stopped",
        timeout=60,
        what="the instance to stop",
    )
    assert marked(str(state_file)) == []
