"""The image built and run for real: what the README's "Docker" section promises, in a container.

The session fixtures (conftest.py, engine.py) start dockerd if none runs and build the shipped
Dockerfile, on a locally bootstrapped Debian of the same release where the public base cannot be
pulled. Containers run on host networking with AiKore on a free port, as a non-default PUID/PGID,
with /config in a folder of the test; every container is removed afterwards, the cached layers stay.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import psutil
import pytest
from playwright.sync_api import sync_playwright

from tests.desktop.conftest import desktop_browser_hits
from tests.docker.container import Container, run_container, start_demo
from tests.docker.engine import Docker
from tests.helpers import AikoreProcess, launch_chromium, wait_until

# A cold build (base bootstrap, Debian packages, PyPI) runs in the first test's setup.
pytestmark = pytest.mark.timeout(1500)

PUID, PGID = 4321, 4322
USER_IDS = {"PUID": str(PUID), "PGID": str(PGID), "TZ": "Europe/Paris"}
# What `docker stop` waits before it kills; AiKore stops its instances well inside it.
GRACE = 30

# Lit samples of every canvas on the page (the Selkies client draws the desktop's video there).
_LIT_PIXELS = """() => [...document.querySelectorAll('canvas')].map(c => {
  if (!c.width || !c.height) return 0;
  const copy = document.createElement('canvas');
  copy.width = c.width; copy.height = c.height;
  const ctx = copy.getContext('2d');
  ctx.drawImage(c, 0, 0);
  const px = ctx.getImageData(0, 0, c.width, c.height).data;
  let lit = 0;
  for (let i = 0; i < px.length; i += 4 * 101) if (px[i] | px[i + 1] | px[i + 2]) lit++;
  return lit;
})"""


@pytest.fixture(scope="module")
def container(docker: Docker, image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    """One container for the tests that only use it (the stop test makes its own)."""
    running = run_container(docker, image, tmp_path_factory.mktemp("container") / "config", USER_IDS)
    yield running
    docker.remove(running.name)


def _instance(api: AikoreProcess, instance_id: int) -> dict:
    answer = api.request("GET", f"/api/instances/{instance_id}")
    assert answer.status == 200, answer.body
    return answer.json()


async def _use_demo(base: str, token: str, name: str) -> None:
    """Page, SSE and websocket of a demo instance through the container's port."""
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as browser:
        async with browser.get(f"{base}/app/{name}/") as resp:
            assert resp.status == 200 and name in await resp.text()
        async with browser.get(f"{base}/app/{name}/events", params={"count": "3", "interval": "0.2"}) as resp:
            assert resp.headers["Content-Type"].startswith("text/event-stream")
            assert b"tick 1" in await resp.content.readuntil(b"\n\n")
            assert b"tick 3" in await resp.read()
        async with browser.ws_connect(f"{base}/app/{name}/ws".replace("http://", "ws://")) as ws:
            frame = os.urandom(256 * 1024)
            await ws.send_bytes(frame)
            assert (await ws.receive(timeout=30)).data == frame
            await ws.send_str("through the container")
            assert (await ws.receive(timeout=30)).data == "through the container"


def test_container_prints_the_login_url_and_turns_healthy(container: Container) -> None:
    url, token = container.login_url()
    assert url == f"http://127.0.0.1:{container.port}/?token={token}" and len(token) == 64
    api = container.api()
    assert api.request("GET", "/api/health", auth=False).status == 200
    assert api.request("GET", "/api/instances", auth=False).status == 401
    # The image's own HEALTHCHECK (curl on /api/health every 10 s).
    wait_until(lambda: container.inspect("{{.State.Health.Status}}") == "healthy", timeout=90, interval=1,
               what="docker to report the container healthy")


def test_demo_instance_is_used_through_the_container_port(container: Container) -> None:
    api = container.api()
    start_demo(api, "web")
    asyncio.run(_use_demo(api.base, api.token or "", "web"))


def test_aikore_and_its_instances_run_as_puid_pgid_in_tz_and_own_config(container: Container) -> None:
    api = container.api()
    start_demo(api, "owned")
    processes = container.processes()
    assert {p.role for p in processes} == {"supervisor", "aikore", "instance"}
    # s6-svscan and s6-supervise stay root (they start AiKore again after a crash); all else is the user's.
    for proc in processes:
        if proc.role != "supervisor":
            assert (proc.uid, proc.gid) == (PUID, PGID), proc
    assert container.exec("date", "+%Z").strip() in ("CET", "CEST")
    paths = [container.config, *container.config.rglob("*")]
    for must in ("aikore.db", "token", "instances/owned/launch.sh", "instances/owned/logs/instance.log"):
        assert container.config / must in paths, must
    for path in paths:
        with contextlib.suppress(FileNotFoundError):  # a journal file may come and go meanwhile
            st = path.lstat()
            assert (st.st_uid, st.st_gid) == (PUID, PGID), path


def test_aikore_killed_in_the_container_is_restarted_and_readopts_its_instance(container: Container) -> None:
    api = container.api()
    before = start_demo(api, "keep")
    log = container.config / "instances" / "keep" / "logs" / "instance.log"
    size = log.stat().st_size
    old = container.aikore_pid()
    container.exec("kill", "-KILL", str(old))

    wait_until(lambda: container.aikore_pid() not in (0, old), timeout=30, what="s6 to start AiKore again")
    container.wait_healthy()
    assert "re-adopted pid" in container.logs()
    after = _instance(api, before["id"])
    assert after["status"] == "running" and after["pid"] == before["pid"] and after["port"] == before["port"]
    # The same app keeps serving and logging, through the new AiKore.
    asyncio.run(_use_demo(api.base, api.token or "", "keep"))
    wait_until(lambda: log.stat().st_size > size, timeout=30, what="the instance log to grow")


def test_persistent_demo_desktop_streams_from_inside_the_container(container: Container) -> None:
    api = container.api()
    body = {"persistent_mode": True, "desktop_resolution": "1280x720", "desktop_fps": 10}
    running = start_demo(api, "desk", **body)
    log = container.config / "instances" / "desk" / "logs" / "instance.log"
    # Chromium inside the container's desktop loads the app.
    wait_until(lambda: desktop_browser_hits(log), timeout=90, what="the in-desktop browser to load the app")

    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page()
            page.goto(f"{api.base}{running['desktop_url']}?token={api.token}")

            def lit() -> int:
                return max(page.evaluate(_LIT_PIXELS) or [0])

            assert wait_until(lit, timeout=90, interval=0.5, what="the desktop's video on the client's canvas")
        finally:
            browser.close()

    assert api.request("POST", f"/api/instances/{running['id']}/stop").status == 200
    wait_until(lambda: _instance(api, running["id"])["status"] == "stopped", timeout=60, what="the desktop to stop")
    desktop = ("Xvfb", "openbox", "chromium", "selkies", "aikore.desktop")
    assert not [p for p in container.processes() if any(word in p.args for word in desktop)]


def test_docker_stop_stops_every_instance_and_a_new_container_keeps_the_data(
    docker: Docker, image: str, tmp_path: Path
) -> None:
    config = tmp_path / "config"
    first = run_container(docker, image, config, USER_IDS)
    api = first.api()
    token = api.token
    one = start_demo(api, "one")
    auto = start_demo(api, "auto", autostart=True)
    script = api.request("GET", f"/api/instances/{one['id']}/script").json()["content"]
    edited = script + "# edited before the upgrade\n"
    assert api.request("PUT", f"/api/instances/{one['id']}/script", {"content": edited}).status == 200
    instance_pids = [p.pid for p in first.processes() if p.role == "instance"]
    assert instance_pids

    started = time.monotonic()
    docker("stop", "-t", str(GRACE), first.name, timeout=GRACE + 60)
    took = time.monotonic() - started
    # Docker would have killed it (exit 137) at the end of the grace period.
    assert took < GRACE and first.inspect("{{.State.ExitCode}}") == "0", (took, first.logs())
    assert "supervision tree stopped" in first.logs()
    assert not [pid for pid in instance_pids if psutil.pid_exists(pid)]

    docker("rm", first.name)
    second = run_container(docker, image, config, USER_IDS)
    assert second.login_url()[1] == token
    api = second.api()
    # AiKore recorded the stop itself: stopped, not "gone when AiKore started".
    kept = _instance(api, one["id"])
    assert (kept["name"], kept["status"], kept["status_message"]) == ("one", "stopped", None)
    wait_until(lambda: _instance(api, auto["id"])["status"] == "running", timeout=60, what="autostart in the new one")
    assert api.request("GET", f"/api/instances/{one['id']}/script").json()["content"] == edited
    assert api.request("POST", f"/api/instances/{one['id']}/start").status == 200
    wait_until(lambda: _instance(api, one["id"])["status"] == "running", timeout=60, what="one to run again")
    assert api.request("GET", "/app/one/").status == 200
    docker.remove(second.name)
