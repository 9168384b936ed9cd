"""A real Gradio app (from PyPI), launched by a blueprint, used through /app/<name>/ in Chromium."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import AikoreProcess, launch_chromium, wait_until

pytest.importorskip("gradio")
sync_api = pytest.importorskip("playwright.sync_api")

TOKEN = "proxy-gradio-token-0123456789abcdef"

GRADIO_APP = """\
import os

import gradio as gr


def greet(name: str) -> str:
    return f"Hello, {name}!"


demo = gr.Interface(fn=greet, inputs=gr.Textbox(label="Name"), outputs=gr.Textbox(label="Greeting"))
demo.launch(
    server_name=os.environ["WEBUI_HOST"],
    server_port=int(os.environ["WEBUI_PORT"]),
    root_path=os.environ["GRADIO_ROOT_PATH"],
)
"""

BLUEPRINT = """\
#!/usr/bin/env bash
### AIKORE-METADATA-START ###
# aikore.name: Gradio greeter
# aikore.category: Test
# aikore.description: A one-textbox Gradio app, for the proxy's end-to-end test.
# aikore.proxy: strip-prefix
# aikore.health: /
### AIKORE-METADATA-END ###
# Offline: no telemetry, no Hub look-ups.
export GRADIO_ANALYTICS_ENABLED=False HF_HUB_OFFLINE=1
exec "$AIKORE_PYTHON" {app}
"""


@pytest.fixture
def aikore(aikore_process: Callable[..., AikoreProcess], tmp_path: Path) -> AikoreProcess:
    app = tmp_path / "greeter.py"
    app.write_text(GRADIO_APP)
    blueprints = tmp_path / "blueprints"
    blueprints.mkdir()
    (blueprints / "gradio-greeter.sh").write_text(BLUEPRINT.format(app=app))
    server = aikore_process(extra_args=["--token", TOKEN, "--blueprints-dir", str(blueprints)])
    server.token = TOKEN
    return server


def _start(server: AikoreProcess, name: str, blueprint: str) -> dict[str, Any]:
    created = server.request("POST", "/api/instances", {"name": name, "blueprint": blueprint})
    assert created.status == 201, created.body
    instance_id = created.json()["id"]
    assert server.request("POST", f"/api/instances/{instance_id}/start").status == 200

    def running() -> dict[str, Any] | None:
        data = server.request("GET", f"/api/instances/{instance_id}").json()
        assert data["status"] != "error", (data, server.output())
        return data if data["status"] == "running" else None

    # Importing Gradio takes a while on a busy machine.
    return wait_until(running, timeout=180, what=f"{name} to run")


def test_gradio_app_submits_and_answers_through_the_proxy(aikore: AikoreProcess) -> None:
    instance = _start(aikore, "greeter", "gradio-greeter")
    server_errors: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page()
            page.on("response", lambda r: server_errors.append(f"{r.status} {r.url}") if r.status >= 500 else None)
            # Log in the way a user does (the printed token URL), then open the app through AiKore.
            page.goto(f"{aikore.base}/?token={TOKEN}")
            page.goto(f"{aikore.base}/app/greeter/", wait_until="networkidle", timeout=120_000)
            page.get_by_label("Name").fill("AiKore")
            page.get_by_role("button", name="Submit").click()
            greeting = page.get_by_label("Greeting")
            sync_api.expect(greeting).to_have_value("Hello, AiKore!", timeout=60_000)
        finally:
            browser.close()
    assert server_errors == []
    proxied = aikore.request("GET", f"/api/instances/{instance['id']}").json()["proxy"]
    # The page, its assets, the queue join and its event stream all went through the proxy.
    assert proxied["requests"] >= 10
    assert proxied["bytes_out"] > 100_000
