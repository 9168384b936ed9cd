"""Install progress on a real install: a blueprint of the library clones a local git repository
(file://), makes a real uv environment and installs a wheel built here, reporting its phases.

The phases are seen through the API and the events stream while the install runs; a long install
does not use up the ready timeout (it counts from ``launching``); a failing phase is named with
the cause found in its own log lines.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from aikore.resources import builtin_blueprints_dir
from tests.helpers import git, until, wait_until
from tests.supervisor.conftest import MakeClient, api, create, status_is

UV_DIR = Path(sys.executable).parent
READY_TIMEOUT = 1.5
# A blueprint of the library: clone, environment, requirements, a phase of its own that waits for
# the test (a long install step), the shared model folders, launch.
BLUEPRINT = """#!/usr/bin/env bash
### AIKORE-METADATA-START ###
# aikore.name: {name}
# aikore.health: /
### AIKORE-METADATA-END ###
source "{lib}/aikore.sh"
app=$INSTANCE_CONF_DIR/app
aik_git_checkout "{url}" "$app" v1
aik_python_env "$INSTANCE_CONF_DIR/env"
cd "$app"
aik_pip_requirements {requirements}
aik_phase warming-up
while [[ ! -e $INSTANCE_CONF_DIR/../go ]]; do sleep 0.05; done
aik_link_models "$app/models" checkpoints=checkpoints
aik_launch python app.py
"""
APP = """import http.server, os
import aikprog_dep

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = aikprog_dep.VALUE.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

http.server.HTTPServer((os.environ["WEBUI_HOST"], int(os.environ["WEBUI_PORT"])), Handler).serve_forever()
"""




def make_upstream(root: Path) -> Path:
    """A repository with the app, its requirements (one found, one not) and a model folder, tagged v1."""
    repo = root / "upstream"
    (repo / "models" / "checkpoints").mkdir(parents=True)
    (repo / "models" / "checkpoints" / "put_checkpoints_here").write_text("")
    (repo / "app.py").write_text(APP)
    (repo / "requirements.txt").write_text("aikprog-dep==1.0\n")
    (repo / "requirements-broken.txt").write_text("aikprog-missing==9\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "--all")
    git(repo, "commit", "-q", "-m", "the app")
    git(repo, "tag", "v1")
    return repo


def make_wheel(folder: Path) -> Path:
    """A pure-Python wheel for uv to install from a local folder (no index)."""
    folder.mkdir(parents=True, exist_ok=True)
    dist = "aikprog_dep-1.0.dist-info"
    files = {
        "aikprog_dep/__init__.py": 'VALUE = "installed by uv"\n',
        f"{dist}/METADATA": "Metadata-Version: 2.1\nName: aikprog-dep\nVersion: 1.0\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: aikore-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{name},,\n" for name in files) + f"{dist}/RECORD,,\n"
    wheel = folder / "aikprog_dep-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, text in {**files, f"{dist}/RECORD": record}.items():
            zf.writestr(name, text)
    return folder


@pytest.fixture
def upstream(tmp_path: Path, blueprints_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The blueprints (good, bad clone, bad requirement) and the environment uv installs offline with."""
    repo = make_upstream(tmp_path)
    lib = builtin_blueprints_dir() / "lib"
    for name, url, requirements in (
        ("progress", repo.as_uri(), "requirements.txt"),
        ("badclone", (tmp_path / "no-such-repo").as_uri(), "requirements.txt"),
        ("badreq", repo.as_uri(), "requirements-broken.txt"),
    ):
        (blueprints_dir / f"{name}.sh").write_text(
            BLUEPRINT.format(name=name, lib=lib, url=url, requirements=requirements)
        )
    monkeypatch.setenv("PATH", f"{UV_DIR}:/usr/local/bin:/usr/bin:/bin")
    monkeypatch.setenv("UV_NO_INDEX", "1")
    monkeypatch.setenv("UV_FIND_LINKS", str(make_wheel(tmp_path / "wheels")))
    monkeypatch.setenv("AIKORE_VENV_PYTHON", sys.executable)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return repo


async def events(client: TestClient, out: list[dict[str, Any]]) -> None:
    """Every instance the events stream sends (the snapshot's too), until cancelled."""
    async with client.get("/api/events") as resp:
        kind = ""
        async for raw in resp.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: ") and kind == "instance":
                out.append(json.loads(line[6:]))


async def test_a_real_install_shows_its_phases_and_a_long_install_does_not_use_up_the_ready_timeout(
    make_client: MakeClient, upstream: Path, tmp_path: Path
) -> None:
    client = await make_client(ready_timeout=READY_TIMEOUT)
    seen: list[dict[str, Any]] = []
    reader = asyncio.ensure_future(events(client, seen))
    inst = await create(client, "prog", "progress")
    started = time.monotonic()
    await api(client, "POST", f"/api/instances/{inst['id']}/start")

    async def warming_up() -> dict[str, Any] | None:
        data = await api(client, "GET", f"/api/instances/{inst['id']}")
        assert data["status"] == "starting", data["status_message"]
        progress = data["progress"]
        return data if progress is not None and progress["phase"] == "warming-up" else None

    # The install (clone, uv environment, the wheel) ran for real to reach the blueprint's own phase.
    data = await until(warming_up, 120, what="the install to reach its warming-up phase")
    progress = data["progress"]
    assert progress["installing"] is True and progress["fraction"] is None
    assert progress["started"] <= progress["since"] <= time.time()
    # Twice the ready timeout spent installing: still starting, still in that phase.
    await until(lambda: time.monotonic() - started > 2 * READY_TIMEOUT, what="twice the ready timeout")
    assert await warming_up(), "the install was cut short by the ready timeout"

    (tmp_path / "data" / "instances" / "prog" / "go").touch()
    running = await status_is(client, inst["id"], "running", within=60)
    assert running["progress"] is None
    resp = await client.get("/app/prog/")
    assert await resp.text() == "installed by uv"

    reader.cancel()
    phases = [e["progress"]["phase"] for e in seen if e["id"] == inst["id"] and e["progress"] is not None]
    assert "warming-up" in phases and phases[0] in ("cloning", "creating-env", "installing-requirements")
    assert [e["status"] for e in seen if e["id"] == inst["id"]][-1] == "running"
    # Every phase the library reports is in the log, in order, and git's fraction with the clone.
    log = (await api(client, "GET", f"/api/instances/{inst['id']}/logs?tail=400"))["lines"]
    markers = [line.split()[1] for line in log if line.startswith("::aikore-phase ")]
    assert list(dict.fromkeys(markers)) == [
        "cloning", "creating-env", "installing-requirements", "warming-up", "linking-models", "launching"
    ]
    assert any(line.startswith("::aikore-phase cloning 0.") for line in log), log


async def test_a_failing_phase_is_named_with_its_cause(make_client: MakeClient, upstream: Path) -> None:
    client = await make_client(ready_timeout=READY_TIMEOUT)
    clone = await create(client, "badclone", "badclone")
    req = await create(client, "badreq", "badreq")
    await api(client, "POST", f"/api/instances/{clone['id']}/start")
    await api(client, "POST", f"/api/instances/{req['id']}/start")

    failed = await status_is(client, clone["id"], "error", within=60)
    first = failed["status_message"].split("\n")[0]
    assert first.startswith("failed while cloning: "), first
    assert "does not appear to be a git repository" in first and "(exited with code 128)" in first
    assert failed["progress"]["phase"] == "cloning"

    failed = await status_is(client, req["id"], "error", within=120)
    first = failed["status_message"].split("\n")[0]
    assert first.startswith("failed while installing requirements: No solution found"), first
    assert "aikprog-missing" in first
    assert failed["progress"]["phase"] == "installing-requirements"


async def test_the_ready_timeout_still_counts_from_launching(
    make_client: MakeClient, upstream: Path, blueprints_dir: Path
) -> None:
    # Installs nothing for long, launches something that never listens: not ready, timed from launch.
    (blueprints_dir / "stall.sh").write_text(
        "#!/usr/bin/env bash\n"
        f'source "{builtin_blueprints_dir() / "lib"}/aikore.sh"\n'
        "aik_phase cloning 0.5\n"
        "aik_launch sleep 600\n"
    )
    client = await make_client(ready_timeout=READY_TIMEOUT)
    inst = await create(client, "stall", "stall")
    await api(client, "POST", f"/api/instances/{inst['id']}/start")
    started = time.monotonic()
    failed = await status_is(client, inst["id"], "error", within=30)
    first = failed["status_message"].split("\n")[0]
    assert first == f"not ready: / did not answer below 500 within {READY_TIMEOUT:g} s", first
    assert time.monotonic() - started >= READY_TIMEOUT
    assert failed["progress"]["phase"] == "launching"


def test_an_install_keeps_its_phase_and_its_patience_across_an_aikore_crash(
    aikore_process: Any, upstream: Path, blueprints_dir: Path, tmp_path: Path
) -> None:
    args = ["--no-auth", "--blueprints-dir", str(blueprints_dir), "--ready-timeout", str(READY_TIMEOUT)]
    first = aikore_process(extra_args=args)
    created = first.request("POST", "/api/instances", {"name": "survivor", "blueprint": "progress"}).json()
    assert first.request("POST", f"/api/instances/{created['id']}/start").status == 200

    def phase(server: Any) -> str | None:
        data = server.request("GET", f"/api/instances/{created['id']}").json()
        assert data["status"] == "starting", data["status_message"]
        return (data["progress"] or {}).get("phase")

    wait_until(lambda: phase(first) == "warming-up", 120, what="the install to reach warming-up")
    first.kill()

    second = aikore_process(extra_args=args)
    # Re-adopted mid-install: the phase is read back, and the ready timeout waits for launching.
    wait_until(lambda: phase(second) == "warming-up", 30, what="the adopted install's phase")
    adopted = time.monotonic()
    wait_until(lambda: time.monotonic() - adopted > 2 * READY_TIMEOUT, what="twice the ready timeout")
    assert phase(second) == "warming-up"
    (tmp_path / "data" / "instances" / "survivor" / "go").touch()
    wait_until(lambda: second.request("GET", f"/api/instances/{created['id']}").json()["status"] == "running",
               60, what="the adopted instance to become ready")
