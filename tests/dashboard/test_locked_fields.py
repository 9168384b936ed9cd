"""Fields locked while an instance runs look locked and say why; an edit in progress when another
client starts the instance is reconciled (the locked part set aside, said so) instead of a 409."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import expect

from tests.dashboard.conftest import Dashboard

RUNNING_TIMEOUT = 60_000


def test_an_edit_in_progress_survives_a_start_elsewhere_and_locked_fields_say_why(
    shared_dashboard: Callable[..., Dashboard],
) -> None:
    board = shared_dashboard()
    created = board.api("POST", "/api/instances", {"name": "lk", "blueprint": "demo"})
    board.login()
    page = board.page
    row = page.locator(board.row("lk"))
    gpus = row.locator("[data-field='gpu_ids']")
    autostart = row.locator("[data-field='autostart']")
    gpus.fill("1")
    autostart.check()
    expect(row.locator("[data-action='update']")).to_be_visible()

    # Another client starts it: GPU IDs lock, so that part of the edit is set aside and said so.
    board.api("POST", f"/api/instances/{created['id']}/start")
    expect(row.locator("[data-show='status']")).to_have_text("running", timeout=RUNNING_TIMEOUT)
    note = row.locator("[data-show='note']")
    expect(note).to_contain_text(
        "Your unsaved change to GPU IDs was set aside: lk started meanwhile, which locks it."
    )
    expect(gpus).to_have_value("")
    expect(gpus).to_be_disabled()
    expect(gpus).to_have_attribute("readonly", "")
    expect(autostart).to_be_checked()  # a live field: the edit stays

    # Locked is drawn as locked, beside the field, not only in a tooltip.
    cell = page.locator(f"{board.row('lk')} td:has([data-field='gpu_ids'])")
    expect(cell).to_have_class("locked")
    assert "🔒" in cell.evaluate("td => getComputedStyle(td, '::after').content")

    # What is left of the edit saves without a conflict.
    row.locator("[data-action='update']").click()
    expect(page.locator("#toast")).to_have_text("Saved lk: Autostart.")
    expect(row.locator("[data-show='error']")).to_be_hidden()
    assert board.api("GET", f"/api/instances/{created['id']}")["autostart"] is True

    # Focus on a locked field says why in the row; typing changes nothing.
    name = row.locator("[data-field='name']")
    name.focus()
    expect(note).to_contain_text("Name is locked while lk is running: stop it to change this.")
    page.keyboard.type("renamed")
    expect(name).to_have_value("lk")
    persistent = row.locator("[data-field='persistent_mode']")
    persistent.click(force=True)  # a user can click it: it is drawn disabled, not removed
    expect(persistent).not_to_be_checked()
    expect(note).to_contain_text("Persistent mode is locked while lk is running")
    board.api("POST", f"/api/instances/{created['id']}/stop")
    expect(gpus).to_be_enabled(timeout=RUNNING_TIMEOUT)
    expect(cell).not_to_have_class("locked")
    expect(note).to_be_hidden()  # nothing is locked any more, so nothing to explain
