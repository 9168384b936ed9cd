"""SQLite store: WAL, migrations from the original schema, and row round trips."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from aikore.store.db import MIGRATIONS, Store
from tests.helpers import until

ORIGINAL_SCHEMA = MIGRATIONS[0]


def _make_original_db(path: Path) -> None:
    """The schema an install of the original AiKore design has on disk (user_version 1)."""
    con = sqlite3.connect(path)
    con.executescript(ORIGINAL_SCHEMA)
    con.execute(
        "INSERT INTO instances (name, base_blueprint, gpu_ids, autostart, persistent_mode, status, pid) "
        "VALUES ('comfy', 'comfyui', '0,1', 1, 0, 'running', 4242)"
    )
    con.execute("INSERT INTO instances (name, base_blueprint, gpu_ids) VALUES ('lab', 'jupyterlab', NULL)")
    con.execute("PRAGMA user_version = 1")
    con.commit()
    con.close()


async def test_fresh_database_is_at_latest_version_in_wal_mode(tmp_path: Path) -> None:
    store = Store(tmp_path / "aikore.db")
    await store.open()
    try:
        assert await store.schema_version() == len(MIGRATIONS)
        async with store.db.execute("PRAGMA journal_mode") as cur:
            assert (await cur.fetchone())[0] == "wal"
    finally:
        await store.close()


async def test_migrates_original_schema_keeping_rows(tmp_path: Path) -> None:
    path = tmp_path / "aikore.db"
    _make_original_db(path)
    store = Store(path)
    await store.open()
    try:
        assert await store.schema_version() == len(MIGRATIONS)
        comfy = await store.get_instance_by_name("comfy")
        lab = await store.get_instance_by_name("lab")
        assert comfy is not None and lab is not None
        assert (comfy.blueprint, comfy.gpu_ids, comfy.autostart, comfy.pid) == ("comfyui", "0,1", True, 4242)
        assert lab.gpu_ids == "" and lab.restart_policy == "never" and lab.port is None
        assert comfy.created_at and comfy.updated_at
        async with store.db.execute("PRAGMA table_info(instances)") as cur:
            columns = {row[1] async for row in cur}
        for col in (
            "port",
            "public_port",
            "persistent_port",
            "exit_code",
            "created_at",
            "updated_at",
            "restart_policy",
            "pid_create_time",
            "status_message",
        ):
            assert col in columns
    finally:
        await store.close()


async def test_reopening_does_not_rerun_migrations(tmp_path: Path) -> None:
    path = tmp_path / "aikore.db"
    for _ in range(2):
        store = Store(path)
        await store.open()
        await store.insert_instance(
            name=f"x{await store.schema_version()}{len(await store.list_instances())}", blueprint="demo"
        )
        await store.close()
    store = Store(path)
    await store.open()
    assert len(await store.list_instances()) == 2
    await store.close()


async def test_failed_migration_rolls_back_and_keeps_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "aikore.db"
    _make_original_db(path)
    import aikore.store.db as db

    monkeypatch.setattr(
        db, "MIGRATIONS", (*MIGRATIONS[:1], "ALTER TABLE instances ADD COLUMN port INTEGER; BROKEN SQL")
    )
    store = Store(path)
    with pytest.raises(sqlite3.OperationalError):
        await store.open()
    await store.close()
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == 1
    assert "port" not in {r[1] for r in con.execute("PRAGMA table_info(instances)")}
    con.close()


async def test_unique_public_port_is_enforced_by_the_schema(tmp_path: Path) -> None:
    store = Store(tmp_path / "aikore.db")
    await store.open()
    try:
        await store.insert_instance(name="a", blueprint="demo", public_port=19001)
        with pytest.raises(sqlite3.IntegrityError):
            await store.insert_instance(name="b", blueprint="demo", public_port=19001)
        assert [i.name for i in await store.list_instances()] == ["a"]
    finally:
        await store.close()


async def test_an_empty_database_beside_instance_folders_is_refused_and_not_touched(tmp_path: Path) -> None:
    from aikore.store.faults import Unusable

    instances = tmp_path / "instances"
    (instances / "comfy").mkdir(parents=True)
    (instances / ".creating-x.1").mkdir()  # a work folder is not an instance
    path = tmp_path / "aikore.db"
    path.write_bytes(b"")
    store = Store(path, instances, tmp_path / "backups")
    with pytest.raises(Unusable, match=r"is empty \(0 bytes\).*1 instance folder\(s\) \(comfy\)"):
        await store.open()
    assert path.read_bytes() == b"" and sorted(p.name for p in os.scandir(tmp_path)) == ["aikore.db", "instances"]
    # Without instance folders it is a fresh install.
    fresh = Store(tmp_path / "fresh.db", tmp_path / "none", tmp_path / "backups")
    await fresh.open()
    await fresh.close()


async def test_a_corrupt_database_is_refused_and_left_unchanged(tmp_path: Path) -> None:
    from aikore.store.faults import Unusable

    path = tmp_path / "aikore.db"
    path.write_bytes(b"\x00garbage" * 1000)
    with pytest.raises(Unusable, match="file is not a database"):
        await Store(path).open()
    assert path.read_bytes() == b"\x00garbage" * 1000


async def test_a_failed_open_leaves_no_connection_thread_to_hang_the_exit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    import aikore.store.db as db

    path = tmp_path / "aikore.db"
    _make_original_db(path)
    monkeypatch.setattr(db, "MIGRATIONS", (*MIGRATIONS[:1], "BROKEN SQL"))
    with pytest.raises(sqlite3.OperationalError):
        await Store(path).open()  # no close(): open() must not leave its connection running

    def no_connection_thread() -> bool:
        return not any("_connection_worker_thread" in t.name for t in threading.enumerate())

    await until(no_connection_thread, within=5, what="the connection thread to end")


async def test_each_open_backs_up_the_database_before_migrating_it(tmp_path: Path) -> None:
    from aikore.store.db import BACKUPS_KEPT, backups

    path = tmp_path / "aikore.db"
    _make_original_db(path)
    store = Store(path, backups_dir=tmp_path / "backups")
    await store.open()
    await store.close()
    [first] = backups(tmp_path / "backups")
    assert first.name.endswith("-v1.db")
    con = sqlite3.connect(first)
    assert con.execute("PRAGMA user_version").fetchone()[0] == 1
    assert [r[0] for r in con.execute("SELECT name FROM instances ORDER BY id")] == ["comfy", "lab"]
    con.close()
    for _ in range(BACKUPS_KEPT + 2):
        store = Store(path, backups_dir=tmp_path / "backups")
        await store.open()
        await store.close()
    kept = backups(tmp_path / "backups")
    assert len(kept) == BACKUPS_KEPT and first not in kept, "the oldest go"


async def test_a_database_that_cannot_be_written_is_refused_at_open(tmp_path: Path) -> None:
    from aikore.store.faults import Unusable

    path = tmp_path / "aikore.db"
    store = Store(path)
    await store.open()
    await store.close()
    if (await _chattr("+i", path)).returncode != 0:
        pytest.skip("chattr +i (root, a file system that has it) makes the file read-only even for root")
    try:
        with pytest.raises(Unusable, match="cannot be written"):
            await Store(path).open()
    finally:
        assert (await _chattr("-i", path)).returncode == 0


async def _chattr(flag: str, path: Path) -> subprocess.CompletedProcess[bytes]:
    return await asyncio.to_thread(subprocess.run, ["chattr", flag, str(path)], capture_output=True)


async def test_migration_6_keeps_process_group_records_and_lets_a_launch_be_recorded_before_its_pid(
    tmp_path: Path,
) -> None:
    path = tmp_path / "aikore.db"
    con = sqlite3.connect(path)
    for number, script in enumerate(MIGRATIONS[:5], start=1):
        con.executescript(script)
        con.execute(f"PRAGMA user_version = {number}")
    con.execute("INSERT INTO instances (name, base_blueprint) VALUES ('a', 'demo')")
    con.execute("INSERT INTO process_groups VALUES (1, 'main', 4242, 12.5, 'launch', 20001)")
    con.commit()
    con.close()
    store = Store(path)
    await store.open()
    try:
        async with store.db.execute("SELECT * FROM process_groups") as cur:
            assert [tuple(r) for r in await cur.fetchall()] == [(1, "main", 4242, 12.5, "launch", 20001, None)]
        await store.write("INSERT INTO process_groups (instance_id, role, launch_id) VALUES (1, 'desktop', 'x')")
        await store.write("INSERT INTO pending_restarts VALUES (1, 99.0, 2)")
        await store.delete_instance(1)
        async with store.db.execute("SELECT COUNT(*) FROM process_groups, pending_restarts") as cur:
            assert (await cur.fetchone())[0] == 0
    finally:
        await store.close()


async def test_a_satellites_parent_link_survives_migration_and_the_database_refuses_to_orphan_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "aikore.db"
    _make_original_db(path)
    store = Store(path)
    await store.open()
    try:
        comfy = await store.get_instance_by_name("comfy")
        assert comfy is not None and comfy.parent_id is None
        sat = await store.insert_instance(name="comfy-gpu1", blueprint="comfyui", parent_id=comfy.id)
        assert (await store.get_instance(sat.id)).parent_id == comfy.id
        # The supervisor refuses first (409 naming the satellites); the schema is the backstop.
        with pytest.raises(sqlite3.IntegrityError):
            await store.delete_instance(comfy.id)
        await store.delete_instance(sat.id)
        await store.delete_instance(comfy.id)
    finally:
        await store.close()
