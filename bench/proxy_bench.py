"""AiKore's proxy side by side with NGINX, in front of the same upstreams, on the same machine.

    python bench/proxy_bench.py                    # the full run (about two minutes)
    python bench/proxy_bench.py --duration 5       # shorter wrk runs

What runs: a real `aikore` process (no auth) with three instances created and started through
its API: `static`, an NGINX serving a 1 KB and a 100 MB file (the fastest upstream there is, so
the proxies are what is measured); `pyapp`, a small aiohttp app answering /1k (what a Python
WebUI looks like to a proxy); and `demo`, the built-in demo app (upload sink, websocket echo).
In front of the very same instance ports: an NGINX (Debian nginx-light, one worker, like AiKore's
one process) configured the way a WebUI proxy is (HTTP/1.1 keep-alive pool, websocket upgrade,
unbuffered request bodies, no body size cap), and the `proxy` package alone in its own process
(same handler AiKore mounts, without AiKore's middleware), which shows what the proxy itself
costs apart from the auth gate in front of it.

Measured against each: 1 KB GETs with wrk (requests/s and p99 latency, best of alternating
runs), 100 MB downloads with curl (MB/s, best of three), a 1 GB streamed upload with curl (MB/s,
and how much AiKore's RSS grew), websocket round trips with 64 B and 8 MB frames (messages/s).
Prints a table with the figures and the ratios to NGINX.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import psutil
from aiohttp import web

REPO = Path(__file__).resolve().parents[1]
SMALL = 1024
DOWNLOAD = 100 * 1024 * 1024
UPLOAD = 1024 * 1024 * 1024
BIG_FRAME = 8 * 1024 * 1024

# The upstream instance: an NGINX serving static files, launched as an ordinary blueprint.
STATIC_BLUEPRINT = """#!/usr/bin/env bash
### AIKORE-METADATA-START ###
# aikore.name: Bench static files
# aikore.proxy: strip-prefix
# aikore.health: /1k
### AIKORE-METADATA-END ###
set -euo pipefail
mkdir -p "$PWD/tmp"
cat > "$PWD/upstream.conf" <<EOF
worker_processes 1;
daemon off;
pid $PWD/upstream.pid;
error_log stderr warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 10000000;
  client_body_temp_path $PWD/tmp;
  proxy_temp_path $PWD/tmp;
  fastcgi_temp_path $PWD/tmp;
  uwsgi_temp_path $PWD/tmp;
  scgi_temp_path $PWD/tmp;
  default_type application/octet-stream;
  server {{
    listen 127.0.0.1:$WEBUI_PORT;
    root {www};
  }}
}}
EOF
exec nginx -p "$PWD" -e stderr -c "$PWD/upstream.conf"
"""

# A typical WebUI is a Python server: this one answers /1k like the static upstream does.
PYTHON_APP = """\
import os

import uvloop
from aiohttp import web

BODY = os.urandom(1024)


async def small(request: web.Request) -> web.Response:
    return web.Response(body=BODY, content_type="application/octet-stream")


app = web.Application()
app.router.add_get("/1k", small)
uvloop.install()
web.run_app(app, host=os.environ["WEBUI_HOST"], port=int(os.environ["WEBUI_PORT"]), access_log=None, print=None)
"""

PYTHON_BLUEPRINT = """#!/usr/bin/env bash
### AIKORE-METADATA-START ###
# aikore.name: Bench Python app
# aikore.proxy: strip-prefix
# aikore.health: /1k
### AIKORE-METADATA-END ###
exec "$AIKORE_PYTHON" {app}
"""

NGINX_PROXY = """worker_processes 1;
daemon off;
pid {work}/proxy.pid;
error_log stderr warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_max_body_size 0;
  keepalive_requests 10000000;
  client_body_temp_path {work}/tmp;
  proxy_temp_path {work}/tmp;
  fastcgi_temp_path {work}/tmp;
  uwsgi_temp_path {work}/tmp;
  scgi_temp_path {work}/tmp;
  map $http_upgrade $connection_upgrade {{ default upgrade; '' ''; }}
  upstream static {{ server 127.0.0.1:{static_port}; keepalive 128; }}
  upstream demo {{ server 127.0.0.1:{demo_port}; keepalive 128; }}
  upstream pyapp {{ server 127.0.0.1:{py_port}; keepalive 128; }}
  server {{
    listen 127.0.0.1:{port};
    proxy_http_version 1.1;
    proxy_set_header Host $host;
    proxy_set_header X-Forwarded-For $remote_addr;
    proxy_read_timeout 1h;
    proxy_request_buffering off;
    location /app/static/ {{
      proxy_pass http://static/;
      proxy_set_header Connection "";
    }}
    location /app/pyapp/ {{
      proxy_pass http://pyapp/;
      proxy_set_header Connection "";
    }}
    location /app/demo/ {{
      proxy_pass http://demo/;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
    }}
  }}
}}
"""


@dataclass
class Row:
    what: str
    unit: str
    # Contender -> figure: "aikore" (the real server), "alone" (the proxy package with no
    # AiKore middleware in front), "nginx".
    values: dict[str, float]
    note: str = ""

    def ratio(self, label: str) -> float:
        return self.values[label] / self.values["nginx"] if self.values.get("nginx") else 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
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


def api(base: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


@contextmanager
def process(cmd: list[str], log: Path, **kwargs: Any) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **kwargs)
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


def make_files(www: Path) -> None:
    www.mkdir(parents=True)
    (www / "1k").write_bytes(os.urandom(SMALL))
    block = os.urandom(1024 * 1024)
    with open(www / "100m", "wb") as f:
        for _ in range(DOWNLOAD // len(block)):
            f.write(block)


def start_instance(base: str, name: str, blueprint: str) -> int:
    created = api(base, "POST", "/api/instances", {"name": name, "blueprint": blueprint})
    api(base, "POST", f"/api/instances/{created['id']}/start")

    def running() -> int | None:
        data = api(base, "GET", f"/api/instances/{created['id']}")
        if data["status"] == "error":
            raise SystemExit(f"instance {name} failed: {data.get('status_message')}")
        return data["port"] if data["status"] == "running" else None

    return int(wait_until(running, f"instance {name} to run"))


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk(url: str, duration: float, connections: int) -> tuple[float, float]:
    """Requests/s and p99 latency (ms) from one wrk run."""
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration:g}s", "--latency", url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    if "Non-2xx" in out or "Socket errors" in out:
        print(out, file=sys.stderr)
    return rps, float(value) * _UNITS[unit]


def curl_download(url: str, tries: int = 3) -> float:
    """Best MB/s of a few downloads (curl discards the body)."""
    speeds = []
    for _ in range(tries):
        out = subprocess.run(
            ["curl", "-sS", "-o", "/dev/null", "-w", "%{speed_download} %{size_download}", url],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        assert int(float(out[1])) == DOWNLOAD, f"short download: {out}"
        speeds.append(float(out[0]) / 1e6)
    return max(speeds)


def curl_upload(url: str, path: Path) -> float:
    """MB/s of one streamed upload (curl -T reads the file as it sends)."""
    out = subprocess.run(
        [
            "curl",
            "-sS",
            "-X",
            "POST",
            "-T",
            str(path),
            "-H",
            "Content-Type: application/octet-stream",
            "-H",
            "Expect:",
            "-w",
            "\n%{speed_upload}",
            url,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    answer = json.loads(out[0])
    assert answer["bytes"] == UPLOAD, f"upstream got {answer['bytes']} bytes"
    return float(out[-1]) / 1e6


class PeakRss:
    """Samples a process's RSS in a thread; peak - start is what a transfer cost it."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.start = self.peak = self.proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.start) / 1e6


async def ws_round_trips(url: str, size: int, seconds: float) -> float:
    """Sequential echo round trips per second over one websocket."""
    payload = os.urandom(size)
    async with aiohttp.ClientSession() as session, session.ws_connect(url, max_msg_size=0) as ws:
        await ws.send_bytes(payload)
        await ws.receive()
        count, started = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - started) < seconds:
            await ws.send_bytes(payload)
            msg = await ws.receive()
            assert len(msg.data) == size
            count += 1
    return count / elapsed


def run(args: argparse.Namespace) -> list[Row]:
    work = Path(tempfile.mkdtemp(prefix="aikore-bench-"))
    # NGINX started as root serves files as its unprivileged worker user.
    work.chmod(0o755)
    try:
        return _run(args, work)
    finally:
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(work, ignore_errors=True)


def _run(args: argparse.Namespace, work: Path) -> list[Row]:
    www, blueprints = work / "www", work / "blueprints"
    make_files(www)
    blueprints.mkdir()
    (blueprints / "bench-static.sh").write_text(STATIC_BLUEPRINT.format(www=www))
    (work / "pyapp.py").write_text(PYTHON_APP)
    (blueprints / "bench-python.sh").write_text(PYTHON_BLUEPRINT.format(app=work / "pyapp.py"))
    (work / "tmp").mkdir()
    big = work / "upload.bin"
    with open(big, "wb") as f:
        f.truncate(UPLOAD)  # sparse: reading it costs curl nothing

    aikore_port, nginx_port = free_port(), free_port()
    aikore_cmd = [
        sys.executable,
        "-m",
        "aikore",
        "--no-auth",
        "--port",
        str(aikore_port),
        "--data-dir",
        str(work / "data"),
        "--blueprints-dir",
        str(blueprints),
    ]
    with process(aikore_cmd, work / "aikore.log", cwd=REPO) as aikore:
        base = f"http://127.0.0.1:{aikore_port}"
        wait_until(lambda: api(base, "GET", "/api/health"), "aikore to answer")
        static_port = start_instance(base, "static", "bench-static")
        demo_port = start_instance(base, "demo", "demo")
        py_port = start_instance(base, "pyapp", "bench-python")
        conf = work / "proxy.conf"
        conf.write_text(
            NGINX_PROXY.format(
                work=work, static_port=static_port, demo_port=demo_port, py_port=py_port, port=nginx_port
            )
        )
        nginx_cmd = ["nginx", "-p", str(work), "-e", "stderr", "-c", str(conf)]
        with process(nginx_cmd, work / "nginx.log"):
            ngx = f"http://127.0.0.1:{nginx_port}"
            try:
                wait_until(lambda: urllib.request.urlopen(f"{ngx}/app/static/1k", timeout=5).status == 200, "nginx")
            except SystemExit:
                print(work, file=sys.stderr)
                print((work / "nginx.log").read_text(errors="replace"), file=sys.stderr)
                raise
            alone_port = free_port()
            routes = [f"static={static_port}", f"pyapp={py_port}", f"demo={demo_port}"]
            alone_cmd = [sys.executable, __file__, "--serve-alone", str(alone_port)]
            alone_cmd += [arg for route in routes for arg in ("--route", route)]
            with process(alone_cmd, work / "alone.log", cwd=REPO):
                alone = f"http://127.0.0.1:{alone_port}"
                wait_until(lambda: urllib.request.urlopen(f"{alone}/app/static/1k", timeout=5).status == 200, "alone")
                return _measure(args, {"aikore": base, "alone": alone, "nginx": ngx}, aikore.pid, big)


def _measure(args: argparse.Namespace, bases: dict[str, str], aikore_pid: int, big: Path) -> list[Row]:
    rows: list[Row] = []
    for app, label in (("static", "NGINX static upstream"), ("pyapp", "Python (aiohttp) upstream")):
        rps, p99 = _small(args, {name: f"{base}/app/{app}/1k" for name, base in bases.items()})
        rows.append(Row(f"1 KB GET, {label}", "req/s", rps, note=f"wrk -c{args.connections}, best of {args.rounds}"))
        rows.append(Row(f"1 KB GET p99 latency, {label}", "ms", p99, note="lower is better"))

    down: dict[str, float] = {}
    rss = 0.0
    for name, base in bases.items():
        with PeakRss(aikore_pid) as peak:
            down[name] = curl_download(f"{base}/app/static/100m")
        rss = peak.growth_mb if name == "aikore" else rss
        print(f"  100 MB download via {name}: {down[name]:.0f} MB/s", flush=True)
    rows.append(Row("100 MB download", "MB/s", down, note=f"best of 3; AiKore RSS +{rss:.1f} MB"))

    up: dict[str, float] = {}
    rss = 0.0
    for _ in range(2):
        for name, base in bases.items():
            with PeakRss(aikore_pid) as peak:
                speed = curl_upload(f"{base}/app/demo/upload", big)
            up[name] = max(up.get(name, 0.0), speed)
            rss = max(rss, peak.growth_mb) if name == "aikore" else rss
            print(f"  1 GB upload via {name}: {speed:.0f} MB/s", flush=True)
    rows.append(Row("1 GB upload", "MB/s", up, note=f"best of 2; AiKore RSS +{rss:.1f} MB at most"))

    for size, size_label in ((64, "64 B"), (BIG_FRAME, "8 MB")):
        rates: dict[str, float] = {}
        for name, base in bases.items():
            url = base.replace("http://", "ws://") + "/app/demo/ws"
            rates[name] = asyncio.run(ws_round_trips(url, size, args.ws_seconds))
            print(f"  websocket {size_label} round trips via {name}: {rates[name]:.1f}/s", flush=True)
        rows.append(Row(f"websocket round trips, {size_label} frames", "msg/s", rates, note="one socket, sequential"))
    return rows


def _small(args: argparse.Namespace, urls: dict[str, str]) -> tuple[dict[str, float], dict[str, float]]:
    """Best requests/s (and that run's p99) of each contender over alternating wrk runs."""
    # Other work on the machine comes and goes: alternate the contenders and keep each one's
    # best run, so a burst of load elsewhere does not decide the ratio.
    rps: dict[str, float] = {}
    p99: dict[str, float] = {}
    for url in urls.values():
        wrk(url, 2, args.connections)  # warm up pools, caches, CPU frequency
    for _ in range(args.rounds):
        for name, url in urls.items():
            rate, latency = wrk(url, args.duration, args.connections)
            print(f"  {name} {url}: {rate:.0f} req/s, p99 {latency:.2f} ms", flush=True)
            if rate > rps.get(name, 0.0):
                rps[name], p99[name] = rate, latency
    return rps, p99


def table(rows: list[Row]) -> str:
    lines = [
        "| Test | Unit | AiKore | proxy package alone | NGINX | AiKore / NGINX | alone / NGINX | Note |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        v = row.values
        lines.append(
            f"| {row.what} | {row.unit} | {v['aikore']:,.1f} | {v['alone']:,.1f} | {v['nginx']:,.1f} "
            f"| {row.ratio('aikore'):.2f}x | {row.ratio('alone'):.2f}x | {row.note} |"
        )
    return "\n".join(lines)


async def serve_alone(port: int, routes: list[str]) -> None:
    """The proxy package on its own: same routes, no AiKore middleware (auth gate, error JSON)."""
    import proxy

    table_ = proxy.RouteTable()
    for spec in routes:
        name, target = spec.split("=")
        table_.set(name, port=int(target), state="running")
    session, pool = proxy.client_session(), proxy.UpstreamPool()
    app = web.Application()
    proxy.add_app_routes(app.router, proxy.path_handler(table_, session, pool=pool))
    runner = web.AppRunner(app, access_log=None, **proxy.SERVER_HANDLER_ARGS)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await runner.cleanup()
    await pool.close()
    await session.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument("--ws-seconds", type=float, default=5.0, help="seconds per websocket test")
    parser.add_argument("--rounds", type=int, default=3, help="alternating wrk runs per proxy (best kept)")
    parser.add_argument("--serve-alone", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--route", action="append", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_alone:
        import uvloop

        uvloop.run(serve_alone(args.serve_alone, args.route))
        return
    for tool in ("nginx", "wrk", "curl"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (apt-get install nginx-light wrk curl)")
    print(
        f"machine: {os.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GiB; "
        f"python {sys.version.split()[0]}",
        flush=True,
    )
    rows = run(args)
    print()
    print(table(rows))


if __name__ == "__main__":
    main()
