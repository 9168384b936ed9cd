"""AiKore's proxy side by side with NGINX and configurable-http-proxy, in front of the same upstreams.

    python bench/proxy_bench.py                          # the full run (about five minutes)
    python bench/proxy_bench.py --duration 2 --rounds 1  # a quick look
    python bench/proxy_bench.py --profile                # then py-spy AiKore under three of the loads

What runs: a real `aikore` process with authentication on (token mode; the load logs in once
and sends the `aikore_session` cookie on every request, as a browser with the dashboard open
does) and three instances created and started through its API: `static`, an NGINX serving a
1 KB file, a 100 MB file and the ComfyUI frontend (the fastest upstream there is, so the proxies
are what is measured); `pyapp`, a small aiohttp app answering /1k (what a Python WebUI looks like
to a proxy); and `demo`, the built-in demo app (upload sink, websocket echo). In front of the
very same instance ports, under the same /app/<name>/ paths (prefix stripped):
- NGINX (Debian nginx-light, one worker, like AiKore's one process), configured the way a WebUI
  proxy is: HTTP/1.1 keep-alive upstream pool, websocket upgrade, unbuffered request bodies, no
  body size cap;
- JupyterHub's configurable-http-proxy (bench/chp.py: npm, pinned, one Node process), routes
  added through its REST API, run with --no-include-prefix.
NGINX and CHP get the same Cookie header; they ignore it.

Workloads: 1 KB GETs under /app/ only; the browser mix (one GET /api/instances for every 20 app
requests, on the same keep-alive connections, bench/mix.lua; NGINX and CHP have no API, so theirs
goes to a file of the same size on the static upstream); 1 KB GETs from the Python upstream; a
100 MB download; a 1 GiB streamed upload (and how much each proxy's RSS grew); websocket round
trips with 64 B and 8 MiB frames; the ComfyUI frontend's first load in headless Chromium, cold,
through each proxy and direct, to the load event and until its last asset arrived (most of the
app comes by dynamic import after the load event; bench/spa.py). wrk figures are the best of
alternating runs. Prints the machine, a table with the ratios, and the issue's goals, met or not;
--profile then adds py-spy's view of AiKore during extra runs of the 1 KB /app/-only load, the mix and
the 8 MiB websocket frames (bench/pyspy_profile.py; the table's figures are taken without it).
"""

from __future__ import annotations

import argparse
import asyncio
import http.cookies
import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import chp
import psutil
import pyspy_profile
import spa
from harness import (
    MIB,
    PeakRss,
    WrkResult,
    answers,
    curl_download,
    curl_upload,
    free_port,
    http_json,
    process,
    wait_until,
    wrk,
    ws_round_trips,
)

REPO = Path(__file__).resolve().parents[1]
MIX_SCRIPT = Path(__file__).resolve().parent / "mix.lua"
SMALL = 1024
DOWNLOAD = 100 * MIB
UPLOAD = 1024 * MIB
BIG_FRAME = 8 * MIB
API_PATH = "/api/instances"
APP_REQUESTS_PER_API = 20
COOKIE = "aikore_session"

AIKORE, NGINX, CHP, DIRECT = "aikore", "nginx", "chp", "direct"
PROXIES = (AIKORE, NGINX, CHP)

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
  include /etc/nginx/mime.types;
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

# /api/ goes to the static upstream: the browser mix's stand-in for AiKore's own API.
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
    proxy_buffering off;
    location /api/ {{
      proxy_pass http://static;
      proxy_set_header Connection "";
    }}
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
    key: str
    what: str
    unit: str
    values: dict[str, float]
    note: str = ""
    ratios: bool = True  # False for rows that are ratios themselves

    def ratio(self, label: str, to: str) -> float | None:
        a, b = self.values.get(label), self.values.get(to)
        return a / b if a is not None and b else None


@dataclass
class Target:
    """Where the load goes: each proxy's base URL, the pids whose memory counts, the cookie."""

    bases: dict[str, str]
    pids: dict[str, list[int]]
    direct: str
    cookie: str
    work: Path
    profiles: list[str] = field(default_factory=list)

    @property
    def headers(self) -> list[str]:
        return [f"Cookie: {COOKIE}={self.cookie}"]


@dataclass
class Goal:
    what: str
    value: float | None
    target: float
    at_least: bool  # else: at most (or under)
    unit: str = "x"

    @property
    def met(self) -> bool:
        if self.value is None:
            return False
        return self.value >= self.target if self.at_least else self.value < self.target

    def line(self) -> str:
        sign = ">=" if self.at_least else "<"
        if self.value is None:
            return f"| {self.what} | not measured | {sign} {self.target:g}{self.unit} | - |"
        verdict = "met"
        if not self.met and self.at_least:
            verdict = f"**missed**: needs {self.target / self.value:.2f}x the figure measured"
        elif not self.met:
            verdict = f"**missed**: {self.value / self.target:.2f}x over the limit"
        return f"| {self.what} | {self.value:.2f}{self.unit} | {sign} {self.target:g}{self.unit} | {verdict} |"


def run(args: argparse.Namespace) -> tuple[list[Row], list[str]]:
    """Start everything in a temporary folder, measure, stop; the rows and any profile summaries."""
    work = Path(tempfile.mkdtemp(prefix="aikore-bench-"))
    # NGINX started as root serves files as its unprivileged worker user.
    work.chmod(0o755)
    try:
        with ExitStack() as stack:
            target = _start(args, work, stack)
            return measure(args, target), target.profiles
    finally:
        if os.environ.get("BENCH_KEEP"):
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def _prepare(work: Path, with_spa: bool) -> tuple[Path, Path]:
    """The upstream's files, the blueprints, and a sparse 1 GiB file to upload."""
    www, blueprints = work / "www", work / "blueprints"
    www.mkdir()
    (www / "1k").write_bytes(os.urandom(SMALL))
    block = os.urandom(MIB)
    with open(www / "100m", "wb") as f:
        f.write(block * (DOWNLOAD // MIB))
        f.write(block[: DOWNLOAD % MIB])
    (www / "api").mkdir()
    if with_spa:
        spa_bytes = spa.extract(www / "spa")
        print(f"  ComfyUI frontend {spa.FRONTEND_VERSION}: {spa_bytes / 1e6:.0f} MB unpacked", flush=True)
    blueprints.mkdir()
    (blueprints / "bench-static.sh").write_text(STATIC_BLUEPRINT.format(www=www))
    (work / "pyapp.py").write_text(PYTHON_APP)
    (blueprints / "bench-python.sh").write_text(PYTHON_BLUEPRINT.format(app=work / "pyapp.py"))
    (work / "tmp").mkdir()
    big = work / "upload.bin"
    with open(big, "wb") as f:
        f.truncate(UPLOAD)  # sparse: reading it costs curl nothing
    return www, blueprints


def _start(args: argparse.Namespace, work: Path, stack: ExitStack) -> Target:
    """AiKore with its three instances, then NGINX and CHP in front of the same instance ports."""
    chp.install()
    www, blueprints = _prepare(work, with_spa=args.spa_runs > 0)
    aikore_pid, base, ports, cookie = _start_aikore(work, blueprints, stack)
    # NGINX and CHP answer the mix's API request with a file of the same size from the upstream.
    (www / "api" / "instances").write_bytes(_get(f"{base}{API_PATH}", {"Cookie": f"{COOKIE}={cookie}"}))
    nginx_pids, ngx = _start_nginx(work, ports, stack)
    chp_pid, chp_base = _start_chp(work, ports, stack)
    bases = {AIKORE: base, NGINX: ngx, CHP: chp_base}
    for name, url in bases.items():
        # Every contender must answer both halves of the mix before anything is timed.
        answers(f"{url}/app/static/1k", {"Cookie": f"{COOKIE}={cookie}"})
        answers(f"{url}{API_PATH}", {"Cookie": f"{COOKIE}={cookie}"})
        print(f"  {name} ready at {url}", flush=True)
    pids = {AIKORE: [aikore_pid], NGINX: nginx_pids, CHP: [chp_pid]}
    return Target(bases, pids, direct=f"http://127.0.0.1:{ports['static']}", cookie=cookie, work=work)


def _start_aikore(work: Path, blueprints: Path, stack: ExitStack) -> tuple[int, str, dict[str, int], str]:
    """AiKore in token mode with the instances running: its pid, URL, instance ports, session cookie."""
    token, port = secrets.token_urlsafe(24), free_port()
    cmd = [sys.executable, "-m", "aikore", "--port", str(port), "--data-dir", work / "data",
           "--blueprints-dir", blueprints]
    aikore = stack.enter_context(process(cmd, work / "aikore.log", env={"AIKORE_TOKEN": token}, cwd=REPO))
    base = f"http://127.0.0.1:{port}"
    _wait_or_log(lambda: http_json(f"{base}/api/health"), "aikore to answer", work / "aikore.log", aikore)
    bearer = {"Authorization": f"Bearer {token}"}
    ports = {name: _start_instance(base, bearer, name, blueprint)
             for name, blueprint in (("static", "bench-static"), ("demo", "demo"), ("pyapp", "bench-python"))}
    return aikore.pid, base, ports, _login(base, token)


def _start_nginx(work: Path, ports: dict[str, int], stack: ExitStack) -> tuple[list[int], str]:
    """The NGINX proxy: its worker pids and URL."""
    port, conf = free_port(), work / "proxy.conf"
    conf.write_text(NGINX_PROXY.format(work=work, static_port=ports["static"], demo_port=ports["demo"],
                                       py_port=ports["pyapp"], port=port))
    nginx = stack.enter_context(process(["nginx", "-p", work, "-e", "stderr", "-c", conf], work / "nginx.log"))
    url = f"http://127.0.0.1:{port}"
    _wait_or_log(lambda: answers(f"{url}/app/static/1k"), "nginx", work / "nginx.log", nginx)
    return [child.pid for child in psutil.Process(nginx.pid).children()], url


def _start_chp(work: Path, ports: dict[str, int], stack: ExitStack) -> tuple[int, str]:
    """configurable-http-proxy with a route per instance, and /api to the upstream: its pid and URL."""
    routes = {f"/app/{name}": f"http://127.0.0.1:{port}" for name, port in ports.items()}
    routes["/api"] = f"http://127.0.0.1:{ports['static']}/api"
    port = free_port()
    pid = stack.enter_context(chp.running(port, routes, work / "chp.log"))
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: answers(f"{url}/app/static/1k"), "configurable-http-proxy")
    return pid, url


def _wait_or_log(predicate: Callable[[], object], what: str, log: Path, proc: subprocess.Popen[bytes]) -> None:
    def ready() -> object:
        if proc.poll() is not None:
            raise SystemExit(f"{what}: the process exited with {proc.returncode}")
        return predicate()

    try:
        wait_until(ready, what)
    except SystemExit:
        print(log.read_text(errors="replace")[-4000:], file=sys.stderr)
        raise


def _start_instance(base: str, bearer: dict[str, str], name: str, blueprint: str) -> int:
    created = http_json(f"{base}/api/instances", "POST", {"name": name, "blueprint": blueprint}, headers=bearer)
    http_json(f"{base}/api/instances/{created['id']}/start", "POST", headers=bearer)

    def running() -> int | None:
        data = http_json(f"{base}/api/instances/{created['id']}", headers=bearer)
        if data["status"] == "error":
            raise SystemExit(f"instance {name} failed: {data.get('status_message')}")
        return data["port"] if data["status"] == "running" else None

    return int(wait_until(running, f"instance {name} to run"))


def _login(base: str, token: str) -> str:
    """The session cookie a browser gets from the login form."""
    req = urllib.request.Request(
        f"{base}/api/auth/login", data=json.dumps({"token": token}).encode(), method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        jar = http.cookies.SimpleCookie()
        for line in resp.headers.get_all("Set-Cookie") or []:
            jar.load(line)
    if COOKIE not in jar:
        raise SystemExit(f"login at {base} set no {COOKIE} cookie")
    return jar[COOKIE].value


def _get(url: str, headers: dict[str, str]) -> bytes:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as resp:
        return bytes(resp.read())


# -- measurements ----------------------------------------------------------------------------------


def measure(args: argparse.Namespace, target: Target) -> list[Row]:
    rows = small_requests(args, target)
    rows += python_upstream(args, target)
    rows.append(download(target))
    rows += upload(target)
    rows += websockets(args, target)
    if args.spa_runs:
        rows += first_load(args, target)
    if args.profile:
        profile(args, target)
    return rows


def small_requests(args: argparse.Namespace, target: Target) -> list[Row]:
    """1 KB /app/ only and the browser mix, alternating runs of both on every proxy."""
    app_url = {name: f"{base}/app/static/1k" for name, base in target.bases.items()}
    loads: dict[str, Callable[[str, float], WrkResult]] = {
        "app": lambda name, seconds: wrk(app_url[name], seconds, args.connections, target.headers),
        "mix": lambda name, seconds: _mix(args, target, name, seconds),
    }
    best = _best_of(args, loads)
    app, mix = best["app"], best["mix"]
    note = f"wrk -c{args.connections}, best of {args.rounds}"
    mix_note = f"1 {API_PATH} per {APP_REQUESTS_PER_API} app requests; NGINX/CHP: a same-size file on the upstream"
    return [
        Row("app", "1 KB GET, /app/ only, NGINX static upstream", "req/s", _rps(app), note),
        Row("app_p99", "1 KB GET p99 latency, /app/ only", "ms", _p99(app), "lower is better"),
        Row("mix", "browser mix, NGINX static upstream", "req/s", _rps(mix), f"{mix_note}; {note}"),
        Row("mix_p99", "browser mix p99 latency", "ms", _p99(mix), "lower is better"),
        Row("mix_ratio", "browser mix / /app/ only", "x",
            {name: mix[name].rps / app[name].rps for name in PROXIES}, "each proxy's own ratio", ratios=False),
    ]


def python_upstream(args: argparse.Namespace, target: Target) -> list[Row]:
    urls = {name: f"{base}/app/pyapp/1k" for name, base in target.bases.items()}
    best = _best_of(args, {"py": lambda name, s: wrk(urls[name], s, args.connections, target.headers)})["py"]
    note = f"wrk -c{args.connections}, best of {args.rounds}"
    return [
        Row("py", "1 KB GET, Python (aiohttp) upstream", "req/s", _rps(best), note),
        Row("py_p99", "1 KB GET p99 latency, Python upstream", "ms", _p99(best), "lower is better"),
    ]


def _mix(args: argparse.Namespace, target: Target, name: str, seconds: float) -> WrkResult:
    return wrk(target.bases[name], seconds, args.connections, target.headers, MIX_SCRIPT,
               ["/app/static/1k", API_PATH, str(APP_REQUESTS_PER_API)])


def _best_of(
    args: argparse.Namespace, loads: dict[str, Callable[[str, float], WrkResult]]
) -> dict[str, dict[str, WrkResult]]:
    """Each load's best run on each proxy over alternating rounds (other work on the machine comes
    and goes: alternating and keeping the best stops a burst elsewhere from deciding a ratio)."""
    for load in loads.values():
        for name in PROXIES:
            load(name, 1)  # warm up pools, caches, CPU frequency
    best: dict[str, dict[str, WrkResult]] = {load: {} for load in loads}
    for round_ in range(args.rounds):
        order = list(loads) if round_ % 2 == 0 else list(reversed(loads))
        for name in PROXIES:
            for load in order:
                result = loads[load](name, args.duration)
                print(f"  {load:4} via {name:6} {result.rps:9,.0f} req/s  p99 {result.p99_ms:6.2f} ms", flush=True)
                if result.rps > best[load].get(name, WrkResult(0.0, 0.0)).rps:
                    best[load][name] = result
    return best


def _rps(results: dict[str, WrkResult]) -> dict[str, float]:
    return {name: r.rps for name, r in results.items()}


def _p99(results: dict[str, WrkResult]) -> dict[str, float]:
    return {name: r.p99_ms for name, r in results.items()}


def profile(args: argparse.Namespace, target: Target) -> None:
    """Extra AiKore runs under py-spy, after the table's figures: 1 KB /app/ only, the mix, 8 MiB frames."""
    out = pyspy_profile.OUT_DIR / time.strftime("%Y%m%d-%H%M%S")
    base, seconds = target.bases[AIKORE], args.duration
    ws_url = base.replace("http://", "ws://") + "/app/demo/ws"
    runs: dict[str, Callable[[], str]] = {
        "app-only": lambda: f"{wrk(f'{base}/app/static/1k', seconds, args.connections, target.headers).rps:,.0f} req/s",
        "browser-mix": lambda: f"{_mix(args, target, AIKORE, seconds).rps:,.0f} req/s",
        "ws-8mib": lambda: f"{asyncio.run(ws_round_trips(ws_url, BIG_FRAME, seconds, _cookie(target))):,.1f} msg/s",
    }
    for label, load in runs.items():
        raw = out / f"{label}.collapsed.txt"
        with pyspy_profile.recording(target.pids[AIKORE][0], seconds, raw):
            time.sleep(0.5)  # py-spy attached before the load starts
            result = load()
        text = pyspy_profile.summary(raw)
        (out / f"{label}.top.txt").write_text(text + "\n")
        target.profiles.append(f"{label} under py-spy: {result}\n{text}")
        print(f"  profiled {label}: {raw}", flush=True)


def _cookie(target: Target) -> dict[str, str]:
    return {"Cookie": f"{COOKIE}={target.cookie}"}


def download(target: Target) -> Row:
    speeds: dict[str, float] = {}
    growth = 0.0
    for name, base in target.bases.items():
        with PeakRss(target.pids[AIKORE]) as peak:
            speeds[name] = curl_download(f"{base}/app/static/100m", DOWNLOAD, target.headers)
        growth = peak.growth_mib if name == AIKORE else growth
        print(f"  100 MB download via {name}: {speeds[name]:,.0f} MB/s", flush=True)
    return Row("download", "100 MB download", "MB/s", speeds, f"best of 3; AiKore RSS +{growth:.1f} MiB")


def upload(target: Target) -> list[Row]:
    big = target.work / "upload.bin"
    speeds: dict[str, float] = {}
    growth: dict[str, float] = {}
    for _ in range(2):
        for name, base in target.bases.items():
            with PeakRss(target.pids[name]) as peak:
                speed = curl_upload(f"{base}/app/demo/upload", big, UPLOAD, target.headers)
            speeds[name] = max(speeds.get(name, 0.0), speed)
            growth[name] = max(growth.get(name, 0.0), peak.growth_mib)
            print(f"  1 GiB upload via {name}: {speed:,.0f} MB/s, RSS +{peak.growth_mib:.1f} MiB", flush=True)
    return [
        Row("upload", "1 GiB upload (demo app upstream)", "MB/s", speeds, "best of 2"),
        Row("upload_rss", "proxy RSS growth during the 1 GiB upload", "MiB", growth,
            "largest of 2; NGINX: its worker; lower is better"),
    ]


def websockets(args: argparse.Namespace, target: Target) -> list[Row]:
    rows = []
    seconds = args.ws_seconds if args.ws_seconds is not None else min(args.duration, 5.0)
    for size, label, key in ((64, "64 B", "ws64"), (BIG_FRAME, "8 MiB", "ws8m")):
        rates: dict[str, float] = {}
        for name, base in target.bases.items():
            url = base.replace("http://", "ws://") + "/app/demo/ws"
            rates[name] = asyncio.run(ws_round_trips(url, size, seconds, _cookie(target)))
            print(f"  websocket {label} round trips via {name}: {rates[name]:,.1f}/s", flush=True)
        rows.append(Row(key, f"websocket round trips, {label} frames (demo echo)", "msg/s", rates,
                        "one socket, sequential"))
    return rows


def first_load(args: argparse.Namespace, target: Target) -> list[Row]:
    urls = {name: f"{base}/app/static/spa/" for name, base in target.bases.items()}
    urls[DIRECT] = f"{target.direct}/spa/"
    loads = spa.first_loads(urls, [{"name": COOKIE, "value": target.cookie}], args.spa_runs)
    for name, result in loads.items():
        print(f"  ComfyUI via {name}: load event {_ms(result.load_ms)}; all assets {_ms(result.settled_ms)}; "
              f"{result.requests} requests, {result.bytes / 1e6:.1f} MB", flush=True)
    sample = loads[DIRECT]
    what = f"ComfyUI frontend {spa.FRONTEND_VERSION} cold first load"
    return [
        Row("spa", f"{what}, to the load event", "ms", {name: spa.best(r.load_ms) for name, r in loads.items()},
            f"best of {args.spa_runs}; medians AiKore/NGINX/CHP/direct {_medians(loads, 'load_ms')}; lower is better"),
        Row("spa_all", f"{what}, until its last asset arrived", "ms",
            {name: spa.best(r.settled_ms) for name, r in loads.items()},
            f"{sample.requests} requests, {sample.bytes / 1e6:.1f} MB; best of {args.spa_runs}; "
            f"medians {_medians(loads, 'settled_ms')}; lower is better"),
    ]


def _ms(times: list[float]) -> str:
    return f"best {spa.best(times):.0f} ms, median {spa.median(times):.0f} ({', '.join(f'{t:.0f}' for t in times)})"


def _medians(loads: dict[str, spa.Loads], attr: str) -> str:
    return " / ".join(f"{spa.median(getattr(r, attr)):.0f}" for r in loads.values())


# -- report ----------------------------------------------------------------------------------------


def table(rows: list[Row]) -> str:
    lines = [
        "| Test | Unit | AiKore | NGINX | CHP | direct | AiKore / NGINX | AiKore / CHP | Note |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        cells = [_figure(row.values.get(name), row.unit) for name in (AIKORE, NGINX, CHP, DIRECT)]
        ratios = [_times(row.ratio(AIKORE, other)) if row.ratios else "" for other in (NGINX, CHP)]
        lines.append(f"| {row.what} | {row.unit} | {' | '.join(cells)} | {' | '.join(ratios)} | {row.note} |")
    return "\n".join(lines)


def goals(rows: list[Row]) -> list[Goal]:
    """The proxy issue's goals for this benchmark, from the rows."""
    by_key = {row.key: row for row in rows}

    def ratio(key: str, to: str) -> float | None:
        return by_key[key].ratio(AIKORE, to) if key in by_key else None

    def value(key: str) -> float | None:
        return by_key[key].values.get(AIKORE) if key in by_key else None

    return [
        Goal("browser mix within 10 % of /app/ only (AiKore mix / app-only)", value("mix_ratio"), 0.9, True),
        Goal("browser mix at least 0.3x NGINX", ratio("mix", NGINX), 0.3, True),
        Goal("browser mix at least 2.5x configurable-http-proxy", ratio("mix", CHP), 2.5, True),
        Goal("ComfyUI first load within 1.2x NGINX's time", ratio("spa", NGINX), 1.2, False),
        Goal("100 MB download at least 1.0x NGINX", ratio("download", NGINX), 1.0, True),
        Goal("1 GiB upload: AiKore RSS growth under 64 MiB", value("upload_rss"), 64.0, False, " MiB"),
        Goal("8 MiB websocket frames at least NGINX's rate", ratio("ws8m", NGINX), 1.0, True),
    ]


def goals_table(rows: list[Row]) -> str:
    lines = ["| Goal | AiKore | Target | Verdict |", "|---|---:|---:|---|"]
    return "\n".join(lines + [goal.line() for goal in goals(rows)])


def _figure(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}x" if unit == "x" else f"{value:,.1f}"


def _times(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def load_line(before: tuple[float, float, float]) -> str:
    """Other work on the machine during the run, which the best-of figures try to see past."""
    after = os.getloadavg()
    return f"load average (1 min) at the start {before[0]:.1f}, at the end {after[0]:.1f}; {os.cpu_count()} CPUs"


def machine_line() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"machine: {os.cpu_count()} CPUs ({cpu}), {psutil.virtual_memory().total / 2**30:.0f} GiB, "
        f"{platform.system()} {platform.release()}; python {platform.python_version()}; "
        f"{_version(['nginx', '-v'])}; node {_version(['node', '--version'])}; "
        f"configurable-http-proxy {chp.installed_version() or chp.VERSION}; chromium {spa.chromium_version()}; "
        f"comfyui-frontend-package {spa.FRONTEND_VERSION}; aikore {_git_revision()}; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )


def _version(cmd: list[str]) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return (done.stdout + done.stderr).strip().replace("nginx version: ", "")


def _git_revision() -> str:
    try:
        rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=30).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "aikore", "proxy"],
                               capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return f"{rev}{' + uncommitted changes in aikore/ or proxy/' if dirty else ''}"


@contextmanager
def _timed(what: str) -> Iterator[None]:
    started = time.monotonic()
    yield
    print(f"{what} took {time.monotonic() - started:.0f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating wrk runs per proxy, best kept (default 3)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (default 64)")
    parser.add_argument("--ws-seconds", type=float, help="seconds per websocket test (default: --duration, at most 5)")
    parser.add_argument("--spa-runs", type=int, default=5, help="cold first loads per target, 0 skips (default 5)")
    parser.add_argument("--profile", action="store_true",
                        help=f"then py-spy AiKore during extra /app/-only, mix and 8 MiB websocket runs; "
                        f"output in {pyspy_profile.OUT_DIR}")
    args = parser.parse_args()
    for tool in ("nginx", "wrk", "curl", "node", "npm"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (scripts/test-deps and bench/deps install it)")
    if args.profile:
        pyspy_profile.pyspy()
    load_before = os.getloadavg()
    with _timed("the benchmark"):
        rows, profiles = run(args)
    print()
    print(machine_line())
    print(load_line(load_before))
    print()
    print(table(rows))
    print()
    print(goals_table(rows))
    for text in profiles:
        print()
        print(text)


if __name__ == "__main__":
    main()
