"""The data dir under faults, on a real AiKore: a second AiKore on it, a port it cannot bind, a
damaged, emptied or read-only database. Each refusal exits at once, says what to do, and leaves
the instances and the file exactly as they were."""

from __future__ import annotations

import hashlib
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from aikore.store.db import MIGRATIONS, backups
from aikore.store.lock import LOCK_FILE
from tests.helpers import AikoreProcess

from .real import args, create, rows, run_aikore, start_running, status


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_second_aikore_on_the_same_data_dir_says_who_holds_it_and_touches_nothing(
    aikore_process: Callable[..., AikoreProcess], blueprints_dir: Path
) -> None:
    first = aikore_process(extra_args=args(blueprints_dir))
    running = start_running(first, "web")
    # On the first one's port (it used to adopt, fail to listen, then stop everything), and on another.
    for port in (first.port, 0):
        second = run_aikore(first.data_dir, *args(blueprints_dir), port=port)
        assert second.returncode == 1
        assert f"is in use by AiKore pid {first.proc.pid}" in second.stderr, second.stderr
        assert "AiKore dashboard" not in second.stdout
    assert psutil.Process(running["pid"]).is_running()
    again = status(first, running["id"], "running")
    assert (again["pid"], again["port"]) == (running["pid"], running["port"])
    assert first.request("GET", "/app/web/health").status == 200
    assert str(first.proc.pid) in (first.data_dir / LOCK_FILE).read_text()


def test_an_aikore_that_cannot_listen_adopts_nothing_and_so_stops_nothing(
    aikore_process: Callable[..., AikoreProcess], blueprints_dir: Path
) -> None:
    first = aikore_process(extra_args=args(blueprints_dir))
    running = start_running(first, "web")
    first.kill()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        refused = run_aikore(first.data_dir, *args(blueprints_dir), port=taken.getsockname()[1])
    assert refused.returncode == 1 and "cannot listen" in refused.stderr, refused.stderr
    assert psutil.Process(running["pid"]).is_running()
    assert rows(first.data_dir) == {"web": "running"}
    # The next AiKore that can listen adopts it, same pid.
    third = aikore_process(extra_args=args(blueprints_dir), data_dir=first.data_dir)
    adopted = status(third, running["id"], "running", "error")
    assert adopted["status"] == "running" and adopted["pid"] == running["pid"]


@pytest.fixture
def killed_with_instances(
    aikore_process: Callable[..., AikoreProcess], blueprints_dir: Path
) -> Iterator[tuple[AikoreProcess, dict]]:
    """An AiKore with 20 instances (one running) that was killed with SIGKILL."""
    first = aikore_process(extra_args=args(blueprints_dir))
    running = start_running(first, "web")
    for n in range(19):
        create(first, f"idle{n}", "demo")
    first.kill()
    yield first, running


def test_an_emptied_database_beside_instance_folders_is_refused_and_left_alone(
    killed_with_instances: tuple[AikoreProcess, dict], blueprints_dir: Path
) -> None:
    first, running = killed_with_instances
    db = first.data_dir / "aikore.db"
    db.write_bytes(b"")
    refused = run_aikore(first.data_dir, *args(blueprints_dir))
    assert refused.returncode == 1
    assert "is empty (0 bytes)" in refused.stderr and "20 instance folder(s)" in refused.stderr, refused.stderr
    assert "backups" in refused.stderr and "move" in refused.stderr
    assert db.stat().st_size == 0, "the file must be left exactly as it was"
    assert psutil.Process(running["pid"]).is_running(), "the running instance is neither adopted nor stopped"


@pytest.mark.parametrize("damage", ["garbage header", "half truncated"])
def test_a_damaged_database_is_refused_at_once_and_left_unchanged(
    aikore_process: Callable[..., AikoreProcess], blueprints_dir: Path, damage: str
) -> None:
    first = aikore_process(extra_args=args(blueprints_dir))
    for n in range(20):
        create(first, f"i{n}", "demo", gpu_ids="0")
    assert first.stop() == 0  # checkpointed: everything is in aikore.db itself
    db = first.data_dir / "aikore.db"
    data = db.read_bytes()
    if damage == "garbage header":
        db.write_bytes(bytes(range(256)) * 4 + data[1024:])
    else:
        db.write_bytes(data[: len(data) // 2])
    before = _digest(db)
    try:
        refused = run_aikore(first.data_dir, *args(blueprints_dir), timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("AiKore hung on a damaged database instead of refusing it")
    assert refused.returncode == 1
    assert "cannot be read" in refused.stderr and "Restore the newest good backup" in refused.stderr, refused.stderr
    assert ("file is not a database" if damage == "garbage header" else "malformed") in refused.stderr
    assert _digest(db) == before


def test_each_start_backs_up_the_database_and_the_readme_restore_brings_it_back(
    aikore_process: Callable[..., AikoreProcess], blueprints_dir: Path
) -> None:
    first = aikore_process(extra_args=args(blueprints_dir))
    for name in ("one", "two"):
        create(first, name, "demo")
    assert first.stop() == 0
    second = aikore_process(extra_args=args(blueprints_dir), data_dir=first.data_dir)
    assert second.stop() == 0
    # The first start made the database (nothing to back up); the second copied it before opening it.
    kept = backups(first.data_dir / "backups")
    assert len(kept) == 1 and kept[-1].name.endswith(f"-v{len(MIGRATIONS)}.db")
    db = first.data_dir / "aikore.db"
    db.write_bytes(b"not a database at all" * 100)
    assert run_aikore(first.data_dir, *args(blueprints_dir)).returncode == 1
    # README "Backups and restoring the database": the newest backup over aikore.db, -wal/-shm gone.
    shutil.copyfile(kept[-1], db)
    for suffix in ("-wal", "-shm"):
        db.with_name(db.name + suffix).unlink(missing_ok=True)
    restored = aikore_process(extra_args=args(blueprints_dir), data_dir=first.data_dir)
    names = [i["name"] for i in restored.request("GET", "/api/instances").json()]
    assert names == ["one", "two"]


def test_a_read_only_database_is_refused_at_start_with_what_to_do(
    aikore_process: Callable[..., AikoreProcess], blueprints_dir: Path
) -> None:
    if shutil.which("chattr") is None:
        pytest.skip("chattr is needed to make the database immutable")
    first = aikore_process(extra_args=args(blueprints_dir))
    create(first, "web", "demo")
    assert first.stop() == 0
    db = first.data_dir / "aikore.db"
    if subprocess.run(["chattr", "+i", str(db)], capture_output=True).returncode != 0:
        pytest.skip("this file system does not support chattr +i (root is needed)")
    try:
        refused = run_aikore(first.data_dir, *args(blueprints_dir))
    finally:
        subprocess.run(["chattr", "-i", str(db)], check=True)
    assert refused.returncode == 1
    assert "cannot be written" in refused.stderr and "refuses to start" in refused.stderr, refused.stderr
