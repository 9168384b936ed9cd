"""Process identities kept for re-adoption: one row per process group of an instance.

The instance row holds the main pid for the API; this table holds every group of a launch - the
main one and companions such as a persistent-mode desktop - with what is needed to recognise it
after an AiKore crash: pid, create time, the launch marker its processes carry and the cgroup that
holds them. A launch is recorded before it is spawned (pid and create time still empty), so a
crash at any point leaves a record that leads the next AiKore to what was started.
"""

from __future__ import annotations

from dataclasses import dataclass

from aikore.store.db import Store

MAIN = "main"


@dataclass(frozen=True)
class GroupRecord:
    instance_id: int
    role: str
    pid: int | None
    create_time: float | None
    launch_id: str
    port: int | None = None
    cgroup: str | None = None

    @property
    def spawned(self) -> bool:
        """Whether the process was started and its identity stored (else only the launch is known)."""
        return self.pid is not None and self.create_time is not None


_COLUMNS = "instance_id, role, pid, create_time, launch_id, port, cgroup"


class GroupRecords:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def save(self, record: GroupRecord) -> None:
        await self.store.write(
            f"INSERT OR REPLACE INTO process_groups ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                record.instance_id, record.role, record.pid, record.create_time, record.launch_id, record.port,
                record.cgroup,
            ),
        )

    async def load(self, instance_id: int) -> dict[str, GroupRecord]:
        sql = f"SELECT {_COLUMNS} FROM process_groups WHERE instance_id = ?"
        async with self.store.db.execute(sql, (instance_id,)) as cur:
            return {row[1]: GroupRecord(*row) async for row in cur}

    async def instance_ids(self) -> set[int]:
        """Instances with any recorded launch."""
        async with self.store.db.execute("SELECT DISTINCT instance_id FROM process_groups") as cur:
            return {row[0] async for row in cur}

    async def cgroups(self) -> set[str]:
        async with self.store.db.execute("SELECT cgroup FROM process_groups WHERE cgroup IS NOT NULL") as cur:
            return {row[0] async for row in cur}

    async def clear(self, instance_id: int) -> None:
        await self.store.write("DELETE FROM process_groups WHERE instance_id = ?", (instance_id,))
