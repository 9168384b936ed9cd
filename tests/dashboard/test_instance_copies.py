"""Copies, satellites and custom blueprints in a browser, against a real aikore (demo blueprint)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import expect

from tests.dashboard.conftest import Dashboard
from tests.helpers import wait_until

RUNNING_TIMEOUT = 60_000


def named(board: Dashboard, name: str) -> dict | None:
    return next((i for i in board.api("GET", "/api/instances") if i["name"] == name), None)


def test_copy_with_progress_and_cancel_then_a_satellite_grouped_under_its_parent(
    dashboard: Callable[..., Dashboard],
) -> None:
    board = dashboard()
    page = board.page
    source = board.api("POST", "/api/instances", {"name": "src", "blueprint": "demo"})
    board.api("POST", f"/api/instances/{source['id']}/start")
    # Enough files that the copy is still under way when the user cancels it.
    bulk = board.server.data_dir / "instances" / "src" / "config" / "bulk"
    for n in range(20):
        (bulk / f"d{n}").mkdir(parents=True)
        for m in range(200):
            (bulk / f"d{n}" / f"f{m}").write_bytes(b"x")
    board.login()
    row = page.locator(board.row("src"))
    expect(row.locator("[data-show='status']")).to_have_text("running", timeout=RUNNING_TIMEOUT)

    # Copy with the environment: progress in the source's row, and Cancel leaves nothing.
    row.locator(".more-toggle").click()
    row.locator("[data-action='copy']").click()
    expect(page.locator("#copy-name")).to_have_value("src-copy")
    page.check("#copy-with-env")
    page.click("#copy-submit")
    expect(page.locator("#copy-dialog")).to_be_hidden()
    line = row.locator(".copy-line")
    expect(line).to_have_attribute("data-state", "copying")
    expect(line).to_contain_text("Copying to src-copy")
    board.shot("copy-progress")
    line.get_by_role("button", name="Cancel copy").click()
    expect(line).to_have_attribute("data-state", "cancelled")
    expect(line).to_contain_text("nothing was kept")
    assert named(board, "src-copy") is None
    expect(row.locator("[data-show='status']")).to_have_text("running")

    # A fresh copy: its row appears with the source's blueprint; a clash is named in the dialog.
    row.locator(".more-toggle").click()
    row.locator("[data-action='copy']").click()
    page.fill("#copy-name", "src")
    page.click("#copy-submit")
    expect(page.locator("#copy-dialog [data-error-for='name']")).to_contain_text("already exists")
    page.fill("#copy-name", "src-fresh")
    page.fill("#copy-gpus", "0")
    page.click("#copy-submit")
    expect(page.locator(board.row("src-fresh"))).to_have_count(1)
    assert named(board, "src-fresh")["gpu_ids"] == "0"
    expect(page.locator("#toast")).to_contain_text("src-fresh is ready")

    # A satellite: listed right under its parent, started on the parent's install.
    row.locator(".more-toggle").click()
    row.locator("[data-action='satellite']").click()
    page.fill("#satellite-name", "src-sat")
    page.fill("#satellite-gpus", "0")
    page.click("#satellite-submit")
    sat = page.locator(board.row("src-sat"))
    expect(sat.locator("[data-show='parent']")).to_have_text("↳ satellite of src")
    order = page.eval_on_selector_all("tbody.instance", "els => els.map(e => e.dataset.name)")
    assert order.index("src-sat") == order.index("src") + 1, order
    expect(sat.locator("[data-action='rebuild']")).to_be_disabled()
    expect(row.locator("[data-action='rebuild']")).to_be_enabled()
    sat.locator("[data-action='start']").click()
    expect(sat.locator("[data-show='status']")).to_have_text("running", timeout=RUNNING_TIMEOUT)
    answer = board.server.request("GET", "/app/src-sat/info").json()
    assert answer["env"]["INSTANCE_NAME"] == "src-sat" and answer["env"]["CUDA_VISIBLE_DEVICES"] == "0"
    board.shot("satellite")

    # The parent is not deleted under its satellite: the row says why.
    row.locator(".more-toggle").click()
    row.locator("[data-action='delete']").click()
    page.click("#confirm-ok")
    expect(row.locator("[data-show='error']")).to_contain_text("src-sat")
    assert named(board, "src") is not None


def test_save_search_edit_import_and_delete_custom_blueprints(
    dashboard: Callable[..., Dashboard], tmp_path: Path,
) -> None:
    board = dashboard()
    page = board.page
    board.api("POST", "/api/instances", {"name": "tuned", "blueprint": "demo"})
    board.login()

    board.action("tuned", "save-blueprint").click()
    page.fill("#blueprint-id", "tuned-bp")
    page.fill("#blueprint-name", "Tuned demo")
    page.fill("#blueprint-category", "Mine")
    page.click("#blueprint-submit")
    expect(page.locator("#toast")).to_contain_text("Tuned demo saved")

    page.click("#add-instance-btn")
    mine = page.locator("label.blueprint[data-blueprint='tuned-bp']")
    demo = page.locator("label.blueprint[data-blueprint='demo']")
    expect(mine.locator(".blueprint-tag")).to_have_text("Custom")
    expect(demo.locator(".blueprint-tag")).to_have_count(0)
    page.fill("#add-search", "tuned")
    expect(demo).to_be_hidden()
    expect(mine).to_be_visible()
    page.fill("#add-search", "")
    page.check("#add-custom-only")
    expect(demo).to_be_hidden()
    page.uncheck("#add-custom-only")
    page.fill("#add-search", "no such blueprint anywhere")
    expect(page.locator("#add-search-empty")).to_be_visible()
    page.fill("#add-search", "")

    # Built-ins are read-only; a custom one is edited in place.
    demo.locator("input").check()
    expect(page.locator("#bp-edit")).to_be_disabled()
    expect(page.locator("#bp-hint")).to_contain_text("read-only")
    mine.locator("input").check()
    page.click("#bp-edit")
    expect(page.locator("#blueprint-content")).to_have_value(re.compile("aikore\\.demo"))
    page.fill("#blueprint-description", "Edited in the browser")
    page.click("#blueprint-submit")
    expect(mine.locator(".blueprint-desc")).to_have_text("Edited in the browser")

    # Import a .sh file: it gets a header and is selected, ready to create from.
    script = tmp_path / "hello world.sh"
    script.write_text("#!/bin/bash\nexec \"$AIKORE_PYTHON\" -m aikore.demo\n")
    page.set_input_files("#bp-import-file", str(script))
    expect(page.locator("#blueprint-id")).to_have_value("hello-world")
    page.fill("#blueprint-category", "Imported")
    page.click("#blueprint-submit")
    imported = page.locator("label.blueprint[data-blueprint='hello-world']")
    expect(imported.locator("input")).to_be_checked()
    expect(imported.locator(".blueprint-cat")).to_have_text("Imported")
    board.shot("custom-blueprints")

    # Delete the edited one (confirmation first).
    mine.locator("input").check()
    page.click("#bp-delete")
    page.click("#confirm-ok")
    expect(mine).to_have_count(0)

    imported.locator("input").check()
    page.fill("#add-name", "from-import")
    page.click("#add-submit")
    expect(page.locator(board.row("from-import"))).to_have_count(1)
    wait_until(lambda: named(board, "from-import"), what="the instance made from the imported blueprint")
    assert named(board, "from-import")["blueprint"] == "hello-world"
    assert "tuned-bp" not in {b["id"] for b in board.api("GET", "/api/blueprints")}
