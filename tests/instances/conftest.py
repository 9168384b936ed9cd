"""A real aikore with the "tiny" blueprint: a real git clone from a local repository, a Python
environment, and a stdlib HTTP app that says which app, environment and arguments it runs with."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import AikoreProcess, git, wait_until

# Reports what it runs on: its own file (which app), its interpreter (which environment), its
# arguments, and the blueprint environment it was given.
APP = '''import json, os, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KEYS = ("INSTANCE_NAME", "WEBUI_PORT", "INSTANCE_CONF_DIR", "AIKORE_OWN_CONF_DIR", "INSTANCE_OUTPUT_DIR",
        "AIKORE_SATELLITE_OF", "CUDA_VISIBLE_DEVICES", "VIRTUAL_ENV")


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"app": os.path.abspath(__file__), "python": sys.executable, "args": sys.argv[1:],
                           "env": {k: os.environ.get(k) for k in KEYS}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


ThreadingHTTPServer((os.environ["WEBUI_HOST"], int(os.environ["WEBUI_PORT"])), Handler).serve_forever()
'''

# Installs like the real blueprints do (the library's clone and environment), offline: the app
# from TINY_UPSTREAM, and an environment made by the stdlib's venv (the library then reuses it).
BLUEPRINT = '''#!/usr/bin/env bash
### AIKORE-METADATA-START ###
# aikore.name: Tiny app
# aikore.category: Test
# aikore.description: A stdlib HTTP app cloned from a local git repository
# aikore.health: /health
### AIKORE-METADATA-END ###
AIKORE_BLUEPRINTS_LIB=${AIKORE_BLUEPRINTS_LIB:-$("${AIKORE_PYTHON:-python3}" -c \\
	'from aikore.resources import builtin_blueprints_dir as d; print(d() / "lib")')}
source "$AIKORE_BLUEPRINTS_LIB/aikore.sh"
aik_git_checkout "$TINY_UPSTREAM" "$INSTANCE_CONF_DIR/app" v1
env=$INSTANCE_CONF_DIR/env
if ! aik_is_satellite && [[ ! -x $env/bin/python ]]; then
	aik_log "installing: a Python environment in $env"
	"$AIKORE_PYTHON" -m venv --without-pip "$env"
	printf '#!%s\\nprint("tool")\\n' "$env/bin/python" >"$env/bin/tool"
	chmod +x "$env/bin/tool"
fi
aik_python_env "$env"
aik_launch python "$INSTANCE_CONF_DIR/app/app.py"
'''




@pytest.fixture
def upstream(tmp_path: Path) -> Path:
    repo = tmp_path / "upstream"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "app.py").write_text(APP)
    git(repo, "add", "app.py")
    git(repo, "commit", "-q", "-m", "tiny app")
    git(repo, "tag", "v1")
    return repo


@pytest.fixture
def tiny(aikore_process: Callable[..., AikoreProcess], upstream: Path, tmp_path: Path) -> AikoreProcess:
    """A real aikore (no auth) whose custom blueprints folder holds tiny.sh."""
    blueprints = tmp_path / "blueprints"
    blueprints.mkdir()
    (blueprints / "tiny.sh").write_text(BLUEPRINT)
    return aikore_process(
        extra_args=["--no-auth", "--blueprints-dir", str(blueprints), "--stop-timeout", "3"],
        env={"TINY_UPSTREAM": str(upstream)},
    )


def call(proc: AikoreProcess, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
    answer = proc.request(method, path, body)
    assert answer.status == expect, f"{method} {path} -> {answer.status}: {answer.body[:400]!r}"
    return answer.json()


def refused(proc: AikoreProcess, method: str, path: str, body: Any, status: int, *words: str) -> dict[str, Any]:
    """A refusal with ``status`` whose message names each of ``words``."""
    error = call(proc, method, path, body, expect=status)["error"]
    for word in words:
        assert word in error["message"], error
    return error


def create(proc: AikoreProcess, name: str, blueprint: str = "tiny", **fields: Any) -> dict[str, Any]:
    return call(proc, "POST", "/api/instances", {"name": name, "blueprint": blueprint, **fields}, expect=201)


def named(proc: AikoreProcess, name: str) -> dict[str, Any] | None:
    return next((i for i in call(proc, "GET", "/api/instances") if i["name"] == name), None)


def running(proc: AikoreProcess, instance_id: int, timeout: float = 60) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        data = call(proc, "GET", f"/api/instances/{instance_id}")
        assert data["status"] != "error", data
        return data if data["status"] == "running" else None

    return wait_until(check, timeout=timeout, what=f"instance {instance_id} to run")


def start(proc: AikoreProcess, instance_id: int) -> dict[str, Any]:
    call(proc, "POST", f"/api/instances/{instance_id}/start")
    return running(proc, instance_id)


def app_info(proc: AikoreProcess, name: str) -> dict[str, Any]:
    """What the app says through AiKore's proxy at /app/<name>/."""
    return call(proc, "GET", f"/app/{name}/info")


def folder(proc: AikoreProcess, name: str) -> Path:
    return proc.data_dir / "instances" / name


def log_of(proc: AikoreProcess, instance_id: int) -> str:
    return "\n".join(call(proc, "GET", f"/api/instances/{instance_id}/logs?tail=400")["lines"])


def status(proc: AikoreProcess, instance_id: int, state: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        data = call(proc, "GET", f"/api/instances/{instance_id}")
        return data if data["status"] == state else None

    return wait_until(check, what=f"instance {instance_id} to be {state}")


def copy_done(proc: AikoreProcess, job_id: int, timeout: float = 60) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        job = call(proc, "GET", f"/api/copies/{job_id}")
        return job if job["state"] != "copying" else None

    return wait_until(check, timeout=timeout, what=f"copy {job_id} to end")
