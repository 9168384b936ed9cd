"""Login attempt limiting: too many wrong tokens or passwords from one address → 429 for a while.

A sliding window per client: an IPv4 address, or an IPv6 /64 (one household or server gets a
whole /64, so counting single IPv6 addresses would count nothing). Only failures count, so a
person who logs in correctly is never slowed down; while a client is over the limit every
credential check from it is refused, right or wrong, so the answer cannot be used as an oracle.

A check that takes time (the password's scrypt) is counted before it runs (``acquire``) and
taken back if it was right (``release``): however many arrive at once, no more than the limit
are ever checked per window.
"""

from __future__ import annotations

import functools
import ipaddress
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable

FAILURES_PER_WINDOW = 10
WINDOW_SECONDS = 60.0
# Bounds memory when a botnet sprays from many addresses; the oldest entries go first.
MAX_TRACKED = 10_000


class LoginLimiter:
    """Counts failed credential checks per client address within a sliding window."""

    def __init__(
        self,
        limit: int = FAILURES_PER_WINDOW,
        window: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, address: str) -> int | None:
        """Seconds until ``address`` may try again, or None when it may try now."""
        failures = self._recent(client_key(address))
        if failures is None or len(failures) < self.limit:
            return None
        wait = failures[0] + self.window - self._clock()
        return max(1, math.ceil(wait))

    def acquire(self, address: str) -> int | None:
        """Count one attempt from ``address`` before checking it: None, or the seconds to wait instead.

        Counted as a failure at once, so attempts that arrive together cannot all slip under the
        limit while the first ones are being checked; ``release`` takes back one that was right.
        """
        wait = self.retry_after(address)
        if wait is None:
            self.fail(address)
        return wait

    def release(self, address: str) -> None:
        """The attempt ``acquire`` counted was right: it does not count against ``address``."""
        failures = self._recent(client_key(address))
        if failures:
            failures.pop()

    def fail(self, address: str) -> None:
        """Record one failed attempt from ``address``."""
        key = client_key(address)
        failures = self._recent(key)
        if failures is None:
            failures = self._failures[key] = deque()
        failures.append(self._clock())
        # Only the newest `limit` matter for the decision; older ones would just pile up.
        while len(failures) > self.limit:
            failures.popleft()
        self._failures.move_to_end(key)
        while len(self._failures) > MAX_TRACKED:
            self._failures.popitem(last=False)

    def _recent(self, address: str) -> deque[float] | None:
        failures = self._failures.get(address)
        if failures is None:
            return None
        horizon = self._clock() - self.window
        while failures and failures[0] <= horizon:
            failures.popleft()
        if not failures:
            del self._failures[address]
            return None
        return failures


@functools.lru_cache(maxsize=4096)
def client_key(address: str) -> str:
    """What one client's failures are counted under: its IPv4 address, or its IPv6 /64."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 4:
        return address
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.IPv6Network((ip.packed, 64), strict=False))
