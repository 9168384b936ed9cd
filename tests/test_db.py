"""SQLite store: WAL, migrations from the original schema, and row round trips."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from aikore.store.db import MIGRATIONS, Store

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
