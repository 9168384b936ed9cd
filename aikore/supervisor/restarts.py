"""Pending ``on-failure`` restarts, kept in the database so an AiKore crash does not lose them.

A failure that schedules a restart stores when it is due (wall-clock time) and which attempt it
is; the next AiKore schedules what is still pending for instances that are still in ``error``
with the policy on. A start, stop, delete or a change of policy removes the row.
"""

from __future__ import annotations

from dataclasses import dataclass

from aikore.store.db import Store


@dataclass(frozen=True)
class PendingRestart:
    instance_id: int
    due: float
    attempt: int


class PendingRestarts:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def save(self, pending: PendingRestart) -> None:
        await self.store.write(
            "INSERT OR REPLACE INTO pending_restarts (instance_id, due, attempt) VALUES (?, ?, ?)",
            (pending.instance_id, pending.due, pending.attempt),
        )

    async def load(self) -> dict[int, PendingRestart]:
        async with self.store.db.execute("SELECT instance_id, due, attempt FROM pending_restarts") as cur:
            return {row[0]: PendingRestart(*row) async for row in cur}

    async def remove(self, instance_id: int) -> None:
        await self.store.write("DELETE FROM pending_restarts WHERE instance_id = ?", (instance_id,))
