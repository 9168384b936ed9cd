"""Every action says it was done: Update, Delete and a restart from the editor; a log panel says what
it is really showing (nothing yet, a stopped instance, a deleted one) instead of "Following"."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import expect

from tests.dashboard.conftest import Dashboard

RUNNING_TIMEOUT = 60_000


def test_update_and_delete_say_they_were_done(shared_dashboard: Callable[..., Dashboard]) -> None:
    board = shared_dashboard()
    board.api("POST", "/api/instances", {"name": "fb-update", "blueprint": "demo"})
    board.login()
    page = board.page
    row = page.locator(board.row("fb-update"))
    row.locator("[data-field='autostart']").check()
    row.locator("[data-field='gpu_ids']").fill("1")
    row.locator("[data-action='update']").click()
    expect(page.locator("#toast")).to_have_text("Saved fb-update: GPU IDs, Autostart.")
    expect(row.locator("[data-action='update']")).to_be_hidden()

    row.locator(".more-toggle").click()
    row.locator("[data-action='delete']").click()
    page.click("#confirm-ok")
    expect(page.locator("#toast")).to_contain_text("Deleted fb-update.")
    expect(row).to_have_count(0)


def test_a_log_says_when_there_is_nothing_to_follow_and_when_its_instance_is_deleted(
    shared_dashboard: Callable[..., Dashboard],
) -> None:
    board = shared_dashboard()
    created = board.api("POST", "/api/instances", {"name": "fb-empty", "blueprint": "demo"})
    board.login()
    page = board.page
    page.locator(board.row("fb-empty")).locator("[data-action='logs']").click()
    logs = board.tool("logs", created["id"])
    state = logs.locator(".logs-state")
    expect(state).to_have_text("No output yet: it appears here when the instance starts.")

    board.api("DELETE", f"/api/instances/{created['id']}")
    expect(state).to_have_text("This instance was deleted; its log went to the trash folder with it.")
    expect(logs.locator(".logs-status")).to_have_text("deleted")
    expect(state).not_to_contain_text("Following")


def test_restart_from_the_editor_says_when_the_new_script_runs(shared_dashboard: Callable[..., Dashboard]) -> None:
    board = shared_dashboard()
    created = board.api("POST", "/api/instances", {"name": "fb-restart", "blueprint": "demo"})
    board.api("POST", f"/api/instances/{created['id']}/start")
    board.login()
    page = board.page
    row = page.locator(board.row("fb-restart"))
    expect(row.locator("[data-show='status']")).to_have_text("running", timeout=RUNNING_TIMEOUT)

    row.locator(".more-toggle").click()
    row.locator("[data-action='script']").click()
    editor = board.tool("editor", created["id"])
    expect(editor.locator(".editor-host .CodeMirror")).to_contain_text("aikore.demo")
    editor.locator(".editor-host .CodeMirror-code").click()
    page.keyboard.press("Control+End")
    page.keyboard.type("\n# second version")
    editor.locator(".editor-save").click()
    editor.locator(".editor-restart").click()
    notice = editor.locator(".editor-notice")
    expect(notice).to_have_text("Restarting with the new script…")
    expect(notice).to_have_text("Restarted: it runs the new script.", timeout=RUNNING_TIMEOUT)
    lines = board.api("GET", f"/api/instances/{created['id']}/logs?tail=100")["lines"]
    assert len([line for line in lines if "start of fb-restart" in line]) == 2, lines
    assert board.api("GET", f"/api/instances/{created['id']}/script")["content"].endswith("# second version")

    # A stopped instance's log is not "followed" either: it says it is not running.
    board.close_tool("editor", created["id"])
    board.api("POST", f"/api/instances/{created['id']}/stop")
    expect(row.locator("[data-show='status']")).to_have_text("stopped", timeout=RUNNING_TIMEOUT)
    row.locator("[data-action='logs']").click()
    logs = board.tool("logs", created["id"])
    expect(logs.locator(".logs-output")).to_contain_text("demo: starting fb-restart")
    expect(logs.locator(".logs-state")).to_have_text("Not running (stopped); new output appears here when it starts.")
