"""The built-in ComfyUI blueprint, exactly as shipped, installed by its own script and used for real.

GitHub and PyTorch's index are out of reach here, so only what the blueprint and its library let a
user set is changed: git's ``url.<local>.insteadOf`` sends its two clones to local repositories made
from the source snapshots in shared/testdata, and AIKORE_TORCH_INDEX/AIKORE_TORCH_PINS with uv's own
UV_FIND_LINKS install the torch build whose wheels lie on this machine's disk. Everything else
(ComfyUI's and the Manager's requirements) comes from PyPI. uv's cache is kept between runs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pytest

from tests.blueprints.conftest import BLUEPRINTS
from tests.helpers import AikoreProcess, git, launch_chromium, wait_until

sync_api = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

NAME = "comfy"
TOKEN = "comfyui-real-token-0123456789abcdef"
# The workplace's source snapshots: shared/testdata beside the checkout (or above it), or where
# AIKORE_TESTDATA says.
TESTDATA = Path(os.environ["AIKORE_TESTDATA"]) if "AIKORE_TESTDATA" in os.environ else next(
    (p / "shared" / "testdata" for p in Path(__file__).resolve().parents if (p / "shared" / "testdata").is_dir()),
    Path(__file__).resolve().parents[3] / "shared" / "testdata",
)
COMFYUI_URL = "https://github.com/comfyanonymous/ComfyUI.git"
MANAGER_URL = "https://github.com/ltdrdata/ComfyUI-Manager.git"
# The torch build these machines keep on disk (pip's constraints cap torch at it).
TORCH_PINS = ("torch==2.14.1", "torchvision==0.29.1")
UV = Path(sys.executable).parent / "uv"
# Several GB of torch and CUDA libraries unpacked into a cold uv cache, then ComfyUI's requirements.
INSTALL_DEADLINE = 1200.0
# A start that installs nothing still imports torch and runs the Manager's start-up checks.
RESTART_DEADLINE = 180.0
# The smallest workflow that runs on a CPU without a model: a blank image, saved.
WORKFLOW = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 48, "batch_size": 1, "color": 0x3366CC}},
    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "aikore-e2e"}},
}


@dataclass
class Upstreams:
    comfyui: Path
    manager: Path
    release: str  # the snapshot's tag, v<version>
    next_tag: str  # one commit later, for the ref change
    next_commit: str




def repo_from_snapshot(archive: Path, dest: Path, branch: str, message: str) -> Path:
    """A git repository holding one snapshot (no history upstream; one commit here)."""
    assert archive.exists(), f"{archive} is missing: see shared/testdata/README.md"
    with tarfile.open(archive) as tar:
        top = tar.getnames()[0].split("/")[0]
        tar.extractall(dest, filter="tar")
    repo = dest / top
    git(repo, "init", "-q", "-b", branch)
    # The snapshot is the upstream tree: keep every file, including those its .gitignore names.
    git(repo, "add", "--all", "--force", ".")
    git(repo, "commit", "-q", "-m", message)
    return repo


@pytest.fixture
def upstreams(tmp_path: Path) -> Upstreams:
    src = tmp_path / "upstream"
    comfyui = repo_from_snapshot(TESTDATA / "comfyui-0.3.64.tar.gz", src, "master", "ComfyUI snapshot")
    version = re.search(r'__version__\s*=\s*"([^"]+)"', (comfyui / "comfyui_version.py").read_text())
    assert version, "comfyui_version.py names no version"
    release = f"v{version.group(1)}"
    git(comfyui, "tag", release)
    (comfyui / "AIKORE_NEXT.txt").write_text("one commit after the release\n")
    git(comfyui, "add", "AIKORE_NEXT.txt")
    git(comfyui, "commit", "-q", "-m", "next")
    git(comfyui, "tag", f"{release}-aikore-next")
    manager = repo_from_snapshot(TESTDATA / "comfyui-manager-3.31.8.tar.gz", src, "main", "Manager snapshot")
    return Upstreams(comfyui, manager, release, f"{release}-aikore-next", git(comfyui, "rev-parse", "HEAD"))


def git_redirects(path: Path, upstreams: Upstreams) -> Path:
    """A global git config sending the blueprint's GitHub URLs to the local repositories."""
    path.write_text(
        f'[url "{upstreams.comfyui.as_uri()}"]\n\tinsteadOf = {COMFYUI_URL}\n'
        f'[url "{upstreams.manager.as_uri()}"]\n\tinsteadOf = {MANAGER_URL}\n'
    )
    return path


def local_torch_dirs() -> list[str]:
    """The folders holding the torch wheels pip would install here: pip's report names its files."""
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--ignore-installed", "--quiet",
         "--report", "-", *TORCH_PINS],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, f"pip cannot find {TORCH_PINS} for this Python:\n{proc.stderr}"
    urls = [item["download_info"]["url"] for item in json.loads(proc.stdout)["install"]]
    local = [unquote(urlparse(u).path) for u in urls if u.startswith("file:")]
    assert len(local) == len(TORCH_PINS), f"{TORCH_PINS} are not on this machine's disk: pip takes {urls}"
    return sorted({str(Path(p).parent) for p in local})


def uv_cache() -> str:
    """uv's cache outlives the test, so a second run on this machine downloads nothing again."""
    return os.environ.get("UV_CACHE_DIR") or str(Path.home() / ".cache" / "uv")


def instance_env(tmp_path: Path, upstreams: Upstreams) -> dict[str, str]:
    default_index = os.environ.get("UV_DEFAULT_INDEX") or os.environ.get("UV_INDEX_URL") or "https://pypi.org/simple"
    return {
        "PATH": f"{UV.parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "GIT_CONFIG_GLOBAL": str(git_redirects(tmp_path / "gitconfig", upstreams)),
        # Python 3.11: the local torch wheels are built for it (the blueprint asks for 3.12).
        "AIKORE_VENV_PYTHON": sys.executable,
        # PyPI has torch's CUDA dependencies; uv prefers the same files found through --find-links.
        "AIKORE_TORCH_INDEX": default_index,
        "AIKORE_TORCH_PINS": " ".join(TORCH_PINS),
        "UV_FIND_LINKS": ",".join(local_torch_dirs()),
        "UV_CACHE_DIR": uv_cache(),
    }


# -- AiKore's API --------------------------------------------------------------------------------


def api(aikore: AikoreProcess, method: str, path: str, body: Any = None) -> Any:
    resp = aikore.request(method, f"/api/instances{path}", body)
    assert resp.status in (200, 201, 202), (method, path, resp.status, resp.body)
    return resp.json()


def log_lines(aikore: AikoreProcess, instance_id: int) -> list[str]:
    return api(aikore, "GET", f"/{instance_id}/logs?tail=10000")["lines"]


def start_indexes(lines: list[str]) -> list[int]:
    """Where each start begins in the log: the library greets every start with the instance's name."""
    return [i for i, line in enumerate(lines) if line.startswith(f"[aikore] instance {NAME}: ")]


@dataclass
class Start:
    """One start through AiKore's API: its log, and how long until the app launched and answered."""

    log: str
    to_launch: float  # the blueprint's own steps (clone, environment, installs, links)
    to_running: float  # ... plus the app's start until its health path answers


def start(aikore: AikoreProcess, instance_id: int, action: str, deadline: float) -> Start:
    """POST start|restart|rebuild and wait until the instance runs; fail with its log if it errors."""
    before = len(start_indexes(log_lines(aikore, instance_id)))
    began = time.monotonic()
    api(aikore, "POST", f"/{instance_id}/{action}")
    launched: list[float] = []

    def settled() -> str | None:
        status = api(aikore, "GET", f"/{instance_id}")["status"]
        lines = log_lines(aikore, instance_id)
        starts = start_indexes(lines)
        if not launched and len(starts) > before and any(
            line.startswith("[aikore] launching: ") for line in lines[starts[-1] :]
        ):
            launched.append(time.monotonic() - began)
        return status if status == "error" or (status == "running" and launched) else None

    status = wait_until(settled, timeout=deadline, interval=0.5, what=f"the ComfyUI instance to {action}")
    lines = log_lines(aikore, instance_id)
    log = "\n".join(lines[start_indexes(lines)[-1] :])
    assert status == "running", f"the instance failed:\n{log[-8000:]}"
    return Start(log, launched[0], time.monotonic() - began)


def stop(aikore: AikoreProcess, instance_id: int) -> None:
    api(aikore, "POST", f"/{instance_id}/stop")
    wait_until(lambda: api(aikore, "GET", f"/{instance_id}")["status"] == "stopped", timeout=60,
               what="the instance to stop")


def env_versions(venv: Path, *names: str) -> list[str]:
    code = f"from importlib.metadata import version\nfor n in {names!r}: print(version(n))"
    proc = subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, check=True)
    return proc.stdout.split()


# -- the browser ---------------------------------------------------------------------------------

QUEUE = """async (workflow) => {
    const resp = await fetch("prompt", {
        method: "POST",
        headers: {"Content-Type": "application/json"},
        body: JSON.stringify({prompt: workflow, client_id: window.app.api.clientId}),
    });
    return {status: resp.status, body: await resp.json()};
}"""

FETCH_IMAGE = """async (query) => {
    const resp = await fetch("view?" + new URLSearchParams(query));
    const bytes = new Uint8Array(await resp.arrayBuffer());
    return {status: resp.status, type: resp.headers.get("content-type"), size: bytes.length,
            head: Array.from(bytes.slice(0, 8))};
}"""


@dataclass
class BrowserRun:
    sockets: list[str]
    frames: list[str]
    server_errors: list[str]
    manager_answers: list[str]
    prompt_id: str
    image: dict[str, Any]
    manager_version: str


def close_dialogs(page: Any) -> None:
    """A new user is greeted by dialogs (workflow templates); close them as a user would."""

    def closed() -> bool:
        if page.locator(".p-dialog-mask").count() == 0:
            return True
        page.keyboard.press("Escape")
        return False

    wait_until(closed, timeout=30, interval=0.5, what="ComfyUI's start-up dialogs to close")


def use_in_chromium(aikore: AikoreProcess) -> BrowserRun:
    """Load the frontend through /app/<name>/, queue the workflow, fetch its image, open the Manager."""
    sockets: list[str] = []
    frames: list[str] = []
    server_errors: list[str] = []
    manager_answers: list[str] = []

    def on_socket(ws: Any) -> None:
        sockets.append(ws.url)
        ws.on("framereceived", lambda payload: frames.append(payload) if isinstance(payload, str) else None)

    def on_response(resp: Any) -> None:
        if resp.status >= 500:
            server_errors.append(f"{resp.status} {resp.url}")
        if "/manager/" in resp.url:
            manager_answers.append(f"{resp.status} {resp.url}")

    def executed(prompt_id: str) -> dict[str, Any] | None:
        for frame in frames:
            if '"executed"' in frame:
                message = json.loads(frame)
                if message["type"] == "executed" and message["data"]["prompt_id"] == prompt_id:
                    return message["data"]
        return None

    with sync_api.sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page()
            page.on("websocket", on_socket)
            page.on("response", on_response)
            # Log in the way a user does (the printed token URL), then open ComfyUI through AiKore.
            page.goto(f"{aikore.base}/?token={TOKEN}")
            page.goto(f"{aikore.base}/app/{NAME}/", timeout=120_000)
            # The frontend is up once its API client has the websocket's client id and the canvas shows.
            page.wait_for_function("() => window.app && window.app.api && window.app.api.clientId",
                                   timeout=120_000)
            sync_api.expect(page.locator("#graph-canvas")).to_be_visible(timeout=60_000)
            queued = page.evaluate(QUEUE, WORKFLOW)
            assert queued["status"] == 200 and not queued["body"]["node_errors"], queued
            prompt_id = queued["body"]["prompt_id"]
            # The result comes over the proxied websocket as an "executed" message for this prompt.
            # (Playwright hands over websocket frames while it waits, not during a plain sleep.)
            done = wait_until(lambda: page.wait_for_timeout(200) or executed(prompt_id), timeout=120,
                              interval=0, what="ComfyUI's executed message")
            saved = done["output"]["images"][0]
            image = {**page.evaluate(FETCH_IMAGE, saved), "saved": saved}
            close_dialogs(page)
            page.get_by_role("button", name="ComfyUI Manager").click()
            # The menu's title carries the version it fetched through the proxy from the Manager.
            title = page.get_by_text(re.compile(r"ComfyUI Manager V\d"))
            sync_api.expect(title).to_be_visible(timeout=30_000)
            sync_api.expect(page.get_by_role("button", name="Custom Nodes Manager")).to_be_visible()
            version = title.inner_text().split()[-1]
        finally:
            browser.close()
    return BrowserRun(sockets, frames, server_errors, manager_answers, prompt_id, image, version)


# -- the test ------------------------------------------------------------------------------------


def test_comfyui_blueprint_installs_runs_a_workflow_restarts_fast_follows_its_ref_and_rebuilds(
    aikore_process: Callable[..., AikoreProcess], tmp_path: Path, upstreams: Upstreams
) -> None:
    assert UV.exists() or shutil.which("uv"), "uv (a test dependency in pyproject) is not installed"
    shipped = (BLUEPRINTS / "comfyui.sh").read_text()
    assert f"COMFYUI_REF=${{COMFYUI_REF:-{upstreams.release}}}" in shipped, "the snapshot is not the shipped ref"
    aikore = aikore_process(extra_args=["--token", TOKEN], env=instance_env(tmp_path, upstreams))
    aikore.token = TOKEN
    iid = api(aikore, "POST", "", {"name": NAME, "blueprint": "comfyui"})["id"]
    folder = tmp_path / "data" / "instances" / NAME
    conf, output, models = folder / "config", folder / "output", tmp_path / "data" / "models"
    app, venv = conf / "ComfyUI", conf / "env"
    assert (folder / "launch.sh").read_text() == shipped
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "launch_args.txt").write_text("# no GPU on this machine\n--cpu\n")

    # 1. The first start clones, builds the environment, installs, links the models, launches.
    first = start(aikore, iid, "start", INSTALL_DEADLINE)
    print(f"\nfirst start: installed in {first.to_launch:.0f} s, running after {first.to_running:.0f} s")
    release_commit = git(upstreams.comfyui, "rev-parse", f"{upstreams.release}^{{commit}}")
    assert git(app, "rev-parse", "HEAD") == release_commit
    manager = app / "custom_nodes" / "ComfyUI-Manager"
    assert git(manager, "rev-parse", "HEAD") == git(upstreams.manager, "rev-parse", "main")
    assert (venv / "aikore-constraints.txt").read_text().split() == list(TORCH_PINS)
    assert env_versions(venv, "torch", "torchvision") == [pin.split("==")[1] for pin in TORCH_PINS]
    # uv names every file it downloads: torch came from this machine's disk.
    assert not re.search(r"Downloading torch(vision)? \(", first.log), first.log
    for shared in ("checkpoints", "loras", "vae", "text_encoders", "diffusion_models"):
        link = app / "models" / shared
        assert link.is_symlink() and link.resolve() == (models / shared).resolve(), shared
    assert (models / "checkpoints" / "put_checkpoints_here").exists()
    launch_line = next(line for line in first.log.splitlines() if line.startswith("[aikore] launching: "))
    assert launch_line.endswith(" --cpu"), launch_line

    # 2. In Chromium through the proxy: frontend, websocket, a workflow, its image, the Manager.
    run = use_in_chromium(aikore)
    # The Manager's news pane fetches github.com, out of reach here; nothing else may fail.
    assert [e for e in run.server_errors if f"/app/{NAME}/api/manager/notice" not in e] == []
    assert any(url.startswith(f"ws://127.0.0.1:{aikore.port}/app/{NAME}/ws") for url in run.sockets), run.sockets
    executed = [json.loads(f) for f in run.frames if '"executed"' in f]
    assert [e["data"]["prompt_id"] for e in executed if e["type"] == "executed"] == [run.prompt_id]
    assert run.image["status"] == 200 and run.image["type"] == "image/png", run.image
    assert run.image["head"] == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
    saved = run.image["saved"]
    assert (output / saved["subfolder"] / saved["filename"]).stat().st_size == run.image["size"]
    assert run.manager_version.startswith("V3.")
    assert any(answer.startswith("200 ") and "/manager/" in answer for answer in run.manager_answers)

    # 3. The second start installs nothing: its own steps take seconds; the rest is ComfyUI's start.
    stop(aikore, iid)
    second = start(aikore, iid, "start", RESTART_DEADLINE)
    print(f"second start: launched after {second.to_launch:.1f} s, running after {second.to_running:.0f} s")
    assert second.to_launch < 30, second.log
    assert "reusing Python environment" in second.log
    assert second.log.count("[aikore] already installed: ") == 3, second.log
    assert second.log.count("[aikore] keeping ") == 2, second.log
    assert "Resolved " not in second.log and "cloning" not in second.log

    # 4. A ref edited in the instance's script moves the checkout; the model links stay.
    script = api(aikore, "GET", f"/{iid}/script")["content"]
    edited = script.replace(f"COMFYUI_REF:-{upstreams.release}}}", f"COMFYUI_REF:-{upstreams.next_tag}}}")
    assert edited != script
    api(aikore, "PUT", f"/{iid}/script", {"content": edited})
    moved = start(aikore, iid, "restart", RESTART_DEADLINE)
    print(f"start after the ref change: running after {moved.to_running:.0f} s")
    assert f"updating {app} to {upstreams.next_tag}" in moved.log, moved.log
    assert git(app, "rev-parse", "HEAD") == upstreams.next_commit
    assert (app / "AIKORE_NEXT.txt").exists()
    assert (app / "models" / "checkpoints").is_symlink()
    assert moved.log.count("[aikore] already installed: ") == 3, moved.log

    # 5. A rebuild makes the environment again (from uv's cache) and installs everything anew.
    (venv / "marker-from-the-old-environment").write_text("x")
    rebuilt = start(aikore, iid, "rebuild", INSTALL_DEADLINE)
    print(f"start after a rebuild: installed in {rebuilt.to_launch:.0f} s, running after {rebuilt.to_running:.0f} s")
    assert f"AIKORE_REBUILD_ENV=1: removing {venv}" in rebuilt.log, rebuilt.log
    assert "already installed" not in rebuilt.log
    assert not (venv / "marker-from-the-old-environment").exists()
    assert env_versions(venv, "torch") == [TORCH_PINS[0].split("==")[1]]
    stop(aikore, iid)
