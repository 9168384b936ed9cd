"""JupyterHub's configurable-http-proxy (CHP), installed from npm into bench/.node/ and run as a peer.

CHP routes by path prefix and, by default, keeps the prefix in the upstream request. It runs here
with ``--no-include-prefix`` so ``/app/<name>/x`` reaches the instance as ``/x``: the same
strip-prefix mapping AiKore and the NGINX config use, so all three send the upstream the same
requests. Routes are added through its REST API (on its own loopback port) the way JupyterHub adds
them. Its per-request access log (info level) is turned down to warnings, as NGINX's is off.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness import free_port, http_json, process, wait_until

VERSION = "5.3.0"
NODE_DIR = Path(__file__).resolve().parent / ".node"
BINARY = NODE_DIR / "node_modules" / ".bin" / "configurable-http-proxy"
_PACKAGE_JSON = NODE_DIR / "node_modules" / "configurable-http-proxy" / "package.json"


def installed_version() -> str | None:
    try:
        return str(json.loads(_PACKAGE_JSON.read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


def install() -> Path:
    """The pinned CHP under bench/.node/, installed with npm when missing or another version."""
    if installed_version() == VERSION and BINARY.exists():
        return BINARY
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm is not installed (apt-get install nodejs npm; bench/deps does)")
    print(f"installing configurable-http-proxy@{VERSION} into {NODE_DIR}", flush=True)
    NODE_DIR.mkdir(exist_ok=True)
    subprocess.run(
        [npm, "install", "--prefix", str(NODE_DIR), "--no-audit", "--no-fund", "--loglevel=error",
         f"configurable-http-proxy@{VERSION}"],
        check=True,
    )
    return BINARY


@contextmanager
def running(port: int, routes: dict[str, str], log: Path) -> Iterator[int]:
    """CHP listening on ``port`` with ``routes`` (prefix -> target URL); yields its pid."""
    api_port, token = free_port(), secrets.token_hex(16)
    cmd = [
        install(),
        "--ip", "127.0.0.1", "--port", str(port),
        "--api-ip", "127.0.0.1", "--api-port", str(api_port),
        "--no-include-prefix",
        "--log-level", "warn",
    ]
    with process(cmd, log, env={"CONFIGPROXY_AUTH_TOKEN": token}) as proc:
        api = f"http://127.0.0.1:{api_port}/api/routes"
        auth = {"Authorization": f"token {token}"}
        wait_until(lambda: http_json(api, headers=auth) is not None, "configurable-http-proxy's API", timeout=30)
        for prefix, target in routes.items():
            http_json(f"{api}{prefix}", "POST", {"target": target}, headers=auth)
        yield proc.pid
