"""The instances table at scale and with long names: natural order, a filter, a sticky header, bulk
start/stop, a compact actions menu; a 63-character name truncated (whole on hover and focus)
without pushing anything off screen at 1440 or 390 px; compact cards on a phone."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.dashboard.conftest import Dashboard

LONG = "a-very-long-instance-name-that-uses-every-one-of-its-63-chars-k"
PHONE = {"width": 390, "height": 844}
WIDE = {"width": 1440, "height": 900}
MANY = [f"x{n}" for n in range(1, 23)]
RUNNING_TIMEOUT = 60_000


@pytest.fixture(scope="module", autouse=True)
def instances(shared_aikore) -> None:
    """22 instances (x1..x22) and one with the longest valid name, on the module's aikore."""
    assert len(LONG) == 63
    for name in [*MANY, LONG]:
        reply = shared_aikore.request("POST", "/api/instances", {"name": name, "blueprint": "demo"})
        assert reply.status == 201, reply.body


def _no_sideways_scroll(page: Page, width: int) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    overflow = page.evaluate("[...document.querySelectorAll('.pane-main')].map(p => p.scrollWidth - p.clientWidth)")
    assert all(extra <= 0 for extra in overflow), overflow


def _centred(page: Page, selector: str, width: int) -> None:
    box = page.locator(selector).bounding_box()
    assert box is not None
    assert box["x"] >= 0 and box["x"] + box["width"] <= width, box
    assert abs(box["x"] + box["width"] / 2 - width / 2) <= 2, box


@pytest.mark.parametrize("viewport", [WIDE, PHONE], ids=["1440px", "390px"])
def test_a_63_character_name_is_cut_short_and_shown_whole_on_hover_and_focus(
    shared_dashboard: Callable[..., Dashboard], viewport: dict[str, int]
) -> None:
    board = shared_dashboard(viewport=viewport)
    board.login()
    page = board.page
    page.fill("#instances-filter", LONG[:20])
    row = page.locator(board.row(LONG))
    name = row.locator("[data-field='name']")
    link = row.locator("[data-show='url']")
    expect(name).to_have_value(LONG)
    # The name gets the room there is (on a phone, most of the card's width).
    assert name.evaluate("input => input.getBoundingClientRect().width") >= min(viewport["width"] * 0.4, 200)
    expect(name).to_have_attribute("title", LONG)
    expect(link).to_have_attribute("title", re.compile(rf"^/app/{LONG}/(\n|$)"))
    assert link.evaluate("a => a.scrollWidth > a.clientWidth"), "the URL is cut short, not stretching its column"
    _no_sideways_scroll(page, viewport["width"])
    for control in ("[data-action='start']", "[data-action='logs']", ".more-toggle"):
        expect(row.locator(control)).to_be_in_viewport()
        box = row.locator(control).bounding_box()
        assert box is not None and box["x"] + box["width"] <= viewport["width"], control
    # Focus shows the whole name: the field scrolls to the caret at its end.
    name.focus()
    page.keyboard.press("End")
    assert name.evaluate("input => input.scrollLeft") > 0
    page.keyboard.press("Escape")
    board.shot(f"long-name-{viewport['width']}")

    board.action(LONG, "delete").click()
    expect(page.locator("#confirm-dialog")).to_be_visible()
    expect(page.locator("#confirm-title")).to_have_text(f"Delete {LONG}?")
    _centred(page, "#confirm-dialog", viewport["width"])
    _no_sideways_scroll(page, viewport["width"])
    page.keyboard.press("Escape")
    page.click("#add-instance-btn")
    _centred(page, "#add-dialog", viewport["width"])
    page.keyboard.press("Escape")


def test_many_instances_sort_naturally_filter_and_keep_their_header_in_view(
    shared_dashboard: Callable[..., Dashboard],
) -> None:
    board = shared_dashboard(viewport={"width": 1440, "height": 600})
    board.login()
    page = board.page
    names = page.locator("tbody.instance:not([hidden])").evaluate_all("rows => rows.map(r => r.dataset.name)")
    xs = [n for n in names if n.startswith("x")]
    assert xs[:12] == ["x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12"], xs
    expect(page.locator("#instances-count")).to_contain_text("instances")

    page.fill("#instances-filter", "x1")
    expect(page.locator("tbody.instance:not([hidden])")).to_have_count(11)  # x1, x10..x19
    expect(page.locator("#instances-count")).to_have_text(f"11 of {len(page.locator('tbody.instance').all())} shown")
    page.fill("#instances-filter", "")

    # The header row stays at the top of the pane as the list scrolls.
    header = page.locator(".instances thead th").nth(1)
    before = header.bounding_box()
    page.locator(board.row("x22")).scroll_into_view_if_needed()
    after = header.bounding_box()
    assert before is not None and after is not None
    assert after["y"] <= before["y"] and after["y"] >= 0
    expect(header).to_be_in_viewport()

    # Nine buttons per row no more: the rest are in a menu, keyboard first.
    row = page.locator(board.row("x3"))
    assert row.locator(".action-group > .btn:visible").count() <= 4
    toggle = row.locator(".more-toggle")
    toggle.focus()
    page.keyboard.press("Enter")
    menu = row.locator(".more-menu")
    expect(menu).to_be_visible()
    expect(menu.locator("[data-action='terminal']")).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(menu.locator("[data-action='files']")).to_be_focused()
    page.keyboard.press("Escape")
    expect(menu).to_be_hidden()
    expect(toggle).to_be_focused()


def test_bulk_start_and_stop_the_selected_instances(shared_dashboard: Callable[..., Dashboard]) -> None:
    board = shared_dashboard()
    board.login()
    page = board.page
    page.fill("#instances-filter", "x2")  # x2, x20, x21, x22
    expect(page.locator("tbody.instance:not([hidden])")).to_have_count(4)
    page.check("#select-all")
    page.locator(board.row("x20")).locator(".row-select").uncheck()
    expect(page.locator("#bulk-count")).to_have_text("3 selected")
    page.click("#bulk-start")
    expect(page.locator("#toast")).to_have_text("Starting 3 of 3.")
    for name in ("x2", "x21", "x22"):
        expect(page.locator(board.row(name)).locator("[data-show='status']")).to_have_text(
            "running", timeout=RUNNING_TIMEOUT
        )
    expect(page.locator(board.row("x20")).locator("[data-show='status']")).to_have_text("stopped")
    page.click("#bulk-stop")
    for name in ("x2", "x21", "x22"):
        expect(page.locator(board.row(name)).locator("[data-show='status']")).to_have_text(
            "stopped", timeout=RUNNING_TIMEOUT
        )
    page.click("#bulk-clear")
    expect(page.locator("#instances-bulk")).to_be_hidden()


def test_a_phone_shows_22_instances_as_compact_cards(shared_dashboard: Callable[..., Dashboard]) -> None:
    board = shared_dashboard(viewport=PHONE)
    board.login()
    page = board.page
    expect(page.locator("tbody.instance")).to_have_count(len(MANY) + 1, timeout=15_000)
    height = page.evaluate("Math.max(...[...document.querySelectorAll('.pane-main')].map(p => p.scrollHeight))")
    assert height < 23 * 160, f"{height} px for 23 cards"
    _no_sideways_scroll(page, PHONE["width"])
    card = page.locator(board.row("x5"))
    expect(card.locator("[data-field='autostart']")).to_be_hidden()
    card.locator(".details-toggle").click()
    expect(card.locator("[data-field='autostart']")).to_be_visible()
    expect(card.locator(".details-toggle")).to_have_attribute("aria-expanded", "true")
    board.shot("phone-many-instances", full_page=True)
