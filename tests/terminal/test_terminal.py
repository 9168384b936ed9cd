"""A real PTY through the websocket: commands, the instance's environment, resize, the end of the shell."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
import venv as venv_module
from typing import Any

import psutil
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient

from aikore.config import Settings
from aikore.terminal import TERMINALS


class Term:
    """The browser's side of one terminal websocket."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.screen = b""
        self.control: list[dict[str, Any]] = []

    async def type(self, text: str) -> None:
        await self.ws.send_bytes(text.encode())

    async def expect(self, needle: str) -> str:
        deadline = time.monotonic() + 15.0
        while needle.encode() not in self.screen:
            if time.monotonic() > deadline:
                raise AssertionError(f"no {needle!r} on the screen: {self.screen[-1500:]!r}")
            try:
                msg = await self.ws.receive(timeout=max(0.01, deadline - time.monotonic()))
            except TimeoutError:
                continue
            if msg.type == WSMsgType.BINARY:
                self.screen += msg.data
            elif msg.type == WSMsgType.TEXT:
                self.control.append(json.loads(msg.data))
            else:
                raise AssertionError(f"socket ended before {needle!r}: {self.screen[-500:]!r}")
        return self.screen.decode(errors="replace")

    async def run(self, command: str, marker: str) -> str:
        """Run ``command`` and return what it printed between two markers."""
        await self.type(f"echo {marker}-BEGIN; {command}; echo {marker}-END\n")
        text = await self.expect(f"\n{marker}-END")
        return text.rsplit(f"\n{marker}-BEGIN", 1)[1].rsplit(f"\n{marker}-END", 1)[0].strip()


async def _instance(client: TestClient, gpu_ids: str = "") -> dict[str, Any]:
    resp = await client.post("/api/instances", json={"name": "term1", "blueprint": "demo", "gpu_ids": gpu_ids})
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def _open(client: TestClient, path: str) -> Term:
    term = Term(await client.ws_connect(path))
    await term.type("PS1='$ '; stty -echo\n")
    return term


async def test_instance_shell_has_instance_environment_and_python(client: TestClient, settings: Settings) -> None:
    inst = await _instance(client, gpu_ids="1,3")
    folder = settings.instances_dir / "term1"
    venv = folder / "config" / "env"
    # The blueprint's Python environment: a real venv (without pip, to be quick).
    await asyncio.to_thread(venv_module.create, venv, with_pip=False)
    term = await _open(client, f"/api/instances/{inst['id']}/terminal")
    assert await term.run("echo $CUDA_VISIBLE_DEVICES", "A") == "1,3"
    assert await term.run("pwd", "B") == str(folder)
    assert await term.run("echo $INSTANCE_NAME $INSTANCE_OUTPUT_DIR", "C") == f"term1 {folder / 'output'}"
    assert await term.run("python -c 'import sys; print(sys.prefix)'", "D") == str(venv)
    assert await term.run("echo $VIRTUAL_ENV", "E") == str(venv)
    assert term.control[0]["type"] == "session" and term.control[0]["instance_id"] == inst["id"]
    await term.ws.close()


async def test_without_env_the_shell_is_the_users_own(client: TestClient) -> None:
    inst = await _instance(client)
    term = await _open(client, f"/api/instances/{inst['id']}/terminal")
    # No Python environment to activate: ~/.bashrc decides (here its decoy comes first).
    assert await term.run("python", "P") == "decoy-python"
    assert await term.run("echo ${VIRTUAL_ENV-none}", "V") == "none"
    assert await term.run("echo ${AIKORE_TOKEN-unset}", "T") == "unset"
    await term.ws.close()


async def test_resize_changes_stty_size(client: TestClient) -> None:
    term = await _open(client, "/api/terminal?cols=100&rows=30")
    assert await term.run("stty size", "S1") == "30 100"
    await term.ws.send_str(json.dumps({"type": "resize", "cols": 132, "rows": 43}))
    assert await term.run("stty size", "S2") == "43 132"
    await term.ws.close()


async def test_colours_reach_the_browser_as_escape_codes(client: TestClient) -> None:
    term = await _open(client, "/api/terminal")
    await term.type("printf '\\033[31mRED\\033[0m\\n'; echo $TERM\n")
    text = await term.expect("xterm-256color")
    assert "\x1b[31mRED" in text
    await term.ws.close()


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def _until(condition: Any) -> None:
    deadline = time.monotonic() + 10.0
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_closing_the_socket_ends_the_shell_and_its_jobs(client: TestClient) -> None:
    term = await _open(client, "/api/terminal")
    shell = int(await term.run("echo $$", "PID"))
    # A background job (its own process group) and a nohup'd one: neither outlives the session.
    job = int((await term.run("sleep 300 & echo $!", "J")).split()[-1])
    nohup = int((await term.run("nohup sleep 301 >/dev/null 2>&1 & echo $!", "N")).split()[-1])
    await term.ws.close()
    await _until(lambda: _gone(shell) and _gone(job) and _gone(nohup))
    await _until(lambda: client.app[TERMINALS].list() == [])


async def test_a_kept_session_survives_the_socket_and_is_reattached(client: TestClient) -> None:
    term = await _open(client, "/api/terminal?keep=1")
    session = term.control[0]["id"] if term.control else None
    await term.run("export KEPT=yes-still-here", "K")
    session = session or term.control[0]["id"]
    shell = int(await term.run("echo $$", "PID"))
    await term.ws.close()
    await asyncio.sleep(0.3)
    assert not _gone(shell)
    listed = await (await client.get("/api/terminals")).json()
    assert [s["id"] for s in listed] == [session] and listed[0]["attached"] is False
    again = Term(await client.ws_connect(f"/api/terminal?session={session}"))
    assert await again.run("echo $KEPT", "R") == "yes-still-here"
    await again.ws.close()
    resp = await client.delete(f"/api/terminals/{session}")
    assert resp.status == 204
    await _until(lambda: _gone(shell))


async def test_exit_in_the_shell_closes_the_socket_with_its_code(client: TestClient) -> None:
    term = await _open(client, "/api/terminal")
    await term.type("exit 7\n")
    while True:
        msg = await term.ws.receive(timeout=10)
        if msg.type == WSMsgType.TEXT and json.loads(msg.data)["type"] == "exit":
            assert json.loads(msg.data)["code"] == 7
            break
        assert msg.type in (WSMsgType.BINARY, WSMsgType.TEXT)


async def test_unknown_session_and_instance_are_404_before_the_upgrade(client: TestClient) -> None:
    resp = await client.get("/api/terminal?session=nope", headers={"Upgrade": "websocket", "Connection": "Upgrade"})
    assert resp.status == 404
    resp = await client.get("/api/instances/99/terminal", headers={"Upgrade": "websocket", "Connection": "Upgrade"})
    assert resp.status == 404
    resp = await client.get("/api/terminal")
    assert resp.status == 400


async def test_shutdown_ends_kept_sessions(settings: Settings, aiohttp_client: Any) -> None:
    from aikore.app import create_app

    app: web.Application = create_app(settings)
    client = await aiohttp_client(app)
    term = await _open(client, "/api/terminal?keep=1")
    shell = int(await term.run("echo $$", "PID"))
    await term.ws.close()
    await client.close()
    assert _gone(shell)





async def test_a_paste_into_a_busy_shell_does_not_block_aikore(client: TestClient) -> None:
    term = await _open(client, "/api/terminal")
    await term.type("stty raw -echo; sleep 3; stty sane\n")
    await asyncio.sleep(0.3)
    # Far more than the PTY's input buffer, while nothing reads it.
    await term.ws.send_bytes(b"x" * (1024 * 1024))
    started = time.monotonic()
    assert (await client.get("/api/health")).status == 200
    assert time.monotonic() - started < 1.0
    await term.ws.close()


def test_a_shell_hangs_up_when_aikore_dies(aikore_process: Any) -> None:
    """A real aikore killed outright (no cleanup runs): its PTY closes, so even a kept shell is hung up."""
    server = aikore_process()
    script = (
        "import asyncio, aiohttp, sys\n"
        "async def main():\n"
        "    async with aiohttp.ClientSession() as s:\n"
        f"        ws = await s.ws_connect('{server.base.replace('http', 'ws')}/api/terminal?keep=1')\n"
        "        await ws.send_bytes(b'echo PID=$$\\n')\n"
        "        text = b''\n"
        "        while b'PID=' not in text.replace(b'echo PID=', b''):\n"
        "            m = await ws.receive(timeout=15)\n"
        "            text += m.data if isinstance(m.data, bytes) else b''\n"
        "        print(text.replace(b'echo PID=', b'').split(b'PID=')[1].split()[0].decode())\n"
        "asyncio.run(main())\n"
    )
    shell = int(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                               check=True).stdout.strip())
    assert not _gone(shell)
    assert server.proc is not None
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(timeout=10)
    deadline = time.monotonic() + 10
    while not _gone(shell):
        assert time.monotonic() < deadline, "the shell outlived AiKore"
        time.sleep(0.05)
