"""The dashboard in a browser: forms, errors, the script editor, the system view, live updates."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from playwright.sync_api import Dialog, expect

from aikore.store.instance import dashboard_constants
from tests.dashboard.conftest import TOKEN, Dashboard
from tests.helpers import wait_until


def _add_instance(board: Dashboard, name: str) -> None:
    page = board.page
    page.click("#add-instance-btn")
    page.fill("#add-name", name)
    page.check("label.blueprint[data-blueprint='demo'] input")
    page.click("#add-submit")


def test_create_from_the_add_dialog_lists_blueprints_with_descriptions(dashboard: Callable[..., Dashboard]) -> None:
    board = dashboard()
    board.login()
    page = board.page
    expect(page.locator("#instances-empty")).to_be_visible()
    page.click("#add-instance-btn")
    demo = page.locator("label.blueprint[data-blueprint='demo']")
    expect(demo).to_contain_text("Offline demo app")
    expect(page.locator("#add-gpus")).to_contain_text("No GPU detected")
    page.fill("#add-name", "demo-one")
    demo.locator("input").check()
    page.check("#add-dialog input[name='autostart']")
    board.shot("add-instance")
    page.click("#add-submit")

    expect(page.locator("#add-dialog")).to_be_hidden()
    row = page.locator(board.row("demo-one"))
    expect(row.locator("[data-show='status']")).to_have_text("stopped")
    expect(row.locator("[data-show='blueprint']")).to_have_text("Demo")
    expect(row.locator("[data-field='autostart']")).to_be_checked()
    expect(row.locator("[data-show='url']")).to_have_attribute("href", "/app/demo-one/")
    stored = board.api("GET", "/api/instances")
    assert [(i["name"], i["blueprint"], i["autostart"]) for i in stored] == [("demo-one", "demo", True)]


def test_invalid_name_shows_the_api_message_next_to_the_field(dashboard: Callable[..., Dashboard]) -> None:
    board = dashboard()
    board.login()
    expected = board.server.request("POST", "/api/instances", {"name": "Bad Name!", "blueprint": "demo"})
    assert expected.status == 400
    _add_instance(board, "Bad Name!")

    error = board.page.locator("#add-name-error")
    expect(error).to_have_text(expected.json()["error"]["message"])
    expect(board.page.locator("#add-name")).to_have_attribute("aria-invalid", "true")
    # The browser compiles the served name pattern too (an invalid one would be a console error).
    assert board.page.evaluate("document.getElementById('add-name').validity.patternMismatch")
    expect(board.page.locator("#add-dialog")).to_be_visible()
    board.shot("add-instance-error")
    assert board.api("GET", "/api/instances") == []


def test_duplicate_name_and_bad_port_show_their_own_messages(dashboard: Callable[..., Dashboard]) -> None:
    board = dashboard()
    board.api("POST", "/api/instances", {"name": "taken", "blueprint": "demo"})
    board.login()
    page = board.page
    _add_instance(board, "taken")
    expect(page.locator("#add-name-error")).to_contain_text("already exists")

    page.fill("#add-name", "fresh")
    page.click("#add-dialog summary")
    page.fill("#add-public-port", "80")
    page.click("#add-submit")
    port_error = page.locator("#add-port-error")
    expect(port_error).to_contain_text("public_port")
    expect(page.locator("#add-name-error")).to_be_hidden()
    assert [i["name"] for i in board.api("GET", "/api/instances")] == ["taken"]


def test_inline_edit_saved_with_update_and_errors_shown_in_the_row(dashboard: Callable[..., Dashboard]) -> None:
    board = dashboard()
    created = board.api("POST", "/api/instances", {"name": "editable", "blueprint": "demo"})
    board.login()
    page = board.page
    row = page.locator(board.row("editable"))
    update = row.locator("[data-action='update']")
    expect(update).to_be_hidden()

    row.locator("[data-field='gpu_ids']").fill("0;rm -rf /")
    expect(update).to_be_visible()
    update.click()
    expected = board.server.request("PATCH", f"/api/instances/{created['id']}", {"gpu_ids": "0;rm -rf /"})
    expect(row.locator("[data-show='error']")).to_have_text(expected.json()["error"]["message"])
    expect(row.locator("[data-field='gpu_ids']")).to_have_attribute("aria-invalid", "true")

    row.locator("[data-field='gpu_ids']").fill("0,1")
    row.locator("[data-field='persistent_mode']").check()
    update.click()
    expect(update).to_be_hidden()
    expect(row.locator("[data-show='error']")).to_be_hidden()
    stored = board.api("GET", f"/api/instances/{created['id']}")
    assert (stored["gpu_ids"], stored["persistent_mode"]) == ("0,1", True)

    # Enter saves a rename; the row follows the new name.
    row.locator("[data-field='name']").fill("renamed")
    row.locator("[data-field='name']").press("Enter")
    expect(page.locator(board.row("renamed"))).to_have_count(1)
    assert board.api("GET", f"/api/instances/{created['id']}")["name"] == "renamed"


def test_a_running_row_locks_exactly_the_fields_the_api_refuses_while_running(
    dashboard: Callable[..., Dashboard],
) -> None:
    board = dashboard()
    created = board.api("POST", "/api/instances", {"name": "locked", "blueprint": "demo"})
    board.api("POST", f"/api/instances/{created['id']}/start")
    board.login()
    page = board.page
    live = page.evaluate("JSON.parse(document.getElementById('aikore-config').textContent).live_fields")
    assert live == dashboard_constants()["live_fields"]
    row = page.locator(board.row("locked"))
    expect(row.locator("[data-show='status']")).to_have_text("running", timeout=60_000)
    inputs = row.locator("[data-field]")
    names = [inputs.nth(i).get_attribute("data-field") for i in range(inputs.count())]
    assert set(names) & set(live) and set(names) - set(live), names
    for name in names:
        field = row.locator(f"[data-field='{name}']")
        if name in live:
            expect(field).to_be_enabled()
        else:
            expect(field).to_be_disabled()


def test_escape_reverts_an_unsaved_inline_edit(dashboard: Callable[..., Dashboard]) -> None:
    board = dashboard()
    board.api("POST", "/api/instances", {"name": "keepme", "blueprint": "demo"})
    board.login()
    field = board.page.locator(f"{board.row('keepme')} [data-field='name']")
    field.fill("changed")
    field.press("Escape")
    expect(field).to_have_value("keepme")
    expect(board.page.locator(f"{board.row('keepme')} [data-action='update']")).to_be_hidden()


def test_script_editor_highlights_saves_and_keeps_the_previous_version(dashboard: Callable[..., Dashboard]) -> None:
    board = dashboard()
    created = board.api("POST", "/api/instances", {"name": "scripted", "blueprint": "demo"})
    original = board.api("GET", f"/api/instances/{created['id']}/script")["content"]
    board.login()
    page = board.page
    board.action("scripted", "script").click()
    tool = board.tool("editor", created["id"])
    editor = tool.locator(".editor-host .CodeMirror")
    expect(editor).to_be_visible()
    expect(editor).to_contain_text("AIKORE-METADATA-START")
    # Shell highlighting: comments and keywords get CodeMirror's token classes.
    expect(editor.locator(".cm-comment").first).to_be_visible()

    tool.locator(".editor-host .CodeMirror-code").click()
    page.keyboard.press("Control+End")
    page.keyboard.type("\necho edited-by-the-dashboard-test")
    expect(tool.locator(".editor-dirty")).to_have_text("Unsaved changes")
    board.shot("script-editor")
    page.keyboard.press("Control+s")  # saves from inside the editor, like the Save button
    expect(tool.locator(".editor-notice")).to_contain_text("launch.sh.bak")
    expect(tool.locator(".editor-dirty")).to_have_text("")
    expect(tool.locator(".editor-restart")).to_be_hidden()  # it is not running

    saved = board.api("GET", f"/api/instances/{created['id']}/script")["content"]
    assert saved.rstrip().endswith("echo edited-by-the-dashboard-test")
    backup = board.server.data_dir / "instances" / "scripted" / "launch.sh.bak"
    assert backup.read_text() == original

    # Unsaved changes are never dropped silently: closing the tab asks, and "no" keeps it open.
    page.keyboard.type("\n# not saved")
    questions: list[str] = []

    def answer(dialog: Dialog, accept: bool) -> None:
        questions.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    page.once("dialog", lambda dialog: answer(dialog, accept=False))
    board.close_tool("editor", created["id"])
    expect(tool).to_be_visible()
    page.once("dialog", lambda dialog: answer(dialog, accept=True))
    board.close_tool("editor", created["id"])
    expect(tool).to_have_count(0)
    assert questions == ["Discard unsaved changes to launch.sh?"] * 2
    assert "# not saved" not in board.api("GET", f"/api/instances/{created['id']}/script")["content"]


def test_delete_asks_first_and_the_row_goes(dashboard: Callable[..., Dashboard]) -> None:
    board = dashboard()
    board.api("POST", "/api/instances", {"name": "doomed", "blueprint": "demo"})
    board.login()
    page = board.page
    board.action("doomed", "delete").click()
    expect(page.locator("#confirm-dialog")).to_be_visible()
    expect(page.locator("#confirm-text")).to_contain_text("trash")
    page.click("#confirm-dialog button[value='cancel']")
    expect(page.locator(board.row("doomed"))).to_have_count(1)
    # Focus comes back to the row's "⋯" menu button the delete was chosen from.
    expect(page.locator(f"{board.row('doomed')} .more-toggle")).to_be_focused()

    board.action("doomed", "delete").click()
    page.click("#confirm-ok")
    expect(page.locator(board.row("doomed"))).to_have_count(0)
    expect(page.locator("#instances-empty")).to_be_visible()
    assert board.api("GET", "/api/instances") == []


def test_changes_from_another_client_appear_live_and_streams_reconnect(
    dashboard: Callable[..., Dashboard], aikore_process: Callable[..., Any]
) -> None:
    board = dashboard()
    board.login()
    page = board.page
    created = board.api("POST", "/api/instances", {"name": "elsewhere", "blueprint": "demo"})
    expect(page.locator(board.row("elsewhere"))).to_have_count(1)
    board.api("DELETE", f"/api/instances/{created['id']}")
    expect(page.locator(board.row("elsewhere"))).to_have_count(0)

    # AiKore restarts on the same port and data dir: the page notices, reconnects, and catches up.
    server = board.server
    server.stop()
    expect(page.locator("#live-status")).not_to_have_attribute("data-state", "live")
    restarted = aikore_process(extra_args=server.extra_args, env=server.env, data_dir=server.data_dir, port=server.port)
    restarted.token = server.token
    board.server = restarted
    board.api("POST", "/api/instances", {"name": "after-restart", "blueprint": "demo"})
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live", timeout=45_000)
    expect(page.locator(board.row("after-restart"))).to_have_count(1)


def test_system_view_shows_figures_gpus_and_changes_the_interval(dashboard: Callable[..., Dashboard]) -> None:
    board = dashboard(gpus=True)
    created = board.api("POST", "/api/instances", {"name": "busy", "blueprint": "demo", "gpu_ids": "0"})
    board.api("POST", f"/api/instances/{created['id']}/start")
    board.login("/#/system")
    page = board.page
    expect(page.locator("#view-system")).to_be_visible()
    expect(page.locator("[data-fig='cpu-percent']")).to_have_text(re.compile(r"^\d+(\.\d)?%$"))
    stats = board.api("GET", "/api/system/stats")
    total_gib = stats["system"]["memory"]["total_bytes"] / 2**30
    expect(page.locator("[data-fig='ram-total']")).to_have_text(f"{total_gib:.1f} GiB")
    cards = page.locator(".gpu-card")
    expect(cards).to_have_count(2)
    expect(cards.nth(0)).to_contain_text("NVIDIA GeForce RTX 4090")
    expect(cards.nth(1).locator("[data-fig='vram']")).to_have_text(re.compile(r"GiB / 48\.0 GiB$"))
    expect(cards.nth(0).locator("[data-fig='temp']")).to_have_text(re.compile(r"^\d+ °C$"))
    expect(cards.nth(0).locator("[data-fig='power']")).to_have_text(re.compile(r"^\d+ W / 450 W$"))
    expect(page.locator("#no-gpu")).to_be_hidden()
    expect(cards.nth(0).locator(".spark canvas")).to_have_count(1)
    expect(page.locator("[data-spark='cpu'] canvas")).to_have_count(1)
    # The running instance gets a card with its process tree's figures.
    busy = page.locator(".inst-card[aria-label='busy']")
    expect(busy).to_contain_text("running", timeout=60_000)
    expect(busy.locator("dd").nth(1)).to_have_text(re.compile(r"MiB$"), timeout=30_000)

    expect(page.locator("#interval-value")).to_have_text("1 s")
    page.click("#interval-up")
    expect(page.locator("#interval-value")).to_have_text("2 s")
    wait_until(lambda: board.api("GET", "/api/system/interval")["interval_seconds"] == 2, what="interval 2 s")
    page.click("#interval-down")
    page.click("#interval-down")
    expect(page.locator("#interval-value")).to_have_text("500 ms")
    assert board.api("GET", "/api/system/interval")["interval_seconds"] == 0.5
    # Let the sparklines gather points (at 0.5 s) before the README picture is taken.
    since = board.api("GET", "/api/system/stats")["time"]
    wait_until(
        lambda: len(board.api("GET", f"/api/system/history?since={since}")["samples"]) >= 24,
        what="24 new samples",
    )
    board.shot("system", readme=True, full_page=True)


def test_system_view_says_plainly_when_there_is_no_gpu(dashboard: Callable[..., Dashboard]) -> None:
    board = dashboard()
    board.login("/#/system")
    page = board.page
    expect(page.locator("#no-gpu")).to_be_visible()
    expect(page.locator("#no-gpu")).to_contain_text("No GPU detected")
    expect(page.locator(".gpu-card")).to_have_count(0)
    expect(page.locator("[data-fig='cpu-count']")).to_have_text(re.compile(r"^\d+$"))
    board.shot("system-no-gpu")


def test_keyboard_opens_and_escape_closes_a_dialog_returning_focus(dashboard: Callable[..., Dashboard]) -> None:
    board = dashboard()
    board.login()
    page = board.page
    page.focus("#add-instance-btn")
    page.keyboard.press("Enter")
    expect(page.locator("#add-dialog")).to_be_visible()
    expect(page.locator("#add-name")).to_be_focused()
    page.keyboard.press("Tab")
    focused_in_dialog = page.evaluate("document.getElementById('add-dialog').contains(document.activeElement)")
    assert focused_in_dialog
    page.keyboard.press("Escape")
    expect(page.locator("#add-dialog")).to_be_hidden()
    expect(page.locator("#add-instance-btn")).to_be_focused()


def test_phone_width_shows_instances_as_cards_without_sideways_scrolling(dashboard: Callable[..., Dashboard]) -> None:
    board = dashboard(viewport={"width": 390, "height": 844})
    board.api("POST", "/api/instances", {"name": "pocket", "blueprint": "demo"})
    board.login()
    page = board.page
    row = page.locator(board.row("pocket"))
    expect(row.locator("[data-action='start']")).to_be_visible()
    expect(row.locator(".more-toggle")).to_be_in_viewport()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    board.shot("phone-instances", full_page=True)
    page.click("#add-instance-btn")
    expect(page.locator("#add-submit")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.keyboard.press("Escape")
    page.click("[data-view-link='system']")
    expect(page.locator("[data-fig='cpu-percent']")).to_have_text(re.compile(r"%$"))
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    board.shot("phone-system", full_page=True)


def test_persistent_instance_offers_its_desktop_and_desktop_log(dashboard: Callable[..., Dashboard]) -> None:
    board = dashboard()
    created = board.api("POST", "/api/instances", {"name": "desk", "blueprint": "demo", "persistent_mode": True})
    assert created["desktop_url"] == "/desktop/desk/"
    board.api("POST", "/api/instances", {"name": "plain", "blueprint": "demo"})
    board.login()
    page = board.page
    desk, plain = page.locator(board.row("desk")), page.locator(board.row("plain"))
    expect(desk.locator("[data-action='view']")).to_be_visible()
    expect(desk.locator("[data-action='view']")).to_be_disabled()  # until it runs
    expect(desk.locator("[data-show='url']")).to_have_attribute("href", "/desktop/desk/")
    expect(plain.locator("[data-action='view']")).to_be_hidden()

    desk.locator("[data-action='logs']").click()
    desk_logs = board.tool("logs", created["id"])
    expect(desk_logs.locator(".logs-source")).to_be_visible()
    desk_logs.locator(".logs-source").select_option("desktop")
    expect(desk_logs.locator(".logs-download")).to_have_attribute(
        "href", f"/api/instances/{created['id']}/logs/download?source=desktop"
    )
    plain.locator("[data-action='logs']").click()
    plain_id = next(i["id"] for i in board.api("GET", "/api/instances") if i["name"] == "plain")
    expect(board.tool("logs", plain_id).locator(".logs-source")).to_be_hidden()


def test_login_form_with_the_token_reaches_the_dashboard_styled_like_it(dashboard: Callable[..., Dashboard]) -> None:
    board = dashboard()
    page = board.page
    page.goto(board.base + "/#/system")
    expect(page).to_have_url(re.compile(r"/login"))
    # Its stylesheet is one of the few files served before login.
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(15, 18, 22)"
    page.fill("#secret", "wrong-token")
    page.click("button[type='submit']")
    expect(page.locator("#login-error")).to_be_visible()
    board.shot("login")
    page.fill("#secret", TOKEN)
    page.click("button[type='submit']")
    expect(page.locator("#instances-title")).to_be_visible()
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live", timeout=30_000)


def test_password_mode_logs_in_with_the_password_and_out_again(dashboard: Callable[..., Dashboard]) -> None:
    board = dashboard(env={"AIKORE_PASSWORD": "correct horse battery"})
    page = board.page
    page.goto(board.base + "/")
    expect(page).to_have_url(re.compile(r"/login"))
    expect(page.locator("label[for='secret']")).to_have_text("Password")
    page.fill("#secret", "wrong")
    page.click("button[type='submit']")
    expect(page.locator("#login-error")).to_be_visible()
    page.fill("#secret", "correct horse battery")
    page.click("button[type='submit']")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live", timeout=30_000)

    page.click(".logout-form button")
    expect(page).to_have_url(re.compile(r"/login"))
    page.goto(board.base + "/")
    expect(page).to_have_url(re.compile(r"/login"))


def test_tab_stays_inside_an_open_dialog(dashboard: Callable[..., Dashboard]) -> None:
    board = dashboard()
    board.login()
    page = board.page
    page.click("#add-instance-btn")
    expect(page.locator("#add-name")).to_be_focused()
    inside = "document.getElementById('add-dialog').contains(document.activeElement)"
    seen = set()
    for _ in range(40):
        page.keyboard.press("Tab")
        seen.add(
            page.evaluate("document.activeElement.id || document.activeElement.name || document.activeElement.tagName")
        )
        assert page.evaluate(inside), "focus left the dialog"
    assert {"add-name", "add-submit"} <= seen, seen


def test_add_dialog_offers_the_detected_gpus_as_checkboxes(dashboard: Callable[..., Dashboard]) -> None:
    board = dashboard(gpus=True)
    board.login()
    page = board.page
    page.click("#add-instance-btn")
    boxes = page.locator("#add-gpus input[name='gpu']")
    expect(boxes).to_have_count(2)
    expect(page.locator("#add-gpus")).to_contain_text("GPU 1 · NVIDIA RTX A6000")
    page.fill("#add-name", "pinned")
    boxes.nth(1).check()
    page.click("#add-submit")
    expect(page.locator(f"{board.row('pinned')} [data-field='gpu_ids']")).to_have_value("1")
    assert board.api("GET", "/api/instances")[0]["gpu_ids"] == "1"
