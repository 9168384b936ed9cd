"""SQLite store (aiosqlite, WAL) with versioned migrations via ``PRAGMA user_version``."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite

from aikore.store.instance import FIELDS, Instance

# Each entry moves the schema from version i to i+1. Never edit a released entry: append one.
MIGRATIONS: Sequence[str] = (
    # 1: the original AiKore schema (what an upgraded install may already have on disk).
    """
    CREATE TABLE instances (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE,
        base_blueprint TEXT NOT NULL,
        gpu_ids TEXT,
        autostart BOOLEAN NOT NULL DEFAULT 0,
        persistent_mode BOOLEAN NOT NULL DEFAULT 0,
        status TEXT NOT NULL DEFAULT 'stopped',
        pid INTEGER
    );
    """,
    # 2: ports, exit code and timestamps.
    """
    ALTER TABLE instances ADD COLUMN port INTEGER;
    ALTER TABLE instances ADD COLUMN public_port INTEGER;
    ALTER TABLE instances ADD COLUMN persistent_port INTEGER;
    ALTER TABLE instances ADD COLUMN exit_code INTEGER;
    ALTER TABLE instances ADD COLUMN created_at TEXT NOT NULL DEFAULT '';
    ALTER TABLE instances ADD COLUMN updated_at TEXT NOT NULL DEFAULT '';
    UPDATE instances SET created_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now'),
                         updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now'),
                         gpu_ids = COALESCE(gpu_ids, '');
    CREATE UNIQUE INDEX instances_public_port ON instances(public_port) WHERE public_port IS NOT NULL;
    """,
    # 3: supervision: restart policy, process identity for re-adoption, error detail.
    """
    ALTER TABLE instances ADD COLUMN restart_policy TEXT NOT NULL DEFAULT 'never';
    ALTER TABLE instances ADD COLUMN pid_create_time REAL;
    ALTER TABLE instances ADD COLUMN status_message TEXT;
    """,
    # 4: every process group of a running instance (main + companions), for re-adoption.
    """
    CREATE TABLE process_groups (
        instance_id INTEGER NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
        role TEXT NOT NULL,
        pid INTEGER NOT NULL,
        create_time REAL NOT NULL,
        launch_id TEXT NOT NULL,
        port INTEGER,
        PRIMARY KEY (instance_id, role)
    );
    """,
    # 5: persistent mode: the desktop's screen size and frame rate, per instance (defaults suit 1080p).
    """
    ALTER TABLE instances ADD COLUMN desktop_resolution TEXT NOT NULL DEFAULT '1920x1080';
    ALTER TABLE instances ADD COLUMN desktop_fps INTEGER NOT NULL DEFAULT 30;
    """,
)

# API field name → column name, where they differ (the column keeps the original design's name).
_COLUMN = {"blueprint": "base_blueprint"}
_BOOLEAN = {"autostart", "persistent_mode"}


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Store:
    """All database access. One connection; aiosqlite serialises statements on its thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: aiosqlite.Connection | None = None

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = await aiosqlite.connect(self.path, isolation_level=None)
        self._db.row_factory = aiosqlite.Row
        await self._db.execute("PRAGMA journal_mode=WAL")
        await self._db.execute("PRAGMA foreign_keys=ON")
        await self._db.execute("PRAGMA busy_timeout=5000")
        await self.migrate()

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("store is not open")
        return self._db

    async def schema_version(self) -> int:
        async with self.db.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def migrate(self) -> None:
        """Apply every pending migration, each in its own transaction with its version bump."""
        version = await self.schema_version()
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            statements = [s.strip() for s in script.split(";") if s.strip()]
            await self.db.execute("BEGIN IMMEDIATE")
            try:
                for statement in statements:
                    await self.db.execute(statement)
                await self.db.execute(f"PRAGMA user_version = {number}")
            except BaseException:
                await self.db.execute("ROLLBACK")
                raise
            await self.db.execute("COMMIT")

    async def list_instances(self) -> list[Instance]:
        async with self.db.execute("SELECT * FROM instances ORDER BY id") as cur:
            return [_to_instance(row) async for row in cur]

    async def get_instance(self, instance_id: int) -> Instance | None:
        async with self.db.execute("SELECT * FROM instances WHERE id = ?", (instance_id,)) as cur:
            row = await cur.fetchone()
        return _to_instance(row) if row else None

    async def get_instance_by_name(self, name: str) -> Instance | None:
        async with self.db.execute("SELECT * FROM instances WHERE name = ?", (name,)) as cur:
            row = await cur.fetchone()
        return _to_instance(row) if row else None

    async def insert_instance(self, **fields: Any) -> Instance:
        """Insert one row; raises ``sqlite3.IntegrityError`` on a unique clash (name, public port)."""
        stamp = now_iso()
        fields = {"created_at": stamp, "updated_at": stamp, **fields}
        cols = [_column(k) for k in fields]
        sql = f"INSERT INTO instances ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        async with self.db.execute(sql, [_value(k, v) for k, v in fields.items()]) as cur:
            new_id = cur.lastrowid
        instance = await self.get_instance(int(new_id or 0))
        assert instance is not None
        return instance

    async def update_instance(self, instance: Instance, **fields: Any) -> Instance:
        """Write ``fields`` of one row; returns ``instance`` with them applied (no re-read).

        Only the named columns are written, so two writers changing different fields of one
        instance (a state change and a settings PATCH) never undo each other.
        """
        fields = {**fields, "updated_at": now_iso()}
        assignments = ", ".join(f"{_column(k)} = ?" for k in fields)
        values = [_value(k, v) for k, v in fields.items()]
        await self.db.execute(f"UPDATE instances SET {assignments} WHERE id = ?", (*values, instance.id))
        return instance.replace(**fields)

    async def delete_instance(self, instance_id: int) -> None:
        await self.db.execute("DELETE FROM instances WHERE id = ?", (instance_id,))


def _column(field_name: str) -> str:
    if field_name not in FIELDS or field_name == "id":
        raise ValueError(f"unknown instance field {field_name!r}")
    return _COLUMN.get(field_name, field_name)


def _value(field_name: str, value: Any) -> Any:
    return int(bool(value)) if field_name in _BOOLEAN else value


def _to_instance(row: sqlite3.Row) -> Instance:
    data = {name: row[_COLUMN.get(name, name)] for name in FIELDS}
    for name in _BOOLEAN:
        data[name] = bool(data[name])
    data["gpu_ids"] = data["gpu_ids"] or ""
    return Instance(**data)
