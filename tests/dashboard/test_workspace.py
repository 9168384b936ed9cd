"""The workspace in headless Chromium: the tools pane's tabs, the splitter, the system strip, what
the browser remembers across a reload, and the phone's full-screen panes."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import Locator, Page, expect

from tests.dashboard.conftest import Dashboard
from tests.desktop.conftest import needs_desktop
from tests.helpers import wait_until

PHONE = {"width": 390, "height": 844}
RUNNING_TIMEOUT = 60_000


def _start(board: Dashboard, name: str) -> int:
    created = board.api("POST", "/api/instances", {"name": name, "blueprint": "demo"})
    board.api("POST", f"/api/instances/{created['id']}/start")
    return created["id"]


def _logs(page: Page, instance_id: int) -> Locator:
    return page.locator(f"#tool-logs-{instance_id}")


def _box(page: Page, selector: str) -> dict[str, float]:
    box = page.locator(selector).bounding_box()
    assert box is not None, f"{selector} is not shown"
    return box


def _splitter_value(page: Page) -> int:
    return int(page.get_attribute("#splitter", "aria-valuenow") or 0)


def _no_sideways_scroll(page: Page, width: int) -> None:
    widths = page.evaluate("[document.documentElement.scrollWidth, document.body.scrollWidth]")
    assert max(widths) <= width, widths


def _luminance(css: str) -> float:
    r, g, b = (int(v) / 255 for v in re.findall(r"\d+", css)[:3])
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b)]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(foreground: str, background: str) -> float:
    lighter, darker = sorted((_luminance(foreground), _luminance(background)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def _colours(page: Page, selector: str) -> tuple[str, str]:
    """An element's text colour and the first opaque background behind it (tints are skipped)."""
    return page.evaluate(
        """(selector) => {
          const el = document.querySelector(selector);
          let node = el;
          let bg = "rgb(255, 255, 255)";
          while (node) {
            const c = getComputedStyle(node).backgroundColor;
            if (c.startsWith("rgb(")) { bg = c; break; }
            node = node.parentElement;
          }
          return [getComputedStyle(el).color, bg];
        }""",
        selector,
    )


def _sample_time(page: Page) -> float:
    return float(page.get_attribute("#system-strip", "data-sample-time") or 0)


def test_two_instances_logs_side_by_side_while_the_strip_updates(shared_dashboard: Callable[..., Dashboard]) -> None:
    board = shared_dashboard()
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

    # Closing a tab ends its stream: the browser aborts that request. (Waited for through
    # Playwright: its sync API delivers events only while the test calls into it, never while a
    # plain polling loop sleeps.)
    ended: list[str] = []
    page.on("requestfailed", lambda request: ended.append(request.url))
    with page.expect_event("requestfailed", lambda r: f"/instances/{first}/logs/stream" in r.url, timeout=30_000):
        page.locator(f"#tools-tabs [data-tool='logs-{first}'] .tool-close").click()
    expect(_logs(page, first)).to_have_count(0)
    expect(tabs).to_have_count(1)
    assert not any(f"/instances/{second}/logs/stream" in url for url in ended)
    expect(_logs(page, second).locator(".logs-state")).to_have_text("Following live output")


def test_panes_resize_by_drag_and_keyboard_and_a_reload_keeps_sizes_and_tabs(
    shared_dashboard: Callable[..., Dashboard],
) -> None:
    board = shared_dashboard()
    created = board.api("POST", "/api/instances", {"name": "gamma", "blueprint": "demo"})
    board.login()
    page = board.page
    # No tab open: the page has the whole height, no splitter.
    expect(page.locator("#splitter")).to_be_hidden()
    row = page.locator(board.row("gamma"))
    row.locator("[data-action='logs']").click()
    row.locator(".more-toggle").click()
    row.locator("[data-action='script']").click()
    expect(page.locator("#tools-tabs [role='tab']")).to_have_count(2)
    expect(page.locator(f"#tool-editor-{created['id']}-tab")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#splitter")).to_be_visible()
    start_value = _splitter_value(page)
    tools_before = _box(page, "#tools")["height"]

    # Drag the splitter 150 px up: the tools pane grows by that much.
    grip = _box(page, "#splitter")
    x, y = grip["x"] + grip["width"] / 2, grip["y"] + grip["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x, y - 75)
    page.mouse.move(x, y - 150)
    page.mouse.up()
    tools_dragged = _box(page, "#tools")["height"]
    assert abs(tools_dragged - tools_before - 150) <= 3, (tools_before, tools_dragged)
    assert _splitter_value(page) < start_value

    # The keyboard: focus it, arrows move it in steps of 5 %, End gives the page its most.
    page.locator("#splitter").focus()
    dragged_value = _splitter_value(page)
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    expect(page.locator("#splitter")).to_have_attribute("aria-valuenow", str(dragged_value + 10))
    assert _box(page, "#tools")["height"] < tools_dragged
    page.keyboard.press("End")
    expect(page.locator("#splitter")).to_have_attribute("aria-valuenow", "85")
    page.keyboard.press("ArrowUp")
    expect(page.locator("#splitter")).to_have_attribute("aria-valuenow", "80")

    # Beside instead of below; tabs by keyboard: ArrowLeft selects the logs tab.
    page.click("#tools-layout")
    expect(page.locator("#workspace")).to_have_attribute("data-layout", "columns")
    expect(page.locator("#splitter")).to_have_attribute("aria-orientation", "vertical")
    assert _box(page, "#tools")["x"] > _box(page, "#main")["x"] + 100
    page.locator(f"#tool-editor-{created['id']}-tab").focus()
    page.keyboard.press("ArrowLeft")
    logs_tab = page.locator(f"#tool-logs-{created['id']}-tab")
    expect(logs_tab).to_be_focused()
    expect(logs_tab).to_have_attribute("aria-selected", "true")
    expect(_logs(page, created["id"])).to_be_visible()
    tools_width = _box(page, "#tools")["width"]
    # F6 goes from one pane to the other and back.
    page.keyboard.press("F6")
    expect(page.locator("#main")).to_be_focused()
    page.keyboard.press("F6")
    expect(logs_tab).to_be_focused()

    page.reload()
    page.wait_for_selector("#instances-loading", state="hidden")
    expect(page.locator("#tools-tabs [role='tab']")).to_have_count(2)
    expect(logs_tab).to_have_attribute("aria-selected", "true")
    expect(page.locator("#workspace")).to_have_attribute("data-layout", "columns")
    expect(page.locator("#splitter")).to_have_attribute("aria-valuenow", "80")
    assert abs(_box(page, "#tools")["width"] - tools_width) <= 2
    expect(_logs(page, created["id"]).locator(".logs-state")).to_have_text(
        "No output yet: it appears here when the instance starts.")

    # The editor tab came back too, and saves the script.
    page.click(f"#tool-editor-{created['id']}-tab")
    editor = board.tool("editor", created["id"])
    expect(editor.locator(".CodeMirror")).to_contain_text("aikore.demo")
    editor.locator(".CodeMirror-code").click()
    page.keyboard.press("Control+End")
    page.keyboard.type("\n# saved from a tab restored by a reload")
    editor.locator(".editor-save").click()
    expect(editor.locator(".editor-notice")).to_contain_text("launch.sh.bak")
    script = board.api("GET", f"/api/instances/{created['id']}/script")["content"]
    assert script.rstrip().endswith("# saved from a tab restored by a reload")
    board.shot("workspace-beside")

    # A deleted instance's editor tab closes; its log tab stays and says so.
    board.api("DELETE", f"/api/instances/{created['id']}")
    expect(editor).to_have_count(0)
    expect(_logs(page, created["id"]).locator(".logs-status")).to_have_text("deleted")


def test_phone_shows_each_pane_full_screen_and_switches_between_them(
    shared_dashboard: Callable[..., Dashboard],
) -> None:
    board = shared_dashboard(viewport=PHONE)
    created = board.api("POST", "/api/instances", {"name": "delta-with-a-rather-long-name", "blueprint": "demo"})
    board.login()
    page = board.page
    switch = page.locator("#pane-switch")
    expect(switch).to_be_visible()
    main_button, tools_button = switch.locator("[data-pane='main']"), switch.locator("[data-pane='tools']")
    expect(main_button).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#tools")).to_be_hidden()
    expect(page.locator("#system-strip [data-strip='gpu-1']")).to_be_visible()
    _no_sideways_scroll(page, PHONE["width"])

    # Logs from the row: the tools pane takes the whole screen, the instances are one tap away.
    row = page.locator(board.row("delta-with-a-rather-long-name"))
    row.locator("[data-action='logs']").click()
    expect(page.locator("#tools")).to_be_visible()
    expect(page.locator("#main")).to_be_hidden()
    expect(tools_button).to_have_attribute("aria-pressed", "true")
    expect(tools_button).to_contain_text("1")
    tools = _box(page, "#tools")
    assert tools["width"] == PHONE["width"] and tools["height"] > PHONE["height"] * 0.6, tools
    expect(_logs(page, created["id"]).locator(".logs-output")).to_be_visible()
    _no_sideways_scroll(page, PHONE["width"])
    board.shot("workspace-phone")

    main_button.click()
    expect(page.locator("#main")).to_be_visible()
    expect(page.locator("#tools")).to_be_hidden()
    row.locator(".more-toggle").click()
    row.locator("[data-action='script']").click()
    expect(page.locator("#tools")).to_be_visible()
    expect(tools_button).to_contain_text("2")
    expect(board.tool("editor", created["id"]).locator(".CodeMirror")).to_contain_text("aikore.demo")
    _no_sideways_scroll(page, PHONE["width"])

    # A view chosen in the header is shown full screen again.
    page.click("[data-view-link='system']")
    expect(page.locator("#view-system")).to_be_visible()
    expect(page.locator("#tools")).to_be_hidden()
    expect(main_button).to_have_text("System")
    _no_sideways_scroll(page, PHONE["width"])


def test_light_theme_follows_the_system_preference_with_readable_contrast(
    shared_dashboard: Callable[..., Dashboard],
) -> None:
    dark = shared_dashboard()
    dark.login()
    dark_bg = dark.page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert _luminance(dark_bg) < 0.05, dark_bg

    board = shared_dashboard(color_scheme="light")
    created = board.api("POST", "/api/instances", {"name": "epsilon", "blueprint": "demo"})
    board.login()
    page = board.page
    page.locator(board.row("epsilon")).locator("[data-action='logs']").click()
    expect(_logs(page, created["id"]).locator(".logs-state")).to_contain_text("No output yet")
    body_bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert _luminance(body_bg) > 0.85, body_bg
    # Text, muted text, links, buttons, tabs, the strip, a badge and the log: WCAG AA (4.5:1) each.
    for selector in (
        "#instances-title",
        "[data-view-link='instances']",
        "#system-strip [data-strip='cpu'] [data-strip-value]",
        "#system-strip .strip-name",
        f"{board.row('epsilon')} [data-show='blueprint']",
        f"{board.row('epsilon')} [data-show='url']",
        f"{board.row('epsilon')} [data-show='status']",
        f"{board.row('epsilon')} [data-action='start']",
        f"{board.row('epsilon')} .more-toggle",
        "#add-instance-btn",
        f"#tool-logs-{created['id']}-tab",
        f"#tool-logs-{created['id']} .logs-state",
        f"#tool-logs-{created['id']} .logs-output",
    ):
        foreground, background = _colours(page, selector)
        ratio = _contrast(foreground, background)
        assert ratio >= 4.5, f"{selector}: {foreground} on {background} is {ratio:.2f}:1"
    board.shot("workspace-light", readme=True)

    # The other views and a dialog: the same palette.
    page.click("[data-view-link='system']")
    expect(page.locator("#gpu-cards .gpu-card")).to_have_count(2)
    page.click("[data-view-link='models']")
    expect(page.locator("#view-models")).to_be_visible()
    page.click("[data-view-link='system']")
    expect(page.locator("[data-fig='cpu-percent']")).to_have_text(re.compile(r"%$"))
    for selector in ("#card-cpu h2", "[data-fig='cpu-percent']", "#card-cpu .muted", "#gpu-0 .gpu-figs dt",
                     "#gpu-0 .gpu-figs dd", "#system-title"):
        foreground, background = _colours(page, selector)
        ratio = _contrast(foreground, background)
        assert ratio >= 4.5, f"{selector}: {foreground} on {background} is {ratio:.2f}:1"
    board.shot("system-light")
    page.click("[data-view-link='instances']")
    page.click("#add-instance-btn")
    expect(page.locator("#add-dialog")).to_be_visible()
    for selector in ("#add-title", "#add-name-hint", "label.blueprint[data-blueprint='demo'] .blueprint-desc"):
        foreground, background = _colours(page, selector)
        ratio = _contrast(foreground, background)
        assert ratio >= 4.5, f"{selector}: {foreground} on {background} is {ratio:.2f}:1"
    board.shot("add-instance-light")


def test_a_damaged_saved_layout_gives_the_defaults(shared_dashboard: Callable[..., Dashboard]) -> None:
    board = shared_dashboard()
    created = board.api("POST", "/api/instances", {"name": "zeta", "blueprint": "demo"})
    board.login()
    page = board.page
    junk = {"layout": "diagonal", "size": "huge", "arrange": 7,
            "tabs": [None, {"kind": "logs", "id": created["id"]}, {"id": 1}], "active": ["x"]}
    page.evaluate("(junk) => localStorage.setItem('aikore.workspace', JSON.stringify(junk))", junk)
    page.reload()
    page.wait_for_selector("#instances-loading", state="hidden")
    # The one sound tab comes back; everything else is the default.
    expect(page.locator("#tools-tabs [role='tab']")).to_have_count(1)
    expect(_logs(page, created["id"])).to_be_visible()
    expect(page.locator("#workspace")).to_have_attribute("data-layout", "rows")
    expect(page.locator("#workspace")).to_have_attribute("data-arrange", "tabs")
    expect(page.locator("#splitter")).to_have_attribute("aria-valuenow", "55")
    page.evaluate("localStorage.setItem('aikore.workspace', '{not json')")
    page.reload()
    page.wait_for_selector("#instances-loading", state="hidden")
    expect(page.locator("#splitter")).to_be_hidden()
    saved = page.evaluate("JSON.parse(localStorage.getItem('aikore.workspace'))")
    assert saved["tabs"] == [] and saved["layout"] == "rows", saved


@needs_desktop
def test_a_persistent_instance_desktop_is_a_tab_that_unloads_when_closed(
    shared_dashboard: Callable[..., Dashboard],
) -> None:
    board = shared_dashboard()
    created = board.api("POST", "/api/instances", {"name": "eta", "blueprint": "demo", "persistent_mode": True,
                                                   "desktop_resolution": "1280x720"})
    board.api("POST", f"/api/instances/{created['id']}/start")
    board.login()
    page = board.page
    row = page.locator(board.row("eta"))
    expect(row.locator("[data-show='status']")).to_have_text("running", timeout=90_000)
    row.locator("[data-action='view']").click()
    tool = board.tool("desktop", created["id"])
    expect(tool.locator("iframe")).to_have_attribute("src", "/desktop/eta/")
    expect(tool.locator(".desktop-newtab")).to_have_attribute("href", "/desktop/eta/")
    # The Selkies client runs inside the tab (AiKore's frame-src and Selkies' frame-ancestors allow it).
    expect(page.frame_locator(f"#tool-desktop-{created['id']} iframe").locator("canvas").first).to_be_attached(
        timeout=60_000)
    board.shot("workspace-desktop")
    board.close_tool("desktop", created["id"])
    expect(tool).to_have_count(0)
    expect(page.locator("iframe")).to_have_count(0)
    board.api("POST", f"/api/instances/{created['id']}/stop")


def test_at_most_three_logs_follow_at_once_so_the_page_keeps_connections(
    shared_dashboard: Callable[..., Dashboard],
) -> None:
    board = shared_dashboard()
    ids = [board.api("POST", "/api/instances", {"name": f"many-{n}", "blueprint": "demo"})["id"] for n in range(4)]
    board.login()
    page = board.page
    board.action("many-0", "logs").click()
    page.click("#tools-arrange")
    for n in range(1, 4):
        board.action(f"many-{n}", "logs").click()
    states = [_logs(page, instance_id).locator(".logs-state") for instance_id in ids]
    for state in states[:3]:
        expect(state).to_have_text("No output yet: it appears here when the instance starts.")
    expect(states[3]).to_contain_text("Not following: at most 3 logs are followed at once")
    # The page's own requests still get through: a start goes out and its row follows live.
    board.action("many-0", "start").click()
    expect(page.locator(board.row("many-0")).locator("[data-show='status']")).to_have_text(
        "running", timeout=RUNNING_TIMEOUT)
    expect(_logs(page, ids[0]).locator(".logs-output")).to_contain_text("demo: starting many-0")
    # Closing one lets the waiting log follow.
    board.close_tool("logs", ids[1])
    expect(states[3]).to_have_text("No output yet: it appears here when the instance starts.")
    board.api("POST", f"/api/instances/{ids[0]}/stop")
