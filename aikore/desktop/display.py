"""Private X displays: free display numbers, and an Xvfb server started on one.

An X server claims display N by creating ``/tmp/.XN-lock`` and the socket ``/tmp/.X11-unix/XN``;
either one present means the number is (or was, for a stale lock) in use, so both are checked,
and a start that still loses the race to another server moves on to the next number.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

SOCKET_DIR = Path("/tmp/.X11-unix")
LOCK_DIR = Path("/tmp")
# Far above what a desktop user's own session (:0, :1) or ssh X forwarding (:10...) takes.
FIRST_DISPLAY = 100
LAST_DISPLAY = 999
_ATTEMPTS = 20
_READY_TIMEOUT = 15.0


class DisplayError(RuntimeError):
    """No display could be started; the message says why."""


def socket_path(number: int) -> Path:
    return SOCKET_DIR / f"X{number}"


def lock_path(number: int) -> Path:
    return LOCK_DIR / f".X{number}-lock"


def display_taken(number: int) -> bool:
    """True when another X server holds (or left a lock for) display ``number``."""
    return socket_path(number).exists() or lock_path(number).exists()


def free_display(start: int = FIRST_DISPLAY) -> int:
    """The first display number from ``start`` with neither a lock file nor a socket."""
    for number in range(start, LAST_DISPLAY + 1):
        if not display_taken(number):
            return number
    raise DisplayError(f"no free X display number between :{start} and :{LAST_DISPLAY}")


def xvfb_command(xvfb: str, number: int, width: int, height: int) -> list[str]:
    """Xvfb with one screen of the given size, reachable only through its local socket."""
    return [xvfb, f":{number}", "-screen", "0", f"{width}x{height}x24", "-nolisten", "tcp", "-noreset"]


def start_xvfb(
    xvfb: str,
    width: int,
    height: int,
    *,
    start: int = FIRST_DISPLAY,
    exact: bool = False,
    env: Mapping[str, str] | None = None,
    log: int | None = None,
) -> tuple[subprocess.Popen[bytes], int]:
    """Start Xvfb on a free display and wait until its socket accepts clients.

    Retries on the next number when another server wins the race for the chosen one, unless
    ``exact``: then the display is ``start`` or nothing (an app was already told its number).
    """
    number = start
    for _ in range(1 if exact else _ATTEMPTS):
        if exact and display_taken(number):
            raise DisplayError(f"display :{number} is already taken by another X server")
        number = free_display(number)
        proc = subprocess.Popen(
            xvfb_command(xvfb, number, width, height),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=dict(env) if env is not None else None,
        )
        if _wait_ready(proc, number):
            return proc, number
        if proc.poll() is None:
            proc.kill()
            proc.wait()
            raise DisplayError(f"Xvfb on :{number} did not open its socket within {_READY_TIMEOUT:.0f}s")
        number += 1
    if exact:
        raise DisplayError(f"Xvfb could not start on :{start}; see the desktop log")
    raise DisplayError(f"Xvfb failed to start on {_ATTEMPTS} display numbers in a row; see the desktop log")


def _wait_ready(proc: subprocess.Popen[bytes], number: int) -> bool:
    """True once the display's socket exists with Xvfb alive; False if Xvfb exited first."""
    deadline = time.monotonic() + _READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if socket_path(number).exists():
            return True
        time.sleep(0.05)
    return False
