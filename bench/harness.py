"""What every benchmark contender is driven with: processes, polling, wrk, curl, websockets, RSS.

Shared by proxy_bench.py and its helpers; nothing here knows which proxy it is talking to.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import psutil

MIB = 1024 * 1024
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    """Poll ``predicate`` until it returns something truthy; exit naming ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = predicate()
            if result:
                return result
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"timed out waiting for {what}")


def answers(url: str, headers: dict[str, str] | None = None) -> bool:
    """True once ``url`` answers 200."""
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return resp.status == 200


def http_json(url: str, method: str = "GET", body: Any = None, headers: dict[str, str] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    for name, value in (headers or {}).items():
        req.add_header(name, value)
    with urllib.request.urlopen(req, timeout=30) as resp:
        raw = resp.read()
        return json.loads(raw) if raw else None


@contextmanager
def process(
    cmd: Sequence[str | Path], log: Path, env: dict[str, str] | None = None, **kwargs: Any
) -> Iterator[subprocess.Popen[bytes]]:
    """A child in its own session, its output appended to ``log``; SIGTERM (then SIGKILL) on exit."""
    full_env = {**os.environ, **(env or {})}
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [str(c) for c in cmd], stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=full_env, **kwargs
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@dataclass(frozen=True)
class WrkResult:
    rps: float
    p99_ms: float


def wrk(
    url: str,
    duration: float,
    connections: int,
    headers: Sequence[str] = (),
    script: Path | None = None,
    script_args: Sequence[str] = (),
) -> WrkResult:
    """Requests/s and p99 latency of one wrk run; any non-2xx answer stops the benchmark."""
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{duration:g}s", "--latency"]
    for header in headers:
        cmd += ["-H", header]
    if script is not None:
        cmd += ["-s", str(script)]
    cmd.append(url)
    if script_args:
        cmd += ["--", *script_args]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    if "Non-2xx" in out:
        # A refused cookie or a missing route answers fast: such a figure would be meaningless.
        raise SystemExit(f"wrk got error answers from {url}:\n{out}")
    if "Socket errors" in out:
        print(out, file=sys.stderr)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    return WrkResult(rps, float(value) * _UNITS[unit])


def curl_download(url: str, size: int, headers: Sequence[str] = (), tries: int = 3) -> float:
    """Best MB/s of a few downloads (curl discards the body)."""
    speeds = []
    for _ in range(tries):
        cmd = ["curl", "-sS", "-o", "/dev/null", "-w", "%{speed_download} %{size_download}"]
        for header in headers:
            cmd += ["-H", header]
        out = subprocess.run([*cmd, url], check=True, capture_output=True, text=True).stdout.split()
        assert int(float(out[1])) == size, f"short download from {url}: {out}"
        speeds.append(float(out[0]) / 1e6)
    return max(speeds)


def curl_upload(url: str, path: Path, size: int, headers: Sequence[str] = ()) -> float:
    """MB/s of one streamed upload (curl -T reads the file as it sends)."""
    cmd = ["curl", "-sS", "-X", "POST", "-T", str(path), "-H", "Content-Type: application/octet-stream",
           "-H", "Expect:"]
    for header in headers:
        cmd += ["-H", header]
    out = subprocess.run(
        [*cmd, "-w", "\n%{speed_upload}", url], check=True, capture_output=True, text=True
    ).stdout.splitlines()
    answer = json.loads(out[0])
    assert answer["bytes"] == size, f"upstream got {answer['bytes']} bytes through {url}"
    return float(out[-1]) / 1e6


async def ws_round_trips(url: str, size: int, seconds: float, headers: dict[str, str] | None = None) -> float:
    """Sequential echo round trips per second over one websocket."""
    payload = os.urandom(size)
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(url, max_msg_size=0, headers=headers or {}) as ws,
    ):
        await ws.send_bytes(payload)
        await ws.receive()
        count, started = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - started) < seconds:
            await ws.send_bytes(payload)
            msg = await ws.receive()
            assert len(msg.data) == size, f"websocket echo answered {msg.type} {len(msg.data or b'')} bytes"
            count += 1
    return count / elapsed


class PeakRss:
    """Samples the summed RSS of some processes in a thread; peak - start is what a transfer cost."""

    def __init__(self, pids: Sequence[int]) -> None:
        self.procs = [psutil.Process(pid) for pid in pids]
        self.start = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _rss(self) -> int:
        return sum(proc.memory_info().rss for proc in self.procs)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self._rss())

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth_mib(self) -> float:
        return (self.peak - self.start) / MIB
