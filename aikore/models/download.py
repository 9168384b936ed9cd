"""One download's record: its states and what is known about it (persisted in downloads.json)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

# States: queued -> downloading -> verifying -> done; any active one -> failed | cancelled.
QUEUED, DOWNLOADING, VERIFYING, DONE, FAILED, CANCELLED = (
    "queued",
    "downloading",
    "verifying",
    "done",
    "failed",
    "cancelled",
)
ACTIVE_STATES = frozenset({QUEUED, DOWNLOADING, VERIFYING})


@dataclass
class Download:
    id: str
    url: str
    kind: str
    filename: str | None
    source: str
    secret: str | None = None
    sha256: str | None = None
    name_given: bool = False
    state: str = QUEUED
    total: int | None = None
    received: int = 0
    error: str | None = None
    created: float = 0.0
    finished: float | None = None
    speed: float = 0.0

    @property
    def eta(self) -> float | None:
        if self.state != DOWNLOADING or not self.total or self.speed <= 0:
            return None
        return max(0.0, (self.total - self.received) / self.speed)

    def persisted(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.pop("speed")
        return data
