"""The workspace in headless Chromium: the tools pane's tabs, the splitter, the system strip, what
the browser remembers across a reload, and the phone's full-screen panes."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.dashboard.conftest import Dashboard
from tests.helpers import wait_until

PHONE = {"width": 390, "height": 844}
RUNNING_TIMEOUT = 60_000


def _start(board: Dashboard, name: str) -> int:
    created = board.api("POST", "/api/instances", {"name": name, "blueprint": "demo"})
    board.api("POST", f"/api/instances/{created['id']}/start")
    return created["id"]


def _logs(page: Page, instance_id: int):
    return page.locator(f"#tool-logs-{instance_id}")


def _sample_time(page: Page) -> float:
    return float(page.get_attribute("#system-strip", "data-sample-time") or 0)


def test_two_instances_logs_side_by_side_while_the_strip_updates(dashboard: Callable[..., Dashboard]) -> None:
    board = dashboard(gpus=True)
    first = _start(board, "alpha")
    second = _start(board, "beta")
    board.login()
    page = board.page
    for name in ("alpha", "beta"):
        row = page.locator(board.row(name))
        expect(row.locator("[data-show='status']")).to_have_text("running", timeout=RUNNING_TIMEOUT)
        row.locator("[data-action='logs']").click()
    tabs = page.locator("#tools-tabs [role='tab']")
    expect(tabs).to_have_count(2)
    expect(tabs.nth(1)).to_have_attribute("aria-selected", "true")
    # One at a time first: the hidden tab holds no stream; side by side, both follow live.
    expect(_logs(page, first)).to_be_hidden()
    page.click("#tools-arrange")
    expect(page.locator("#tools-arrange")).to_have_attribute("aria-pressed", "true")
    for instance_id, name in ((first, "alpha"), (second, "beta")):
        panel = _logs(page, instance_id)
        expect(panel).to_be_visible()
        expect(panel.locator(".logs-output")).to_contain_text(f"demo: starting {name}", timeout=30_000)
        expect(panel.locator(".logs-state")).to_have_text("Following live output")
    # The strip shows CPU, RAM and both (stand-in) GPUs, and keeps changing meanwhile.
    strip = page.locator("#system-strip")
    expect(strip.locator("[data-strip='cpu'] [data-strip-value]")).to_have_text(re.compile(r"^\d+%$"))
    expect(strip.locator("[data-strip^='gpu-']")).to_have_count(2)
    expect(strip.locator("[data-strip='gpu-0'] [data-strip-vram]")).to_contain_text("GiB")
    seen = _sample_time(page)
    wait_until(lambda: _sample_time(page) > seen, what="a new sample in the strip")
    board.shot("workspace", readme=True)

    # Closing a tab ends its stream: the browser aborts that request.
    ended: list[str] = []
    page.on("requestfailed", lambda request: ended.append(request.url))
    page.locator(f"#tools-tabs [data-tool='logs-{first}'] .tool-close").click()
    expect(_logs(page, first)).to_have_count(0)
    expect(tabs).to_have_count(1)
    wait_until(lambda: any(f"/instances/{first}/logs/stream" in url for url in ended), what="alpha's stream ended")
    assert not any(f"/instances/{second}/logs/stream" in url for url in ended)
    expect(_logs(page, second).locator(".logs-state")).to_have_text("Following live output")
