"""Escapes and impostors, on a real AiKore: a helper that leaves its tree, session and environment
is stopped with its instance (where cgroups are available); an app whose port another program
took is never reported running on it."""

from __future__ import annotations

import http.server
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from aikore.supervisor import cgroups
from tests.helpers import AikoreProcess, wait_until

from .real import args, create, status


def test_a_helper_that_left_its_tree_session_and_environment_is_stopped_with_its_instance(
    aikore_process: Callable[..., AikoreProcess], blueprints_dir: Path
) -> None:
    if cgroups.detect_base() is None:
        pytest.skip("no writable cgroup v2 hierarchy here: such a helper survives a stop (README documents it)")
    proc = aikore_process(extra_args=args(blueprints_dir))
    inst = create(proc, "web", "escaper")
    proc.request("POST", f"/api/instances/{inst['id']}/start")
    running = status(proc, inst["id"], "running")
    pidfile = proc.data_dir / "instances" / "web" / "escaped.pid"
    helper = psutil.Process(int(wait_until(lambda: pidfile.is_file() and pidfile.read_text(), what="the helper")))
    root = psutil.Process(running["pid"])
    assert helper.pid not in {p.pid for p in root.children(recursive=True)}
    assert os.getsid(helper.pid) != os.getsid(root.pid) and helper.environ() == {}, "it did escape"
    proc.request("POST", f"/api/instances/{inst['id']}/stop")
    status(proc, inst["id"], "stopped")
    assert not helper.is_running() or helper.status() == psutil.STATUS_ZOMBIE


class _Impostor(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"impostor"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def impostor() -> Iterator[Callable[[int], http.server.HTTPServer]]:
    servers: list[http.server.HTTPServer] = []

    def listen(port: int) -> http.server.HTTPServer:
        server = http.server.HTTPServer(("127.0.0.1", port), _Impostor)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield listen
    for server in servers:
        server.shutdown()
        server.server_close()


def test_an_app_whose_port_another_program_took_is_never_running_on_it(
    aikore_process: Callable[..., AikoreProcess], blueprints_dir: Path,
    impostor: Callable[[int], http.server.HTTPServer],
) -> None:
    proc = aikore_process(extra_args=args(blueprints_dir))
    inst = create(proc, "web", "slowbind")
    starting = proc.request("POST", f"/api/instances/{inst['id']}/start").json()
    assert starting["status"] == "starting"
    # Another program takes the port while the app is still getting ready to bind it.
    taken = starting["port"]
    impostor(taken)
    running = status(proc, inst["id"], "running", timeout=60)
    assert running["port"] != taken, "the impostor's answers made the instance look ready"
    page = proc.request("GET", "/app/web/info")
    assert page.status == 200 and page.body != b"impostor"
    assert page.json()["env"]["WEBUI_PORT"] == str(running["port"])
