"""Internal port reservations: the port each instance's app listens on (its ``WEBUI_PORT``).

A port is handed out only when it is neither reserved by this AiKore (another instance, even one
still starting and not yet listening) nor bound by anything else on 127.0.0.1 right now. The
bind check alone would race with other programs, so an instance that still finds its port taken
fails its readiness or exits, and the supervisor's next start picks another one.
"""

from __future__ import annotations

import random
import socket
from collections.abc import Iterable

# Below the usual ephemeral range (32768+) so outgoing connections do not take them, and away
# from the public pool (19001-19020) and the well-known WebUI defaults (7860, 8188...).
INTERNAL_PORTS = range(20000, 30000)
_ATTEMPTS = 200


class PortsExhausted(RuntimeError):
    """No free internal port could be found."""


class PortPool:
    """Reservations held in-process; ``reserve`` also checks the port is free on 127.0.0.1."""

    def __init__(self, candidates: range = INTERNAL_PORTS, exclude: Iterable[int] = ()) -> None:
        self.candidates = candidates
        self._exclude = set(exclude)
        self._reserved: dict[int, str] = {}

    def reserved(self) -> dict[int, str]:
        return dict(self._reserved)

    def reserve(self, owner: str, preferred: int | None = None) -> int:
        """A free port for ``owner``; ``preferred`` (e.g. a re-adopted instance's) is tried first."""
        tried: set[int] = set()
        if preferred is not None:
            tried.add(preferred)
            if self._take(preferred, owner):
                return preferred
        for _ in range(_ATTEMPTS):
            port = random.choice(self.candidates)
            if port in tried:
                continue
            tried.add(port)
            if self._take(port, owner):
                return port
        raise PortsExhausted(f"no free internal port in {self.candidates.start}-{self.candidates.stop - 1}")

    def adopt(self, port: int, owner: str) -> None:
        """Record a port a re-adopted process already listens on (it is in use, by design)."""
        self._reserved[port] = owner

    def release(self, port: int | None, owner: str | None = None) -> None:
        if port is not None and (owner is None or self._reserved.get(port) == owner):
            self._reserved.pop(port, None)

    def _take(self, port: int, owner: str) -> bool:
        if port in self._reserved or port in self._exclude or not is_free(port):
            return False
        self._reserved[port] = owner
        return True


def is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether nothing listens on ``host:port`` now.

    SO_REUSEADDR as servers use it: a port with only TIME_WAIT leftovers counts as free, one with a
    listener (on this address or the wildcard) does not.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True
