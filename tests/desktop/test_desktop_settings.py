"""Per-instance desktop settings in the API, and the desktop fields of the instance JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from aikore.desktop.companion import Programs, internal_url, is_desktop_app, ready_url, session_command
from aikore.store.blueprints import Blueprint


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("desktop_resolution", "1920*1080"),
        ("desktop_resolution", "1921x1080"),
        ("desktop_resolution", "100000x1080"),
        ("desktop_fps", 0),
        ("desktop_fps", "30"),
        ("desktop_fps", True),
    ],
)
async def test_bad_desktop_settings_are_refused_naming_the_field(client: TestClient, field: str, value: Any):
    answer = await client.post("/api/instances", json={"name": "bad", "blueprint": "demo", field: value})
    assert answer.status == 400
    assert (await answer.json())["error"]["message"].startswith(f"{field}:")


async def test_desktop_settings_default_to_1080p_and_can_be_patched(client: TestClient):
    created = await (await client.post("/api/instances", json={"name": "d", "blueprint": "demo"})).json()
    assert (created["desktop_resolution"], created["desktop_fps"]) == ("1920x1080", 30)
    answer = await client.patch(f"/api/instances/{created['id']}", json={"desktop_resolution": "2560x1440"})
    assert (await answer.json())["desktop_resolution"] == "2560x1440"


async def test_instances_without_persistent_mode_have_no_desktop(client: TestClient):
    created = await (await client.post("/api/instances", json={"name": "plain", "blueprint": "demo"})).json()
    assert created["desktop_url"] is None and created["persistent_port"] is None
    assert (await client.get("/desktop/plain/")).status == 404


def test_the_in_desktop_browser_opens_keep_prefix_apps_under_their_mount():
    jupyter = Blueprint(id="j", name="J", proxy_mode="keep-prefix", health="/api/status", path=Path("j.sh"))
    comfy = Blueprint(id="c", name="C", proxy_mode="strip-prefix", health="/", path=Path("c.sh"))
    assert internal_url(21000, "lab", jupyter) == "http://127.0.0.1:21000/app/lab/"
    assert ready_url(21000, "lab", jupyter) == "http://127.0.0.1:21000/app/lab/api/status"
    assert internal_url(21001, "comfy", comfy) == "http://127.0.0.1:21001/"
    assert ready_url(21001, "comfy", comfy) == "http://127.0.0.1:21001/"


def test_session_command_carries_the_instance_settings(tmp_path: Path):
    programs = Programs(xvfb="/usr/bin/Xvfb", window_manager="/usr/bin/openbox", browser="/usr/bin/chromium")
    command = session_command(
        instance_dir=tmp_path / "inst", programs=programs, port=25000, resolution="1280x720", fps=24,
        app_url="http://127.0.0.1:21000/", app_ready_url="http://127.0.0.1:21000/health",
    )  # fmt: skip
    joined = " ".join(command)
    assert "--width 1280 --height 720 --fps 24" in joined and "--port 25000" in joined
    assert "--browser /usr/bin/chromium --url http://127.0.0.1:21000/" in joined
    desktop_app = session_command(
        instance_dir=tmp_path / "inst", programs=Programs("/usr/bin/Xvfb", "/usr/bin/openbox", None), port=25000,
        resolution="1920x1080", fps=30, app_url=None, app_ready_url=None, display=140,
    )  # fmt: skip
    assert "--browser" not in desktop_app and desktop_app[desktop_app.index("--display") + 1] == "140"


def test_only_a_true_desktop_header_makes_a_desktop_app():
    def bp(value: str | None) -> Blueprint:
        extra = (("desktop", value),) if value is not None else ()
        return Blueprint(id="x", name="X", path=Path("x.sh"), extra=extra)

    assert is_desktop_app(bp("true")) and is_desktop_app(bp(" Yes "))
    assert not is_desktop_app(bp("false")) and not is_desktop_app(bp(None))
