"""The desktop session of one persistent instance, run as its own process.

``python -m aikore.desktop.session --state FILE ...`` starts Xvfb on a free display, openbox,
the Selkies server and (once the app answers) a browser in app mode pointed at it, keeps each of
them running (a dead one is restarted with back-off), and on SIGTERM stops them all and exits.

Running the session as one process of its own is what lets it outlive a crash of AiKore exactly
like the app does: AiKore records this process (pid + create time) and re-adopts it, and the
browser keeps being restarted while no AiKore is there to notice. Its state file tells AiKore
(and tests) which display and processes it holds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import psutil

from aikore.desktop.display import DisplayError, lock_path, socket_path, start_xvfb

_POLL = 0.2
_PROBE_TIMEOUT = 2.0
_MAX_BACKOFF = 10.0
# Children get this long to exit on SIGTERM before they are killed.
_STOP_GRACE = 5.0
_BROWSER_LOG_MAX = 10 * 1024 * 1024
# Every program of a session carries this variable (value: the session's state file) so the ones
# that detach from the tree (Chromium's crash handlers re-parent to init) are still found and stopped.
MARKER = "AIKORE_DESKTOP_SESSION"


@dataclass
class Child:
    """One program of the session, restarted with growing back-off while the session runs."""

    name: str
    spawn: Callable[[], subprocess.Popen[bytes]]
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0
    started_at: float = field(default=0.0)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        self.proc = self.spawn()
        self.started_at = time.monotonic()

    def schedule_restart(self) -> None:
        # A child that ran a while gets restarted at once; one that keeps dying waits longer each time.
        ran = time.monotonic() - self.started_at
        self.restarts = 0 if ran > 30 else self.restarts + 1
        self.next_start = time.monotonic() + min(_MAX_BACKOFF, 0.5 * 2**self.restarts)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m aikore.desktop.session", description=__doc__)
    p.add_argument("--state", type=Path, required=True, help="JSON file this session keeps its state in")
    p.add_argument("--home", type=Path, required=True, help="HOME for the desktop's programs")
    p.add_argument("--port", type=int, required=True, help="loopback port for the Selkies server")
    p.add_argument("--width", type=int, default=1920)
    p.add_argument("--height", type=int, default=1080)
    p.add_argument("--fps", type=int, default=30)
    p.add_argument("--display-from", type=int, default=100, help="first display number to try")
    p.add_argument("--display", type=int, default=None, help="this display number or none (the app was told it)")
    p.add_argument("--xvfb", default="Xvfb")
    p.add_argument("--window-manager", default="openbox")
    p.add_argument("--browser", default="", help="browser to open --url in; empty for a desktop app")
    p.add_argument("--url", default="", help="the app's internal URL the browser opens")
    p.add_argument("--ready-url", default="", help="the browser starts once this answers (default --url)")
    return p


def selkies_command(python: str, port: int, width: int, height: int, fps: int) -> list[str]:
    """Selkies behind AiKore: loopback only, no own login, a fixed screen, nothing but video and input."""
    return [
        python, "-m", "selkies",
        "--addr", "127.0.0.1", "--port", str(port), "--mode", "websockets",
        # AiKore's auth gate sits in front; a second login would only get in the way.
        "--enable-basic-auth=false",
        # Xvfb refuses the RandR modes Selkies adds when it resizes, so the size is fixed to the screen's.
        "--manual-resolution=true", "--manual-width", str(width), "--manual-height", str(height),
        "--enable-resize=false",
        # Start at the configured rate; the client may lower it but not go above it.
        "--framerate", f"{fps},1-{fps}",
        # No sound server, cameras, gamepads or printers in this session; sharing links bypass AiKore.
        "--audio-enabled=false", "--microphone-enabled=false", "--webcam-enabled=false",
        "--gamepad-enabled=false", "--printing-enabled=false",
        "--enable-sharing=false", "--enable-collab=false", "--enable-dual-mode=false",
        "--ui-sidebar-show-apps=false",
    ]  # fmt: skip


def browser_command(
    browser: str, url: str, profile: Path, width: int, height: int, *, sandbox: bool = True
) -> list[str]:
    """A kiosk browser window filling the screen, quiet on a machine with no network."""
    command = [
        browser,
        "--kiosk",
        f"--app={url}",
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
        "--window-position=0,0",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-session-crashed-bubble",
        "--noerrdialogs",
        "--password-store=basic",
    ]
    # Chromium refuses to run as root with its sandbox on.
    if not sandbox or os.geteuid() == 0:
        command.append("--no-sandbox")
    return command


class Session:
    """The running desktop: its display, its children, and the state file describing them."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.stopping = False
        self.display: int | None = None
        self.xvfb: subprocess.Popen[bytes] | None = None
        self.children: list[Child] = []
        self.browser: Child | None = None
        self.app_ready = False
        self.browser_sandbox = True
        self.browser_log_mark = 0
        self.runtime_dir = _runtime_dir(args.state)
        args.home.mkdir(parents=True, exist_ok=True)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            DISPLAY=f":{self.display}",
            HOME=str(self.args.home),
            XDG_RUNTIME_DIR=str(self.runtime_dir),
            XDG_CONFIG_HOME=str(self.args.home / ".config"),
            XDG_CACHE_HOME=str(self.args.home / ".cache"),
        )
        env[MARKER] = str(self.args.state)
        # Selkies reads a basic-auth password from these; none must reach it.
        for name in ("PASSWORD", "PASSWD", "SELKIES_BASIC_AUTH_PASSWORD"):
            env.pop(name, None)
        return env

    def _spawn(self, command: Sequence[str], log: int | None = None) -> subprocess.Popen[bytes]:
        return subprocess.Popen(list(command), stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=self.env())

    def start_display(self) -> None:
        a = self.args
        exact = a.display is not None or self.display is not None
        start = self.display if self.display is not None else a.display if a.display is not None else a.display_from
        self.xvfb, self.display = start_xvfb(a.xvfb, a.width, a.height, start=start, exact=exact)
        print(f"desktop: Xvfb on :{self.display} ({a.width}x{a.height})", flush=True)

    def setup_children(self) -> None:
        a = self.args
        self.children = [
            Child("window-manager", lambda: self._spawn([a.window_manager, "--sm-disable"])),
            Child("selkies", lambda: self._spawn(selkies_command(sys.executable, a.port, a.width, a.height, a.fps))),
        ]
        if a.browser:
            profile = a.home / "browser-profile"
            # The browser logs harmless D-Bus complaints (there is no session bus); a file of their own,
            # started afresh (one backup kept) whenever a restart finds it over the limit.
            browser_log = a.state.parent / "browser.log"

            def spawn_browser() -> subprocess.Popen[bytes]:
                if not self.browser_sandbox or _sandbox_refused(browser_log, self.browser_log_mark):
                    if self.browser_sandbox:
                        print(
                            "desktop: Chromium's sandbox cannot work here (no user namespaces, as in many "
                            "containers); running the browser with --no-sandbox",
                            flush=True,
                        )
                    self.browser_sandbox = False
                if browser_log.exists() and browser_log.stat().st_size > _BROWSER_LOG_MAX:
                    os.replace(browser_log, browser_log.with_name("browser.log.1"))
                self.browser_log_mark = browser_log.stat().st_size if browser_log.exists() else 0
                command = browser_command(a.browser, a.url, profile, a.width, a.height, sandbox=self.browser_sandbox)
                with open(browser_log, "ab") as log:
                    return self._spawn(command, log.fileno())

            self.browser = Child("browser", spawn_browser)

    def write_state(self) -> None:
        processes = {"xvfb": self.xvfb} | {c.name: c.proc for c in self._all_children()}
        state = {
            "pid": os.getpid(),
            "display": self.display,
            "port": self.args.port,
            "width": self.args.width,
            "height": self.args.height,
            "fps": self.args.fps,
            "app_ready": self.app_ready,
            "processes": {name: p.pid for name, p in processes.items() if p is not None and p.poll() is None},
        }
        tmp = self.args.state.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1))
        os.replace(tmp, self.args.state)

    def _all_children(self) -> list[Child]:
        return [*self.children, *([self.browser] if self.browser else [])]

    def run(self) -> int:
        # A session killed outright (SIGKILL) leaves its programs behind; the new one ends them first.
        terminate(marked_processes(str(self.args.state)))
        self.start_display()
        self.setup_children()
        for child in self.children:
            child.start()
        self.write_state()
        while not self.stopping:
            changed = self._keep_display()
            changed |= self._keep(self.children)
            if self.browser is not None:
                changed |= self._keep_browser()
            if changed:
                self.write_state()
            time.sleep(_POLL)
        return 0

    def _keep_display(self) -> bool:
        assert self.xvfb is not None
        if self.xvfb.poll() is None:
            return False
        print(f"desktop: Xvfb exited with {self.xvfb.returncode}; restarting it", flush=True)
        _remove_stale_lock(self.display, self.xvfb.pid)
        self.start_display()
        return True

    def _keep(self, children: Sequence[Child]) -> bool:
        changed = False
        now = time.monotonic()
        for child in children:
            if child.alive():
                continue
            if child.proc is not None:
                print(f"desktop: {child.name} exited with {child.proc.returncode}; restarting it", flush=True)
                child.proc = None
                child.schedule_restart()
                changed = True
            if now >= child.next_start:
                child.start()
                changed = True
        return changed

    def _keep_browser(self) -> bool:
        if not self.app_ready:
            if not _answers(self.args.ready_url or self.args.url):
                return False
            self.app_ready = True
            print(f"desktop: the app answers; opening {self.args.url}", flush=True)
        assert self.browser is not None
        return self._keep([self.browser])

    def stop(self) -> None:
        """Stop every child (and anything they started), then the display; kill what lingers."""
        children = [c.proc for c in reversed(self._all_children()) if c.proc is not None]
        if self.xvfb is not None:
            children.append(self.xvfb)
        tree = _with_descendants([p.pid for p in children])
        tree += [p for p in marked_processes(str(self.args.state)) if p.pid not in {t.pid for t in tree}]
        terminate(tree)
        for proc in children:
            proc.poll()
        if self.xvfb is not None:
            _remove_stale_lock(self.display, self.xvfb.pid)
        shutil.rmtree(self.runtime_dir, ignore_errors=True)
        self.args.state.unlink(missing_ok=True)


def _runtime_dir(state: Path) -> Path:
    """A private XDG_RUNTIME_DIR for the session's sockets, the same one for every run of it.

    Under /tmp because Unix socket paths must stay under 108 bytes and instance folders can be
    deeper; named after the session so a run that was killed outright leaves nothing that piles up.
    """
    path = Path(tempfile.gettempdir()) / f"aikore-desktop-{hashlib.sha256(str(state).encode()).hexdigest()[:12]}"
    shutil.rmtree(path, ignore_errors=True)
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        # Not ours to remove (another user's, or a link): a fresh private name instead.
        return Path(tempfile.mkdtemp(prefix="aikore-desktop-"))
    return path


def _sandbox_refused(log: Path, since: int) -> bool:
    """True when the browser's last run ended because its sandbox could not start."""
    try:
        with log.open("rb") as f:
            f.seek(since)
            return b"No usable sandbox" in f.read(256 * 1024)
    except OSError:
        return False


def _answers(url: str) -> bool:
    """True once the URL gives any HTTP answer below 500 (a login page counts as up)."""
    try:
        with urllib.request.urlopen(url, timeout=_PROBE_TIMEOUT) as response:
            return int(response.status) < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except (OSError, ValueError):
        return False


def _with_descendants(pids: Sequence[int]) -> list[psutil.Process]:
    found: dict[int, psutil.Process] = {}
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            found[pid] = proc
            for child in proc.children(recursive=True):
                found[child.pid] = child
        except psutil.NoSuchProcess:
            continue
    return list(found.values())


def marked_processes(marker: str) -> list[psutil.Process]:
    """Every process (but this one) whose environment names the given session."""
    found = []
    for proc in psutil.process_iter():
        if proc.pid == os.getpid():
            continue
        try:
            if proc.environ().get(MARKER) == marker:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def terminate(procs: Sequence[psutil.Process], grace: float = _STOP_GRACE) -> None:
    """SIGTERM, wait up to ``grace`` seconds, then SIGKILL whatever is left."""
    for proc in procs:
        _signal(proc, signal.SIGTERM)
    _, alive = psutil.wait_procs(procs, timeout=grace)
    for proc in alive:
        _signal(proc, signal.SIGKILL)
    psutil.wait_procs(alive, timeout=grace)


def _signal(proc: psutil.Process, sig: signal.Signals) -> None:
    try:
        proc.send_signal(sig)
    except psutil.NoSuchProcess:
        pass


def _remove_stale_lock(display: int | None, xvfb_pid: int) -> None:
    """A killed Xvfb leaves its lock and socket; remove them only if that Xvfb wrote the lock."""
    if display is None:
        return
    lock = lock_path(display)
    try:
        owner = int(lock.read_text().strip())
    except (OSError, ValueError):
        return
    if owner == xvfb_pid:
        lock.unlink(missing_ok=True)
        socket_path(display).unlink(missing_ok=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Set here so that this process and every program it starts (Xvfb too) carry the marker.
    os.environ[MARKER] = str(args.state)
    session = Session(args)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        session.stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        return session.run()
    except DisplayError as exc:
        print(f"desktop: {exc}", file=sys.stderr, flush=True)
        return 2
    finally:
        session.stop()


if __name__ == "__main__":
    sys.exit(main())
