"""A heavy real single-page app's first load in headless Chromium: the ComfyUI frontend.

The frontend comes as shipped in the ``comfyui-frontend-package`` wheel from PyPI (downloaded once
into bench/.cache/), its ``static/`` folder served by the static NGINX upstream. Each load runs in a
fresh browser context (empty cache, no open connections) and is timed twice: to the ``load``
event (Navigation Timing), which this app reaches with only its first dozen files, and to the end
of the last file it fetches before the network has been quiet for a second (Resource Timing):
most of the app (about 160 JavaScript modules) comes by dynamic import after the load event, so
this second figure is where a proxy's per-request cost shows. The app's API calls and websocket
find no ComfyUI behind the static server and get 404 alike everywhere. The figures kept are the
best load (other work on the machine comes and goes); the run prints every load.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FRONTEND = "comfyui-frontend-package"
FRONTEND_VERSION = "1.58.1"
CACHE = Path(__file__).resolve().parent / ".cache"
_STATIC = "comfyui_frontend_package/static/"
# Chromium flags for this closed network, as in tests/helpers.py.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
_LOAD_EVENT = "performance.getEntriesByType('navigation')[0].loadEventStart"
_LAST_RESPONSE = "Math.max(...performance.getEntriesByType('resource').map(e => e.responseEnd), 0)"
# After the load event the app fetches most of its code (about 160 more modules) by dynamic import.
QUIET_MS = 1000
SETTLE_LIMIT_MS = 30_000


@dataclass
class Loads:
    """Cold loads of one URL: load-event times, all-assets times (ms), and what the page fetched."""

    load_ms: list[float] = field(default_factory=list)
    settled_ms: list[float] = field(default_factory=list)
    requests: int = 0
    bytes: int = 0


def best(times: list[float]) -> float:
    return min(times)


def median(times: list[float]) -> float:
    return statistics.median(times)


def wheel() -> Path:
    """The frontend wheel in bench/.cache/, downloaded with pip when missing."""
    pattern = f"comfyui_frontend_package-{FRONTEND_VERSION}-*.whl"
    found = sorted(CACHE.glob(pattern))
    if not found:
        print(f"downloading {FRONTEND}=={FRONTEND_VERSION} into {CACHE}", flush=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", str(CACHE),
             f"{FRONTEND}=={FRONTEND_VERSION}"],
            check=True,
        )
        found = sorted(CACHE.glob(pattern))
    if not found:
        raise SystemExit(f"pip download left no {pattern} in {CACHE}")
    return found[0]


def extract(dest: Path) -> int:
    """Unpack the wheel's static/ folder (index.html and assets) into ``dest``; returns its bytes."""
    total = 0
    with zipfile.ZipFile(wheel()) as zf:
        for info in zf.infolist():
            if not info.filename.startswith(_STATIC) or info.is_dir():
                continue
            target = dest / info.filename[len(_STATIC):]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(zf.read(info))
            total += info.file_size
    if not (dest / "index.html").exists():
        raise SystemExit(f"{wheel()} has no {_STATIC}index.html")
    return total


def first_loads(urls: dict[str, str], cookies: list[dict[str, str]], runs: int) -> dict[str, Loads]:
    """``runs`` cold loads of each URL, alternating between them, after one untimed round."""
    from playwright.sync_api import sync_playwright

    results = {name: Loads() for name in urls}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for round_ in range(runs + 1):
                for name, url in urls.items():
                    load = _cold_load(browser, url, cookies)
                    if round_ > 0:
                        _add(results[name], load)
        finally:
            browser.close()
    return results


def chromium_version() -> str:
    try:
        out = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return out.split()[1] if len(out.split()) > 1 else out.strip()


@dataclass(frozen=True)
class _Load:
    load_ms: float
    settled_ms: float
    requests: int
    bytes: int


def _add(loads: Loads, load: _Load) -> None:
    loads.load_ms.append(load.load_ms)
    loads.settled_ms.append(load.settled_ms)
    loads.requests, loads.bytes = load.requests, load.bytes


def _cold_load(browser: Any, url: str, cookies: list[dict[str, str]]) -> _Load:
    """One load in a new context: to the load event, then until no new request for QUIET_MS."""
    context = browser.new_context()
    try:
        if cookies:
            context.add_cookies([{**c, "url": url} for c in cookies])
        page = context.new_page()
        responses: list[tuple[str, int, int]] = []
        page.on("response", lambda r: responses.append((r.url, r.status, int(r.headers.get("content-length", 0)))))
        response = page.goto(url, wait_until="load", timeout=120_000)
        if response is None or response.status != 200:
            raise SystemExit(f"first load of {url} answered {response.status if response else 'nothing'}")
        load_ms = float(page.evaluate(_LOAD_EVENT))
        settled_ms = _settle(page)
        # The static upstream answers 200 or 404 (the app's API); anything else is the proxy's doing.
        refused = [(u, status) for u, status, _ in responses if status in (401, 403) or status >= 500]
        if refused:
            raise SystemExit(f"first load of {url} got {len(refused)} refused or failed requests: {refused[:5]}")
        return _Load(load_ms, settled_ms, len(responses), sum(size for *_, size in responses))
    finally:
        context.close()


def _settle(page: Any) -> float:
    """When the last resource arrived, once QUIET_MS pass without a new one (SETTLE_LIMIT_MS at most)."""
    count, quiet_since = -1, time.monotonic()
    deadline = quiet_since + SETTLE_LIMIT_MS / 1000
    while time.monotonic() < deadline:
        now_count = page.evaluate("performance.getEntriesByType('resource').length")
        if now_count != count:
            count, quiet_since = now_count, time.monotonic()
        elif time.monotonic() - quiet_since >= QUIET_MS / 1000:
            break
        page.wait_for_timeout(100)
    return float(page.evaluate(_LAST_RESPONSE))
