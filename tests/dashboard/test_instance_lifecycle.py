"""An instance over its life in the dashboard: install progress in its row, its settings edited later."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import expect

from tests.dashboard.conftest import Dashboard

# Reports an install phase with a fraction, then waits for the test before it launches the demo.
INSTALLING = """echo "::aikore-phase installing-torch 0.25"
echo "installing torch (pretend)"
while [[ ! -e go ]]; do sleep 0.05; done
echo "::aikore-phase launching"
exec "$AIKORE_PYTHON" -m aikore.demo --host "$WEBUI_HOST" --port "$WEBUI_PORT"
"""


def test_a_row_shows_the_install_phase_with_its_fraction_and_elapsed_time(
    dashboard: Callable[..., Dashboard],
) -> None:
    board = dashboard()
    created = board.api("POST", "/api/instances", {"name": "installer", "blueprint": "demo"})
    script = board.api("GET", f"/api/instances/{created['id']}/script")["content"]
    header = script.split("### AIKORE-METADATA-END ###")[0] + "### AIKORE-METADATA-END ###\n"
    board.api("PUT", f"/api/instances/{created['id']}/script", {"content": header + INSTALLING})
    board.login()
    row = board.page.locator(board.row("installer"))
    row.locator("[data-action='start']").click()
    expect(row.locator("[data-show='status']")).to_have_text("installing: installing torch")
    detail = row.locator("[data-show='progress']")
    expect(detail).to_have_text(re.compile(r"^25% · 0:0\d$"))
    first = detail.text_content()
    # The elapsed time moves on between events.
    expect(detail).not_to_have_text(first or "")
    board.shot("instance-installing")

    (board.server.data_dir / "instances" / "installer" / "go").touch()
    expect(row.locator("[data-show='status']")).to_have_text("running")
    expect(detail).to_have_text("")
