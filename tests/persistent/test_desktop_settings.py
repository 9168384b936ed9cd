"""Per-instance desktop settings in the API, and the desktop fields of the instance JSON."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient


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
