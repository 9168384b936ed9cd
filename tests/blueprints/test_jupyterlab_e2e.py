"""The JupyterLab blueprint for real: uv builds its environment from PyPI, AiKore supervises it,
and a kernel runs code over the websocket proxied at /app/<name>/.

Slow on a cold uv cache (it downloads JupyterLab once); later runs reuse uv's cache.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import uuid
from pathlib import Path

import aiohttp
import pytest

from tests.helpers import AikoreProcess, wait_until

NAME = "lab"
UV = Path(sys.executable).parent / "uv"
INSTALL_DEADLINE = 600.0

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _needs_uv() -> None:
    assert UV.exists() or shutil.which("uv"), "uv (a test dependency in pyproject) is not installed"


def execute_request(session: str, code: str) -> dict:
    msg_id = uuid.uuid4().hex
    return {
        "header": {"msg_id": msg_id, "username": "aikore-test", "session": session,
                   "msg_type": "execute_request", "version": "5.3"},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                    "allow_stdin": False, "stop_on_error": True},
    }


async def run_code_in_kernel(base: str, token: str | None, code: str) -> tuple[str, str]:
    """Start a kernel through the proxy, run ``code`` over the websocket; (stdout, reply status)."""
    prefix = f"{base}/app/{NAME}"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    # Jupyter's XSRF cookie is set for the /app/<name>/ path on 127.0.0.1: the jar must accept IPs.
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(headers=headers, cookie_jar=jar) as http:
        async with http.get(f"{prefix}/lab") as page:
            assert page.status == 200, await page.text()
            assert "JupyterLab" in await page.text()
        xsrf = next(c.value for c in jar if c.key == "_xsrf")
        async with http.post(f"{prefix}/api/kernels", json={"name": "python3"},
                             headers={"X-XSRFToken": xsrf}) as created:
            assert created.status == 201, await created.text()
            kernel = await created.json()
        session = uuid.uuid4().hex
        ws_url = f"{prefix}/api/kernels/{kernel['id']}/channels?session_id={session}"
        request = execute_request(session, code)
        out: list[str] = []
        status, idle = "", False
        async with http.ws_connect(ws_url, origin=base, max_msg_size=0) as ws:
            await ws.send_str(json.dumps(request))
            async with asyncio.timeout(120):
                # The reply comes on the shell channel, the output on iopub, in either order; iopub's
                # "idle" for this request comes after all of its output.
                while not (status and idle):
                    msg = json.loads(await ws.receive_str())
                    if msg.get("parent_header", {}).get("msg_id") != request["header"]["msg_id"]:
                        continue
                    if msg["msg_type"] == "stream":
                        out.append(msg["content"]["text"])
                    elif msg["msg_type"] == "execute_reply":
                        status = msg["content"]["status"]
                    elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                        idle = True
        # The same upgrade without AiKore's token never reaches the (token-less) kernel.
        async with aiohttp.ClientSession() as anonymous:
            try:
                await anonymous.ws_connect(ws_url, origin=base)
                refused = 101
            except aiohttp.WSServerHandshakeError as exc:
                refused = exc.status
        assert refused in (401, 403)
        async with http.delete(f"{prefix}/api/kernels/{kernel['id']}", headers={"X-XSRFToken": xsrf}) as gone:
            assert gone.status == 204
        return "".join(out), status


def test_jupyterlab_instance_runs_code_over_the_proxied_websocket(aikore_process, tmp_path: Path) -> None:
    _needs_uv()
    env = {
        # uv and the instance's tools come from PATH, as in the Docker image.
        "PATH": f"{UV.parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        # No interpreter downloads in tests: the environment is made from this Python.
        "AIKORE_VENV_PYTHON": sys.executable,
    }
    aikore: AikoreProcess = aikore_process(extra_args=["--token", "e2e-secret-token"], env=env)
    aikore.token = "e2e-secret-token"
    created = aikore.request("POST", "/api/instances", {"name": NAME, "blueprint": "jupyterlab"})
    assert created.status == 201, created.body
    instance = created.json()
    started = aikore.request("POST", f"/api/instances/{instance['id']}/start")
    assert started.status in (200, 202), started.body

    def settled() -> str | None:
        status = aikore.request("GET", f"/api/instances/{instance['id']}").json()["status"]
        return status if status in ("running", "error") else None

    # wait_until retries a predicate that raises, so a failed install is reported after the wait.
    status = wait_until(settled, timeout=INSTALL_DEADLINE, interval=1.0, what="the JupyterLab instance to run")
    log = aikore.request("GET", f"/api/instances/{instance['id']}/logs?tail=60").body.decode()
    assert status == "running", f"instance failed:\n{log}"

    # Unauthenticated requests never reach Jupyter, whose own token is off.
    assert aikore.request("GET", f"/app/{NAME}/api/status", auth=False).status in (401, 302, 303)

    conf = tmp_path / "data" / "instances" / NAME / "config"
    stdout, status = asyncio.run(run_code_in_kernel(
        aikore.base, aikore.token, "import os, sys\nprint(6 * 7)\nprint(sys.prefix)\n"))
    assert status == "ok"
    answer, prefix = stdout.split()
    assert answer == "42"
    # The kernel runs in the instance's own uv environment, not in AiKore's.
    assert Path(prefix).resolve() == (conf / "env").resolve()

    stopped = aikore.request("POST", f"/api/instances/{instance['id']}/stop")
    assert stopped.status in (200, 202), stopped.body
    wait_until(lambda: aikore.request("GET", f"/api/instances/{instance['id']}").json()["status"] == "stopped",
               timeout=60, what="the instance to stop")
