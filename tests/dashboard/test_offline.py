"""AiKore going away and coming back: a clear banner, actions paused meanwhile, and the errors its
absence caused cleared once it answers again."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Route, expect

from tests.dashboard.conftest import Dashboard


def test_offline_shows_a_banner_pauses_actions_and_clears_stale_errors_on_return(
    dashboard: Callable[..., Dashboard],
) -> None:
    board = dashboard()
    board.api("POST", "/api/instances", {"name": "wifi", "blueprint": "demo"})
    board.login()
    page = board.page
    live = page.locator("#live-status")
    expect(live).to_have_attribute("data-state", "live", timeout=30_000)
    row = page.locator(board.row("wifi"))
    start = row.locator("[data-action='start']")
    banner = page.locator("#offline-banner")
    expect(banner).to_be_hidden()

    # A click whose request never arrives: the row says AiKore did not answer.
    def drop(route: Route) -> None:
        route.abort()

    page.route("**/api/instances/*/start", drop)
    start.click()
    error = row.locator("[data-show='error']")
    expect(error).to_contain_text("AiKore did not answer")
    page.unroute("**/api/instances/*/start", drop)

    board.action("wifi", "script").click()
    save = page.locator("#tools .editor-save")
    expect(save).to_be_enabled()

    board.server.stop()
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("AiKore is not answering")
    expect(live).to_have_attribute("data-state", "offline")
    for control in (start, row.locator("[data-action='logs']"), row.locator(".more-toggle"),
                    page.locator("#add-instance-btn"), row.locator("[data-field='gpu_ids']"), save):
        expect(control).to_be_disabled()
    expect(row.locator("[data-action='open']")).to_have_attribute("aria-disabled", "true")

    board.server.start()
    expect(live).to_have_attribute("data-state", "live", timeout=45_000)
    expect(banner).to_be_hidden()
    expect(error).to_be_hidden()
    expect(start).to_be_enabled()
    expect(row.locator("[data-field='gpu_ids']")).to_be_enabled()
    expect(save).to_be_enabled()
    start.click()
    expect(row.locator("[data-show='status']")).to_have_text("running", timeout=60_000)
