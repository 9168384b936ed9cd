"""SQLite store (aiosqlite, WAL) with versioned migrations via ``PRAGMA user_version``.

Opening refuses a database it cannot trust (``faults.Unusable``): one SQLite cannot read, one that
is empty or missing while ``instances/`` holds instance folders (a lost or truncated file, not a
fresh install), one that cannot be written. Those checks read the file through a read-only
connection, so a refused file is left exactly as it was. Each start then copies the database with
SQLite's backup API into ``<data>/backups/`` (before any migration runs), keeping the last few.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite

from aikore.store import faults
from aikore.store.instance import FIELDS, Instance
from aikore.store.private import private_database

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
    # 6: a launch is recorded before it is spawned (pid and create time come after), with the
    # cgroup that holds it; pending on-failure restarts survive an AiKore crash.
    """
    CREATE TABLE process_groups_v6 (
        instance_id INTEGER NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
        role TEXT NOT NULL,
        pid INTEGER,
        create_time REAL,
        launch_id TEXT NOT NULL,
        port INTEGER,
        cgroup TEXT,
        PRIMARY KEY (instance_id, role)
    );
    INSERT INTO process_groups_v6 (instance_id, role, pid, create_time, launch_id, port)
        SELECT instance_id, role, pid, create_time, launch_id, port FROM process_groups;
    DROP TABLE process_groups;
    ALTER TABLE process_groups_v6 RENAME TO process_groups;
    CREATE TABLE pending_restarts (
        instance_id INTEGER PRIMARY KEY REFERENCES instances(id) ON DELETE CASCADE,
        due REAL NOT NULL,
        attempt INTEGER NOT NULL
    );
    """,
    # 7: satellites: an instance that runs its parent's app and environment. No ON DELETE: the
    # database itself refuses to delete a parent that still has satellites.
    """
    ALTER TABLE instances ADD COLUMN parent_id INTEGER REFERENCES instances(id);
    """,
    # 8: where an instance runs (a Slurm partition, its job's GPUs, node, time limit, account) and
    # where its job runs (job id, node, address).
    """
    ALTER TABLE instances ADD COLUMN slurm_partition TEXT;
    ALTER TABLE instances ADD COLUMN slurm_gpus INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE instances ADD COLUMN slurm_node TEXT;
    ALTER TABLE instances ADD COLUMN slurm_time_limit TEXT;
    ALTER TABLE instances ADD COLUMN slurm_account TEXT;
    ALTER TABLE instances ADD COLUMN slurm_job_id INTEGER;
    ALTER TABLE instances ADD COLUMN node TEXT;
    ALTER TABLE instances ADD COLUMN node_address TEXT;
    """,
    # 9: settings edited after creation: launch arguments (a JSON list, so one may hold spaces; the
    # old config/launch_args.txt is moved in by the supervisor) and extra environment variables.
    """
    ALTER TABLE instances ADD COLUMN launch_args TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE instances ADD COLUMN env TEXT NOT NULL DEFAULT '{}';
    """,
)

# Backups kept in <data>/backups/ (one per start): aikore-<UTC time>-v<schema version>.db.
BACKUPS_KEPT = 10
_SQLITE_CANTOPEN = 14
_BACKUP_PREFIX = "aikore-"

# API field name → column name, where they differ (the column keeps the original design's name).
_COLUMN = {"blueprint": "base_blueprint"}
_BOOLEAN = {"autostart", "persistent_mode"}
# Lists and objects are kept as JSON text.
_JSON = {"launch_args", "env"}


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Store:
    """All database access. One connection; aiosqlite serialises statements on its thread.

    ``instances_dir``: where instance folders live (an empty database beside instance folders is
    refused); ``backups_dir``: where each start's backup goes (None: no backups).
    """

    def __init__(self, path: Path, instances_dir: Path | None = None, backups_dir: Path | None = None) -> None:
        self.path = path
        self.instances_dir = instances_dir
        self.backups_dir = backups_dir
        self._db: aiosqlite.Connection | None = None

    async def open(self) -> None:
        """Check the file (read-only), back it up, then open it, migrate it and prove it writable."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        version = await asyncio.to_thread(self._check)
        if version and self.backups_dir is not None:
            await asyncio.to_thread(self._backup, version)
        try:
            private_database(self.path)
            self._db = await aiosqlite.connect(self.path, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise faults.Unusable(self._unwritable(str(exc))) from None
        try:
            self._db.row_factory = aiosqlite.Row
            await self._db.execute("PRAGMA journal_mode=WAL")
            await self._db.execute("PRAGMA foreign_keys=ON")
            await self._db.execute("PRAGMA busy_timeout=5000")
            await self.migrate()
            await self._prove_writable()
        except BaseException:
            # Never leave aiosqlite's thread running: the process could not exit.
            await self.close()
            raise

    def _check(self) -> int:
        """The schema version of a database fit to open (0: none yet); raises ``faults.Unusable``."""
        size = self.path.stat().st_size if self.path.exists() else 0
        if size == 0:
            self._refuse_if_instances_exist("missing" if not self.path.exists() else "empty (0 bytes)")
            return 0
        try:
            con = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True)
        except sqlite3.Error as exc:
            raise faults.Unusable(self._unreadable(exc)) from None
        try:
            checked = [row[0] for row in con.execute("PRAGMA quick_check")]
            version = int(con.execute("PRAGMA user_version").fetchone()[0])
        except sqlite3.Error as exc:
            raise faults.Unusable(self._unreadable(exc)) from None
        finally:
            con.close()
        if checked != ["ok"]:
            raise faults.Unusable(self._damaged("; ".join(str(c) for c in checked[:3])))
        if version > len(MIGRATIONS):
            raise faults.Unusable(
                f"{self.path} has schema version {version}, newer than this AiKore knows ({len(MIGRATIONS)}): "
                "it was written by a newer AiKore; run that version, or restore a backup made by this one"
            )
        if version == 0:
            self._refuse_if_instances_exist("empty (no schema)")
        return version

    def _refuse_if_instances_exist(self, state: str) -> None:
        folders = instance_folders(self.instances_dir)
        if folders:
            shown = ", ".join(folders[:5]) + (", ..." if len(folders) > 5 else "")
            raise faults.Unusable(
                f"the database {self.path} is {state}, but {self.instances_dir} holds {len(folders)} instance "
                f"folder(s) ({shown}): it was lost or truncated, this is not a fresh install. AiKore did not "
                f"start and changed nothing. {self._restore_hint()} To start from scratch instead, move "
                f"{self.instances_dir} aside."
            )

    def _unreadable(self, exc: sqlite3.Error) -> str:
        # Reading a WAL database needs its -shm file: "cannot open" in a folder that cannot be
        # written is not damage.
        if getattr(exc, "sqlite_errorcode", 0) & 0xFF == _SQLITE_CANTOPEN:
            return self._unwritable(str(exc))
        return self._damaged(str(exc))

    def _damaged(self, detail: str) -> str:
        return (
            f"the database {self.path} cannot be read: {detail}. AiKore did not start and changed nothing. "
            f"{self._restore_hint()}"
        )

    def _restore_hint(self) -> str:
        where = self.backups_dir if self.backups_dir is not None else self.path.parent / "backups"
        return (
            f"Restore the newest good backup: copy {where}/aikore-<time>-v<N>.db over {self.path} and delete "
            f"{self.path.name}-wal and {self.path.name}-shm beside it (README: \"Backups and restoring the database\")."
        )

    def _backup(self, version: int) -> None:
        """A consistent copy of the database (SQLite's backup API) before anything changes it."""
        assert self.backups_dir is not None
        now = time.time()
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now)) + f"-{int(now * 1000) % 1000:03d}"
        target = self.backups_dir / f"{_BACKUP_PREFIX}{stamp}-v{version}.db"
        partial = target.with_name(target.name + ".partial")
        try:
            self.backups_dir.mkdir(parents=True, exist_ok=True)
            source = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True)
            try:
                copy = sqlite3.connect(partial)
                try:
                    source.backup(copy)
                finally:
                    copy.close()
            finally:
                source.close()
            partial.replace(target)
        except (OSError, sqlite3.Error) as exc:
            partial.unlink(missing_ok=True)
            if version < len(MIGRATIONS):
                raise faults.Unusable(
                    f"cannot back up {self.path} before migrating it to schema version {len(MIGRATIONS)}: {exc}; "
                    "AiKore did not start and changed nothing (free space in the data dir?)"
                ) from None
            return
        for old in backups(self.backups_dir)[:-BACKUPS_KEPT]:
            old.unlink(missing_ok=True)

    async def _prove_writable(self) -> None:
        """Write the schema version again: refused at start, not at the first change."""
        version = await self.schema_version()
        try:
            await self.db.execute(f"PRAGMA user_version = {version}")
        except sqlite3.Error as exc:
            fault = faults.from_sqlite(exc)
            if fault is None:
                raise
            raise faults.Unusable(self._unwritable(str(exc))) from None

    def _unwritable(self, detail: str) -> str:
        return (
            f"the database {self.path} cannot be written ({detail}). AiKore refuses to start: it could not "
            "record any change. Make the file, its folder and the disk writable (not read-only, not "
            "immutable, not full), then start AiKore again."
        )

    async def write(self, sql: str, params: Iterable[Any] = ()) -> aiosqlite.Cursor:
        """Run one change; a storage fault (full disk, read-only file) becomes ``faults.StorageError``."""
        try:
            return await self.db.execute(sql, tuple(params))
        except sqlite3.Error as exc:
            fault = faults.from_sqlite(exc)
            if fault is None:
                raise
            raise fault from exc

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
                with contextlib.suppress(sqlite3.Error):
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
        async with await self.write(sql, [_value(k, v) for k, v in fields.items()]) as cur:
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
        await self.write(f"UPDATE instances SET {assignments} WHERE id = ?", (*values, instance.id))
        return instance.replace(**fields)

    async def delete_instance(self, instance_id: int) -> None:
        await self.write("DELETE FROM instances WHERE id = ?", (instance_id,))


def instance_folders(instances_dir: Path | None) -> list[str]:
    """Names of the instance folders in ``instances_dir`` (hidden work folders left out)."""
    if instances_dir is None or not instances_dir.is_dir():
        return []
    return sorted(p.name for p in instances_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def backups(backups_dir: Path) -> list[Path]:
    """The kept backups, oldest first."""
    if not backups_dir.is_dir():
        return []
    return sorted(backups_dir.glob(f"{_BACKUP_PREFIX}*.db"))


def _column(field_name: str) -> str:
    if field_name not in FIELDS or field_name == "id":
        raise ValueError(f"unknown instance field {field_name!r}")
    return _COLUMN.get(field_name, field_name)


def _value(field_name: str, value: Any) -> Any:
    if field_name in _JSON:
        return json.dumps(list(value) if isinstance(value, tuple) else dict(value))
    return int(bool(value)) if field_name in _BOOLEAN else value


def _to_instance(row: sqlite3.Row) -> Instance:
    data = {name: row[_COLUMN.get(name, name)] for name in FIELDS}
    for name in _BOOLEAN:
        data[name] = bool(data[name])
    data["gpu_ids"] = data["gpu_ids"] or ""
    data["launch_args"] = tuple(json.loads(data["launch_args"] or "[]"))
    data["env"] = json.loads(data["env"] or "{}")
    return Instance(**data)
