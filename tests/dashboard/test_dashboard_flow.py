"""The whole user journey in a browser, against a real aikore running the demo blueprint."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import expect

from tests.dashboard.conftest import Dashboard
from tests.helpers import free_port, wait_until

RUNNING_TIMEOUT = 60_000


def test_token_login_create_start_open_logs_edit_stop_delete(dashboard: Callable[..., Dashboard]) -> None:
    board = dashboard()
    page = board.page
    # A second, stopped instance so the table (and the README picture) shows more than one state.
    board.api("POST", "/api/instances", {"name": "notebooks", "blueprint": "jupyterlab", "autostart": True})

    # Without credentials the dashboard sends the browser to the login page; the token URL logs in.
    page.goto(board.base + "/")
    expect(page).to_have_url(re.compile(r"/login"))
    board.login()
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live", timeout=30_000)

    # Create from the Demo blueprint.
    page.click("#add-instance-btn")
    page.fill("#add-name", "journey")
    page.check("label.blueprint[data-blueprint='demo'] input")
    page.click("#add-submit")
    row = page.locator(board.row("journey"))
    status = row.locator("[data-show='status']")
    expect(status).to_have_text("stopped")

    # Start: the status follows the supervisor live, through starting, to running.
    row.locator("[data-action='start']").click()
    expect(status).to_have_text("running", timeout=RUNNING_TIMEOUT)
    expect(status).to_have_attribute("data-status", "running")
    expect(page.locator("#announcer")).to_have_text("journey is running")
    instance = next(i for i in board.api("GET", "/api/instances") if i["name"] == "journey")
    expect(row.locator("[data-show='pid']")).to_have_text(str(instance["pid"]))
    expect(row.locator("[data-action='stop']")).to_be_visible()
    expect(row.locator("[data-action='start']")).to_be_hidden()
    expect(row.locator("[data-show='ram']")).to_have_text(re.compile(r"MiB|KiB|GiB"), timeout=30_000)
    board.shot("instances", readme=True)

    # Open: a new tab on /app/journey/ served by the demo app through AiKore's proxy.
    with page.expect_popup() as popup_info:
        row.locator("[data-action='open']").click()
    app_page = popup_info.value
    app_page.wait_for_load_state()
    assert app_page.url == f"{board.base}/app/journey/"
    expect(app_page.locator("h1")).to_have_text("AiKore demo app")
    app_page.close()

    # Logs: live output with the demo's start line; search filters, pause holds new lines back.
    row.locator("[data-action='logs']").click()
    logs = board.tool("logs", instance["id"])
    output = logs.locator(".logs-output")
    expect(output).to_contain_text("demo: starting journey", timeout=30_000)
    expect(output).to_be_focused()
    expect(logs.locator(".logs-state")).to_have_text("Following live output")
    expect(logs.locator(".logs-download")).to_have_attribute(
        "href", f"/api/instances/{instance['id']}/logs/download")
    board.shot("logs")
    logs.locator(".logs-search").fill("demo: starting")
    expect(logs.locator(".logs-count")).to_have_text(re.compile(r"^\d+ of \d+ lines match$"))
    expect(output.locator(".line:not(.hidden-by-search)").first).to_contain_text("demo: starting journey")
    logs.locator(".logs-search").fill("")
    logs.locator(".logs-pause").click()
    expect(logs.locator(".logs-pause")).to_have_attribute("aria-pressed", "true")
    logs.locator(".logs-pause").click()
    expect(logs.locator(".logs-pause")).to_have_text("Pause")
    board.close_tool("logs", instance["id"])
    expect(logs).to_have_count(0)

    # Edit the script while it runs: saved, and a restart is offered.
    row.locator(".more-toggle").click()
    row.locator("[data-action='script']").click()
    editor = board.tool("editor", instance["id"])
    expect(editor.locator(".editor-host .CodeMirror")).to_contain_text("aikore.demo")
    editor.locator(".editor-host .CodeMirror-code").click()
    page.keyboard.press("Control+End")
    page.keyboard.type("\n# tuned from the dashboard")
    editor.locator(".editor-save").click()
    expect(editor.locator(".editor-notice")).to_contain_text("until it restarts")
    expect(editor.locator(".editor-restart")).to_be_visible()
    script = board.api("GET", f"/api/instances/{instance['id']}/script")["content"]
    assert script.rstrip().endswith("# tuned from the dashboard")
    board.close_tool("editor", instance["id"])
    expect(editor).to_have_count(0)

    # Stop, then delete (with confirmation).
    row.locator("[data-action='stop']").click()
    expect(status).to_have_text("stopped", timeout=RUNNING_TIMEOUT)
    expect(row.locator("[data-show='pid']")).to_have_text("\u2013")
    row.locator(".more-toggle").click()
    row.locator("[data-action='delete']").click()
    page.click("#confirm-ok")
    expect(row).to_have_count(0)
    assert [i["name"] for i in board.api("GET", "/api/instances")] == ["notebooks"]


def test_an_instance_that_fails_shows_its_exit_code_and_last_lines(dashboard: Callable[..., Dashboard]) -> None:
    board = dashboard()
    created = board.api("POST", "/api/instances", {"name": "broken", "blueprint": "demo"})
    board.api("PUT", f"/api/instances/{created['id']}/script", {"content": "echo 'about to fail' >&2\nexit 3\n"})
    board.login()
    page = board.page
    row = page.locator(board.row("broken"))
    row.locator("[data-action='start']").click()
    expect(row.locator("[data-show='status']")).to_have_text("error", timeout=RUNNING_TIMEOUT)
    expect(row.locator("[data-show='note']")).to_have_text("Exited with code 3: about to fail")

    row.locator("[data-action='logs']").click()
    logs = board.tool("logs", created["id"])
    exit_box = logs.locator(".logs-exit")
    expect(exit_box).to_contain_text("Exited with code 3")
    expect(exit_box.locator("pre")).to_contain_text("about to fail")
    expect(logs.locator(".logs-output")).to_contain_text("about to fail")
    board.shot("logs-error")


def test_rebuild_asks_first_then_starts_with_the_rebuild_flag(dashboard: Callable[..., Dashboard]) -> None:
    board = dashboard()
    created = board.api("POST", "/api/instances", {"name": "rebuilt", "blueprint": "demo"})
    script_path = f"/api/instances/{created['id']}/script"
    script = board.api("GET", script_path)["content"]
    flagged = script.replace("set -euo pipefail\n", 'set -euo pipefail\necho "rebuild flag=${AIKORE_REBUILD_ENV:-0}"\n')
    assert flagged != script
    board.api("PUT", script_path, {"content": flagged})
    board.login()
    page = board.page
    row = page.locator(board.row("rebuilt"))

    row.locator(".more-toggle").click()
    row.locator("[data-action='rebuild']").click()
    expect(page.locator("#confirm-text")).to_contain_text("AIKORE_REBUILD_ENV")
    page.keyboard.press("Escape")
    expect(page.locator("#confirm-dialog")).to_be_hidden()
    assert board.api("GET", f"/api/instances/{created['id']}")["status"] == "stopped"

    row.locator(".more-toggle").click()
    row.locator("[data-action='rebuild']").click()
    page.click("#confirm-ok")
    expect(row.locator("[data-show='status']")).to_have_text("running", timeout=RUNNING_TIMEOUT)
    logs = board.api("GET", f"/api/instances/{created['id']}/logs?tail=50")["lines"]
    assert "rebuild flag=1" in logs

    # A plain restart afterwards runs without the flag: it is a one-off.
    row.locator(".more-toggle").click()
    row.locator("[data-action='restart']").click()
    wait_until(
        lambda: board.api("GET", f"/api/instances/{created['id']}/logs?tail=50")["lines"].count("rebuild flag=0") == 1,
        what="a restart without the rebuild flag",
    )
    expect(row.locator("[data-show='status']")).to_have_text("running", timeout=RUNNING_TIMEOUT)


TICKER = """#!/usr/bin/env bash
### AIKORE-METADATA-START ###
# aikore.name: Ticker
# aikore.health: /health
### AIKORE-METADATA-END ###
printf '\\033[31mred alert\\033[0m and \\033[1;32mbold green\\033[0m\\n'
( i=0; while true; do i=$((i+1)); echo "tick $i"; sleep 0.2; done ) &
exec "$AIKORE_PYTHON" -m aikore.demo --host "$WEBUI_HOST" --port "$WEBUI_PORT"
"""


def test_logs_follow_live_in_colour_pause_holds_lines_and_download_has_all(
    dashboard: Callable[..., Dashboard],
) -> None:
    board = dashboard()
    created = board.api("POST", "/api/instances", {"name": "ticker", "blueprint": "demo"})
    board.api("PUT", f"/api/instances/{created['id']}/script", {"content": TICKER})
    board.api("POST", f"/api/instances/{created['id']}/start")
    board.login()
    page = board.page
    page.locator(f"{board.row('ticker')} [data-action='logs']").click()
    logs = board.tool("logs", created["id"])
    output = logs.locator(".logs-output")
    expect(output).to_contain_text("tick 3", timeout=30_000)
    expect(output.locator(".ansi-red-fg")).to_have_text("red alert")
    expect(output.locator(".ansi-green-fg")).to_have_text("bold green")
    assert "\x1b" not in output.inner_text()

    # Paused: the view stands still while the log grows; resuming shows what came meanwhile.
    logs.locator(".logs-pause").click()
    expect(logs.locator(".logs-state")).to_contain_text("Paused")
    shown = output.locator(".line").count()
    last_tick = _last_tick(output.inner_text())

    def grew() -> bool:
        lines = board.api("GET", f"/api/instances/{created['id']}/logs?tail=5")["lines"]
        return _last_tick("\n".join(lines)) >= last_tick + 5

    wait_until(grew, what="five more ticks in the log")
    assert output.locator(".line").count() == shown
    logs.locator(".logs-pause").click()
    expect(logs.locator(".logs-state")).to_have_text("Following live output")
    wait_until(lambda: _last_tick(output.inner_text()) >= last_tick + 5, what="held lines shown on resume")

    logs.locator(".logs-search").fill("red alert")
    expect(output.locator(".line:not(.hidden-by-search)")).to_have_count(1)
    expect(logs.locator(".logs-count")).to_have_text(re.compile(r"^1 of \d+ lines match$"))
    logs.locator(".logs-search").fill("")

    with page.expect_download() as download_info:
        logs.locator(".logs-download").click()
    downloaded = download_info.value
    assert downloaded.suggested_filename == "ticker.log"
    text = open(downloaded.path(), encoding="utf-8").read()
    assert "tick 1\n" in text and "red alert" in text
    board.api("POST", f"/api/instances/{created['id']}/stop")


def _last_tick(text: str) -> int:
    ticks = re.findall(r"tick (\d+)", text)
    return int(ticks[-1]) if ticks else 0


def test_port_only_instance_opens_on_its_public_port_of_the_browsers_host(dashboard: Callable[..., Dashboard]) -> None:
    port = free_port()
    board = dashboard(extra_args=["--public-ports", f"{port}-{port}"])
    created = board.api("POST", "/api/instances", {"name": "ported", "blueprint": "demo", "public_port": port})
    script_path = f"/api/instances/{created['id']}/script"
    script = board.api("GET", script_path)["content"]
    board.api("PUT", script_path, {"content": script.replace("aikore.proxy: strip-prefix", "aikore.proxy: port-only")})
    board.login()
    page = board.page
    row = page.locator(board.row("ported"))
    expect(row.locator("[data-show='port']")).to_contain_text(f"public :{port}")
    row.locator("[data-action='start']").click()
    expect(row.locator("[data-show='status']")).to_have_text("running", timeout=RUNNING_TIMEOUT)
    expected = f"http://127.0.0.1:{port}/"
    expect(row.locator("[data-action='open']")).to_have_attribute("href", expected)
    with page.expect_popup() as popup_info:
        row.locator("[data-action='open']").click()
    app_page = popup_info.value
    app_page.wait_for_load_state()
    assert app_page.url == expected
    expect(app_page.locator("h1")).to_have_text("AiKore demo app")
    app_page.close()
