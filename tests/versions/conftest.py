"""A real app with releases for the versions tests: a local git remote with tags, wheels built here.

The app (``app.py``) is a tiny HTTP server that answers with its own release and the version of
the ``aikore-probe`` package its requirements pin, so a page fetched through /app/<name>/ says
which commit and which package set really run. Everything is offline: the remote is a bare
repository behind ``file://``, the packages are wheels this file builds into a find-links folder.
"""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import AikoreProcess, git, wait_until

BLUEPRINT = "versioned"

APP = '''import json, os, signal
from http.server import BaseHTTPRequestHandler, HTTPServer
from importlib.metadata import version

RELEASE = {release!r}
# A test makes a stop slow (SIGKILL after the stop timeout) by putting this file there.
if os.path.exists(os.path.join(os.environ["INSTANCE_CONF_DIR"], "stubborn")):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({{"release": RELEASE, "probe": version("aikore-probe")}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

HTTPServer((os.environ["WEBUI_HOST"], int(os.environ["WEBUI_PORT"])), Handler).serve_forever()
'''

SCRIPT = """#!/usr/bin/env bash
### AIKORE-METADATA-START ###
# aikore.name: Versioned app
# aikore.category: Test
# aikore.description: A tiny app with releases in a local git remote
# aikore.proxy: strip-prefix
# aikore.health: /
### AIKORE-METADATA-END ###

APP_REF=${{APP_REF:-v1}}

AIKORE_BLUEPRINTS_LIB=${{AIKORE_BLUEPRINTS_LIB:-$("${{AIKORE_PYTHON:-python3}}" -c \\
	'from aikore.resources import builtin_blueprints_dir as d; print(d() / "lib")')}}
source "$AIKORE_BLUEPRINTS_LIB/aikore.sh"

# A test holds a start in "starting" with this file (the script waits, not the test).
while [[ -e $INSTANCE_CONF_DIR/hold ]]; do sleep 0.05; done

app=$INSTANCE_CONF_DIR/app
aik_git_checkout {url} "$app" "$APP_REF"
aik_python_env "$INSTANCE_CONF_DIR/env"
cd "$app"
aik_pip_requirements requirements.txt
aik_launch python app.py
"""




def build_wheel(folder: Path, name: str, version: str) -> Path:
    """A pure-Python wheel with a correct RECORD, written by hand (no build backend, no network)."""
    module = name.replace("-", "_")
    dist = f"{module}-{version}"
    files = {
        f"{module}/__init__.py": f"__version__ = {version!r}\n",
        f"{dist}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: aikore-tests\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    files[f"{dist}.dist-info/RECORD"] = "\n".join([*record, f"{dist}.dist-info/RECORD,,"]) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


@dataclass
class Upstream:
    """The app's development repository and the bare remote instances clone from."""

    work: Path
    bare: Path

    @property
    def url(self) -> str:
        return self.bare.as_uri()

    def release(self, tag: str, requirements: str) -> str:
        """Commit the app at ``tag`` with these requirements, tag it, push; the commit."""
        (self.work / "app.py").write_text(APP.format(release=tag))
        (self.work / "requirements.txt").write_text(requirements)
        git(self.work, "add", "app.py", "requirements.txt")
        git(self.work, "commit", "-q", "-m", f"release {tag}")
        git(self.work, "tag", tag)
        git(self.work, "push", "-q", "origin", "main", tag)
        return git(self.work, "rev-parse", "HEAD")


@pytest.fixture
def upstream(tmp_path: Path) -> Upstream:
    bare, work = tmp_path / "upstream.git", tmp_path / "upstream"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    git(work, "remote", "add", "origin", str(bare))
    return Upstream(work, bare)


@pytest.fixture
def wheels(tmp_path: Path) -> Path:
    folder = tmp_path / "wheels"
    for name, version in (("aikore-probe", "1.0"), ("aikore-probe", "2.0"), ("aikore-extra", "1.0")):
        build_wheel(folder, name, version)
    return folder


@dataclass
class VersionedAikore:
    server: AikoreProcess
    upstream: Upstream
    data_dir: Path

    def api(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        response = self.server.request(method, path, body, timeout=120)
        assert response.status == status, f"{method} {path} -> {response.status}: {response.body[:500]!r}"
        return response.json()

    def create(self, name: str) -> int:
        return self.api("POST", "/api/instances", {"name": name, "blueprint": BLUEPRINT}, status=201)["id"]

    def instance(self, iid: int) -> dict[str, Any]:
        return self.api("GET", f"/api/instances/{iid}")

    def wait_status(self, iid: int, status: str, timeout: float = 60) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            inst = self.instance(iid)
            if inst["status"] == "error" and status != "error":
                pytest.fail(f"instance failed: {inst['status_message']}\n{self.log(iid)}")
            return inst if inst["status"] == status else None

        return wait_until(reached, timeout, what=f"instance {iid} to be {status}")

    def log(self, iid: int) -> str:
        return self.server.request("GET", f"/api/instances/{iid}/logs?tail=80").body.decode(errors="replace")

    def page(self, name: str) -> dict[str, Any]:
        response = self.server.request("GET", f"/app/{name}/")
        assert response.status == 200, response.body[:300]
        return response.json()

    def folder(self, name: str) -> Path:
        return self.data_dir / "instances" / name

    def freeze(self, name: str) -> str:
        python = self.folder(name) / "config" / "env" / "bin" / "python"
        uv = Path(sys.executable).parent / "uv"
        return subprocess.run([str(uv), "pip", "freeze", "--python", str(python)], check=True, capture_output=True,
                              text=True).stdout


@pytest.fixture
def versioned(
    tmp_path: Path, upstream: Upstream, wheels: Path, aikore_process: Callable[..., AikoreProcess]
) -> Callable[..., VersionedAikore]:
    """Factory: a real aikore with the ``versioned`` blueprint, offline uv settings, extra args."""

    def start(extra_args: list[str] | None = None, env: dict[str, str] | None = None) -> VersionedAikore:
        blueprints = versioned_blueprints(tmp_path, upstream)
        server = aikore_process(
            extra_args=["--no-auth", "--blueprints-dir", str(blueprints), "--stop-timeout", "5",
                        *(extra_args or [])],
            env={**offline_env(tmp_path, wheels), **(env or {})},
        )
        return VersionedAikore(server, upstream, tmp_path / "data")

    return start


def versioned_blueprints(tmp_path: Path, upstream: Upstream) -> Path:
    """A blueprints folder holding the ``versioned`` blueprint that clones ``upstream``."""
    blueprints = tmp_path / "blueprints"
    blueprints.mkdir(exist_ok=True)
    (blueprints / f"{BLUEPRINT}.sh").write_text(SCRIPT.format(url=upstream.url))
    return blueprints


def offline_env(tmp_path: Path, wheels: Path) -> dict[str, str]:
    """uv and the venv's Python from the test's own environment; packages only from ``wheels``."""
    return {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "AIKORE_VENV_PYTHON": sys.executable,
        "UV_NO_INDEX": "1",
        "UV_FIND_LINKS": str(wheels),
        "UV_CACHE_DIR": str(tmp_path / "uv-cache"),
        "GIT_CONFIG_NOSYSTEM": "1",
    }
