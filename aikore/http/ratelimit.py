"""Login attempt limiting: too many wrong tokens or passwords from one address → 429 for a while.

A sliding window per client address. Only failures count, so a person who logs in correctly is
never slowed down; while an address is over the limit every credential check from it is refused,
right or wrong, so the answer cannot be used as an oracle.
"""

from __future__ import annotations

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
        failures = self._recent(address)
        if failures is None or len(failures) < self.limit:
            return None
        wait = failures[0] + self.window - self._clock()
        return max(1, math.ceil(wait))

    def fail(self, address: str) -> None:
        """Record one failed attempt from ``address``."""
        failures = self._recent(address)
        if failures is None:
            failures = self._failures[address] = deque()
        failures.append(self._clock())
        # Only the newest `limit` matter for the decision; older ones would just pile up.
        while len(failures) > self.limit:
            failures.popleft()
        self._failures.move_to_end(address)
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
