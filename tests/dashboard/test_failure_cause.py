"""A failure says its cause once: the exit code, then the last meaningful line this run wrote or
the install phase it failed in; a ready timeout shows its own code (143) and its own lines."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import expect

from tests.dashboard.conftest import Dashboard
from tests.helpers import wait_until

RUNNING_TIMEOUT = 60_000


def _fail(board: Dashboard, name: str, script: str, **fields: object) -> int:
    created = board.api("POST", "/api/instances", {"name": name, "blueprint": "demo", **fields})
    board.api("PUT", f"/api/instances/{created['id']}/script", {"content": script})
    board.api("POST", f"/api/instances/{created['id']}/start")
    wait_until(lambda: board.api("GET", f"/api/instances/{created['id']}")["status"] == "error", what=f"{name} to fail")
    return int(created["id"])


def test_a_crash_shows_its_last_meaningful_line_once(shared_dashboard: Callable[..., Dashboard]) -> None:
    board = shared_dashboard()
    script = "echo 'loading the model'\necho 'RuntimeError: CUDA out of memory' >&2\necho\nexit 3\n"
    instance_id = _fail(board, "fc-crash", script)
    board.login()
    page = board.page
    row = page.locator(board.row("fc-crash"))
    expect(row.locator("[data-show='note']")).to_have_text("Exited with code 3: RuntimeError: CUDA out of memory")

    row.locator("[data-action='logs']").click()
    box = board.tool("logs", instance_id).locator(".logs-exit")
    expect(box.locator("strong")).to_have_text("Exited with code 3")
    expect(box.locator("pre")).to_have_text("loading the model\nRuntimeError: CUDA out of memory")
    assert box.inner_text().count("code 3") == 1


def test_a_failed_install_names_its_phase_and_cause(shared_dashboard: Callable[..., Dashboard]) -> None:
    board = shared_dashboard()
    script = (
        "echo '::aikore-phase cloning'\n"
        "echo \"fatal: unable to access 'https://github.com/x/y/': Could not resolve host: github.com\" >&2\n"
        "exit 128\n"
    )
    _fail(board, "fc-phase", script)
    board.login()
    note = board.page.locator(board.row("fc-phase")).locator("[data-show='note']")
    expect(note).to_have_text("failed while cloning: could not resolve github.com (exited with code 128)")


def test_a_ready_timeout_shows_this_runs_code_and_lines(dashboard: Callable[..., Dashboard]) -> None:
    board = dashboard(extra_args=["--ready-timeout", "3"])
    instance_id = _fail(board, "fc-slow", "echo 'words of the first run'\nexit 1\n")
    board.api("PUT", f"/api/instances/{instance_id}/script", {"content": "echo 'second run: waiting'\nsleep 600\n"})
    board.api("POST", f"/api/instances/{instance_id}/start")
    board.login()
    page = board.page
    row = page.locator(board.row("fc-slow"))
    expect(row.locator("[data-show='status']")).to_have_text("starting")
    expect(row.locator("[data-show='status']")).to_have_text("error", timeout=RUNNING_TIMEOUT)
    expect(row.locator("[data-show='note']")).to_have_text(
        "not ready: / did not answer below 500 within 3 s (exit code 143)"
    )
    assert board.api("GET", f"/api/instances/{instance_id}")["exit_code"] == 143

    row.locator("[data-action='logs']").click()
    box = board.tool("logs", instance_id).locator(".logs-exit")
    expect(box.locator("strong")).to_contain_text("exit code 143")
    expect(box.locator("pre")).to_have_text("second run: waiting")
    expect(box).not_to_contain_text("first run")
