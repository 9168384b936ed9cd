"""Test helpers: polling with deadlines, ports, and a real ``aikore`` process."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import inspect
import itertools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pytest

T = TypeVar("T")
REPO = Path(__file__).resolve().parent.parent
_FIRST_PAUSE = 0.001
_DASHBOARD_LINE = re.compile(r"^AiKore dashboard: http://\S+:(\d+)/$", re.MULTILINE)
# Debian's Chromium, driven by Playwright; headless as root, with the background connections this
# closed network refuses turned off.
CHROMIUM = os.environ.get("AIKORE_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def launch_chromium(playwright: Any) -> Any:
    """A headless Chromium browser from a Playwright instance (skips where Chromium is missing)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium (scripts/test-deps does)")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def wait_until(
    predicate: Callable[[], T | None], timeout: float = 30.0, *, what: str = "", interval: float = 0.05
) -> T:
    """Poll ``predicate`` until it returns something truthy, and return that.

    An exception from ``predicate`` means "not yet" (connection refused...); at the deadline the
    failure names ``what``, the last value and the last exception. ``pytest.fail()`` inside
    ``predicate`` stops at once: it is not an ``Exception``.
    """
    attempts = _Attempts(timeout, what or repr(predicate), interval)
    while True:
        try:
            if result := predicate():
                return result
            attempts.value = result
        except Exception as exc:
            attempts.error = exc
        time.sleep(attempts.pause())


async def until(
    predicate: Callable[[], Awaitable[T | None] | T | None],
    within: float = 30.0,
    *,
    what: str = "",
    interval: float = 0.05,
) -> T:
    """``wait_until`` in an event loop: ``predicate`` may be sync or async; ``within`` is the timeout."""
    attempts = _Attempts(within, what or repr(predicate), interval)
    while True:
        try:
            result = predicate()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return result  # type: ignore[return-value]
            attempts.value = result
        except Exception as exc:
            attempts.error = exc
        await asyncio.sleep(attempts.pause())


@dataclass
class _Attempts:
    """One wait's deadline and what it saw; pauses start at 1 ms and double up to ``interval``."""

    timeout: float
    what: str
    interval: float
    value: Any = None
    error: Exception | None = None
    _deadline: float = field(init=False)
    _pause: float = field(init=False)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout
        self._pause = min(_FIRST_PAUSE, self.interval)

    def pause(self) -> float:
        """Seconds to wait before the next try; past the deadline, the failure instead."""
        left = self._deadline - time.monotonic()
        if left <= 0:
            error = f"; last error {self.error!r}" if self.error is not None else ""
            raise AssertionError(
                f"timed out after {self.timeout:g}s waiting for {self.what}; last value {self.value!r}{error}"
            )
        pause, self._pause = min(self._pause, left), min(self._pause * 2, self.interval)
        return pause


def free_port() -> int:
    """A port that was free a moment ago (bound, then closed): another program may take it meanwhile.

    Only for a program that must be told its port before it binds and cannot bind port 0 and
    report it; where a conflict shows, prefer ``on_a_free_port``, which tries another.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def on_a_free_port(open_on: Callable[[int], Awaitable[object]], attempts: int = 5) -> int:
    """Await ``open_on(port)`` on a free port, again on another while it raises "address in use".

    For in-process listeners that must be told their port; returns the port they got.
    """
    for _ in range(attempts - 1):
        port = free_port()
        try:
            await open_on(port)
            return port
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
    port = free_port()
    await open_on(port)
    return port


@contextlib.contextmanager
def refused_port() -> Iterator[int]:
    """A port nothing answers on: held by a bound socket that never listens, so no one else can."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield int(held.getsockname()[1])


def listening_port(proc: subprocess.Popen[Any], timeout: float = 30.0) -> int:
    """The TCP port a child told ``--port 0`` listens on, as the OS reports it (psutil)."""

    def bound() -> int | None:
        if proc.poll() is not None:
            pytest.fail(f"process {proc.pid} exited with {proc.returncode} before it listened")
        ports = [c.laddr.port for c in psutil.Process(proc.pid).net_connections("tcp") if c.status == "LISTEN"]
        return ports[0] if ports else None

    return wait_until(bound, timeout, what=f"process {proc.pid} to listen")


@dataclass
class Response:
    status: int
    body: bytes
    headers: Mapping[str, str]

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class AikoreProcess:
    """A real ``aikore`` process on loopback with its own data dir.

    With ``port`` 0 it binds a port the OS chooses; ``start`` reads it from the dashboard line.
    """

    data_dir: Path
    port: int = 0
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    token: str | None = None
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: bool = True) -> AikoreProcess:
        """Spawn it; with ``wait``, return once /api/health answers (a chosen port is known even without)."""
        self.log_path = self._new_log()
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        cmd = [
            sys.executable,
            "-m",
            "aikore",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            *self.extra_args,
        ]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.data_dir.parent)
        if self.port == 0:
            self.port = wait_until(self._announced_port, 30, what="aikore to print its dashboard URL")
        if wait:
            wait_until(self._healthy, 30, what=f"aikore on port {self.port} to answer /api/health")
        return self

    def _new_log(self) -> Path:
        """A log file of its own for each start (several runs on one data dir happen)."""
        names = (self.data_dir.parent / f"aikore-{self.data_dir.name}-{n}.log" for n in itertools.count(1))
        return next(path for path in names if not path.exists())

    def _announced_port(self) -> int | None:
        self._fail_if_exited()
        found = _DASHBOARD_LINE.search(self.output())
        return int(found.group(1)) if found else None

    def _healthy(self) -> bool:
        self._fail_if_exited()
        try:
            return self.request("GET", "/api/health").status == 200
        except (urllib.error.URLError, ConnectionError):
            return False

    def _fail_if_exited(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            pytest.fail(f"aikore exited with {self.proc.returncode}:\n{self.output()}")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        raw: bytes | None = None,
        auth: bool = True,
        timeout: float = 30,
    ) -> Response:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        hdrs = dict(headers or {})
        if auth and self.token and "Authorization" not in hdrs:
            hdrs["Authorization"] = f"Bearer {self.token}"
        if data is not None and "Content-Type" not in hdrs:
            hdrs["Content-Type"] = "application/json"
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return Response(resp.status, resp.read(), dict(resp.headers))
        except urllib.error.HTTPError as err:
            return Response(err.code, err.read(), dict(err.headers))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def close(self) -> None:
        """A fixture's teardown: a graceful stop (its instances stopped with it), else a kill."""
        try:
            self.stop(timeout=60)
        except Exception:
            self.kill()


# A committer identity of the tests' own: git refuses to commit without one, and the machine's
# configuration (signing, hooks) must not change what a test does.
GIT_ID = ["-c", "user.name=AiKore Test", "-c", "user.email=test@example.invalid", "-c", "commit.gpgsign=false"]


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo`` (a test's own repositories); its output, stripped."""
    return subprocess.run(["git", *GIT_ID, "-C", str(repo), *args], check=True, capture_output=True,
                          text=True).stdout.strip()
