"""AiKore's own pages under /app/<name>/ in a browser: a crash says so with its exit code, a start
says how long it has taken, and each leads back to the dashboard."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import expect

from tests.dashboard.conftest import Dashboard
from tests.helpers import wait_until


def test_a_crashed_instance_page_says_it_crashed_and_leads_back(shared_dashboard: Callable[..., Dashboard]) -> None:
    board = shared_dashboard()
    created = board.api("POST", "/api/instances", {"name": "pg-crash", "blueprint": "demo"})
    board.api("PUT", f"/api/instances/{created['id']}/script", {"content": "echo 'giving up' >&2\nexit 3\n"})
    board.api("POST", f"/api/instances/{created['id']}/start")
    wait_until(lambda: board.api("GET", f"/api/instances/{created['id']}")["status"] == "error", what="the crash")
    board.login()
    page = board.page
    page.goto(f"{board.base}/app/pg-crash/")
    expect(page.locator("h1")).to_have_text("This instance is not running")
    expect(page.locator("body")).to_contain_text("pg-crash crashed with exit code 3.")
    expect(page.locator("body")).not_to_contain_text("stopped")
    page.click("text=Back to the AiKore dashboard")
    expect(page).to_have_url(f"{board.base}/")
    expect(page.locator(board.row("pg-crash"))).to_be_visible()


def test_a_starting_instance_page_shows_how_long_and_an_unknown_one_leads_back(
    shared_dashboard: Callable[..., Dashboard],
) -> None:
    board = shared_dashboard()
    created = board.api("POST", "/api/instances", {"name": "pg-slow", "blueprint": "demo"})
    script = "echo '::aikore-phase installing-requirements 0.5'\nsleep 120\n"
    board.api("PUT", f"/api/instances/{created['id']}/script", {"content": script})
    board.api("POST", f"/api/instances/{created['id']}/start")
    board.login()
    page = board.page
    page.goto(f"{board.base}/app/pg-slow/")
    expect(page.locator("h1")).to_have_text("Starting…")
    expect(page.locator("body")).to_contain_text(re.compile(r"Starting for (\d+ min )?\d+ s\."))
    # The install phase the script reports (README, Install progress), refreshed every 2 s.
    expect(page.locator("body")).to_contain_text("Now: installing: installing requirements (50%).")
    expect(page.locator("a", has_text="Back to the AiKore dashboard")).to_have_attribute("href", "/")
    board.api("POST", f"/api/instances/{created['id']}/stop")

    page.goto(f"{board.base}/app/pg-nobody/")
    expect(page.locator("h1")).to_have_text("No such instance")
    page.click("text=Back to the AiKore dashboard")
    expect(page).to_have_url(f"{board.base}/")
