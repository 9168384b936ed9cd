"""The Versions dialog in headless Chromium: the row's badge, Update, the snapshot, Roll back."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import expect

from tests.dashboard.conftest import Dashboard, browser, dashboard  # noqa: F401 (fixtures)
from tests.versions.conftest import BLUEPRINT, Upstream, offline_env, versioned_blueprints
from tests.versions.test_update_rollback import V1_REQS, V2_REQS


def test_update_from_the_dialog_then_roll_back(
    dashboard: Callable[..., Dashboard], upstream: Upstream, wheels: Path, tmp_path: Path  # noqa: F811
) -> None:
    upstream.release("v1", V1_REQS)
    upstream.release("v2", V2_REQS)
    board = dashboard(extra_args=["--blueprints-dir", str(versioned_blueprints(tmp_path, upstream))],
                      env=offline_env(tmp_path, wheels))
    created = board.api("POST", "/api/instances", {"name": "app", "blueprint": BLUEPRINT})
    board.api("POST", f"/api/instances/{created['id']}/start")
    board.login()
    page = board.page
    row = page.locator(board.row("app"))
    status = row.locator("[data-show='status']")
    badge = row.locator("[data-show='version']")
    expect(status).to_have_text("running", timeout=60_000)
    expect(badge).to_have_text("v1 · v2 available")

    row.locator(".more-toggle").click()
    row.locator("[data-action='versions']").click()
    dialog = page.locator("#versions-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#versions-facts")).to_contain_text("APP_REF = v1")
    expect(page.locator("#versions-facts")).to_contain_text("v2")
    expect(page.locator("#versions-snapshots")).to_contain_text("No snapshots yet")
    page.locator("#versions-update").click()
    expect(page.locator("#confirm-title")).to_have_text("Update app to v2?")
    page.click("#confirm-ok")
    snapshot = page.locator("#versions-snapshots tr[data-snapshot]")
    expect(snapshot).to_have_count(1, timeout=60_000)
    expect(snapshot).to_contain_text("v1")
    expect(snapshot).to_contain_text("before update to v2")
    board.shot("versions-dialog")
    page.locator("#versions-dialog [data-close]").first.click()
    expect(status).to_have_text("running", timeout=60_000)
    expect(badge).to_have_text("v2")
    assert board.server.request("GET", "/app/app/").json() == {"release": "v2", "probe": "2.0"}

    row.locator(".more-toggle").click()
    row.locator("[data-action='versions']").click()
    snapshot.locator("button", has_text="Roll back").click()
    expect(page.locator("#confirm-title")).to_have_text(re.compile(r"^Roll app back to v1\?$"))
    page.click("#confirm-ok")
    expect(page.locator("#toast")).to_contain_text("Rolled app back to v1", timeout=60_000)
    page.locator("#versions-dialog [data-close]").first.click()
    expect(status).to_have_text("running", timeout=60_000)
    expect(badge).to_have_text("v1 · v2 available")
    assert board.server.request("GET", "/app/app/").json() == {"release": "v1", "probe": "1.0"}
