"""Process identities kept for re-adoption: one row per process group of an instance.

The instance row holds the main pid for the API; this table (migration 4) holds every group of a
launch - the main one and companions such as a persistent-mode desktop - with what is needed to
recognise it after an AiKore crash: pid, create time, and the launch marker its processes carry.
"""

from __future__ import annotations

from dataclasses import dataclass

from aikore.store.db import Store

MAIN = "main"


@dataclass(frozen=True)
class GroupRecord:
    instance_id: int
    role: str
    pid: int
    create_time: float
    launch_id: str
    port: int | None = None


class GroupRecords:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def save(self, record: GroupRecord) -> None:
        await self.store.db.execute(
            "INSERT OR REPLACE INTO process_groups (instance_id, role, pid, create_time, launch_id, port) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (record.instance_id, record.role, record.pid, record.create_time, record.launch_id, record.port),
        )

    async def load(self, instance_id: int) -> dict[str, GroupRecord]:
        sql = "SELECT instance_id, role, pid, create_time, launch_id, port FROM process_groups WHERE instance_id = ?"
        async with self.store.db.execute(sql, (instance_id,)) as cur:
            return {row[1]: GroupRecord(*row) async for row in cur}

    async def clear(self, instance_id: int) -> None:
        await self.store.db.execute("DELETE FROM process_groups WHERE instance_id = ?", (instance_id,))
