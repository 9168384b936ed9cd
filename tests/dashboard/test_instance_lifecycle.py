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
    board.shot("instance-installing", readme=True)

    (board.server.data_dir / "instances" / "installer" / "go").touch()
    expect(row.locator("[data-show='status']")).to_have_text("running")
    expect(detail).to_have_text("")


def test_settings_edited_after_creation_say_what_waits_for_a_restart_and_errors_name_their_field(
    dashboard: Callable[..., Dashboard],
) -> None:
    board = dashboard()
    created = board.api("POST", "/api/instances", {"name": "tuned", "blueprint": "comfyui"})
    board.login()
    page = board.page
    row = page.locator(board.row("tuned"))
    row.locator(".more-toggle").click()
    row.locator("[data-action='settings']").click()
    dialog = page.locator("#settings-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#settings-title")).to_have_text("Settings — tuned")
    # Stopped: nothing waits, nothing is locked; the blueprint's variables are fields with their values.
    expect(dialog.locator(".applies:visible")).to_have_count(0)
    expect(page.locator("[data-variable='COMFYUI_REF']")).to_have_value("v0.3.64")
    expect(page.locator("#settings-variables")).to_contain_text("ComfyUI's version")

    page.fill("#settings-launch-args", "--preview-method auto\n--output-name my images\n")
    page.fill("#settings-env", "GREETING=hello world\nBROKEN")
    page.click("#settings-submit")
    error = dialog.locator("[data-error-for='env']")
    expect(error).to_have_text("env: line 2 is not NAME=value")

    page.fill("#settings-env", "WEBUI_PORT=80")
    page.click("#settings-submit")
    expect(error).to_contain_text("env.WEBUI_PORT: is set by AiKore itself")
    expect(page.locator("#settings-env")).to_have_attribute("aria-invalid", "true")
    # Without --slurm there is no "Runs on" choice (the cluster was asked when the dialog opened).
    expect(page.locator("#settings-where")).to_be_hidden()

    page.fill("#settings-env", "GREETING=hello world")
    page.fill("[data-variable='COMFYUI_REF']", "v0.3.65")
    page.select_option("#settings-restart", "on-failure")
    page.click("#settings-submit")
    expect(dialog).to_be_hidden()
    saved = board.api("GET", f"/api/instances/{created['id']}")
    assert saved["launch_args"] == ["--preview-method auto", "--output-name my images"]
    assert saved["env"] == {"GREETING": "hello world"} and saved["restart_policy"] == "on-failure"
    assert saved["variables"][0] == {"name": "COMFYUI_REF", "value": "v0.3.65",
                                     "description": "ComfyUI's version: a git tag, branch or commit"}
    script = board.api("GET", f"/api/instances/{created['id']}/script")["content"]
    assert "COMFYUI_REF=${COMFYUI_REF:-v0.3.65}" in script

    # Running (a stand-in script keeps it starting): restart fields say so, stop-first ones are locked.
    board.api("PUT", f"/api/instances/{created['id']}/script",
              {"content": script.split("### AIKORE-METADATA-END ###")[0]
               + "### AIKORE-METADATA-END ###\nCOMFYUI_REF=${COMFYUI_REF:-v0.3.65}\nexec sleep 600\n"})
    row.locator("[data-action='start']").click()
    expect(row.locator("[data-show='status']")).to_have_text("starting")
    row.locator(".more-toggle").click()
    row.locator("[data-action='settings']").click()
    expect(page.locator("#settings-running")).to_be_visible()
    expect(dialog.locator("[data-setting='launch_args'] .applies")).to_have_text("next restart")
    expect(dialog.locator("[data-setting='variables'] .applies")).to_have_text("next restart")
    expect(dialog.locator("[data-setting='public_port'] .applies")).to_have_text("stop first")
    expect(page.locator("#settings-public-port")).to_be_disabled()
    expect(dialog.locator("[data-setting='restart_policy'] .applies")).to_be_hidden()
    board.shot("instance-settings", readme=True)
    page.fill("#settings-launch-args", "--lowvram")
    page.click("#settings-submit")
    expect(page.locator("#toast")).to_contain_text("restart it to apply them")
    assert board.api("GET", f"/api/instances/{created['id']}")["launch_args"] == ["--lowvram"]
