"""Secrets at rest: what AiKore writes is private to its user whatever the umask, and the token
can be given without showing it to every local user in the process list."""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from aikore.config import ConfigError, Settings
from tests.helpers import AikoreProcess, wait_until

TOKEN = "private-files-token-0123456789abcdef"


@contextlib.contextmanager
def _umask(mask: int) -> Iterator[None]:
    """The umask children start with (AiKore, and the instances and log writers it starts)."""
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_data_dir_instances_database_and_logs_are_private_under_umask_022(
    aikore_process: Callable[..., AikoreProcess], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)  # as an older AiKore, or the person, left it
    with _umask(0o022):
        proc = aikore_process(extra_args=["--token", TOKEN])
        proc.token = TOKEN
        created = proc.request("POST", "/api/instances", {"name": "secret", "blueprint": "demo"})
        assert created.status == 201, created.body
        iid = created.json()["id"]
        assert proc.request("POST", f"/api/instances/{iid}/start").status in (200, 202)
        wait_until(lambda: proc.request("GET", f"/api/instances/{iid}").json()["status"] == "running", timeout=60,
                   what="the instance to run")
    folder = data / "instances" / "secret"
    logs = sorted((folder / "logs").glob("*.log"))
    assert logs, "the instance wrote no log"
    assert _mode(data) == 0o700
    assert _mode(data / "instances") == 0o700
    assert _mode(folder) == 0o700
    database = [data / name for name in ("aikore.db", "aikore.db-wal", "aikore.db-shm")]
    assert all(path.exists() for path in database), "the WAL files are there while AiKore runs"
    for path in (*database, *logs):
        assert _mode(path) == 0o600, path


def test_files_an_older_aikore_left_readable_are_made_private(aikore_process: Callable[..., AikoreProcess],
                                                              tmp_path: Path) -> None:
    with _umask(0o022):
        proc = aikore_process(extra_args=["--token", TOKEN])
        proc.stop()
    data = tmp_path / "data"
    (data / "instances" / "older").mkdir()
    for path in (data, data / "instances", data / "instances" / "older", data / "aikore.db"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    with _umask(0o022):
        aikore_process(extra_args=["--token", TOKEN], port=proc.port)
    modes = [_mode(p) for p in (data, data / "instances", data / "instances" / "older", data / "aikore.db")]
    assert modes == [0o700, 0o700, 0o700, 0o600]


def test_token_file_keeps_the_token_out_of_the_process_list(aikore_process: Callable[..., AikoreProcess],
                                                            tmp_path: Path) -> None:
    secret = tmp_path / "aikore_token"
    secret.write_text(f"{TOKEN}\n")
    secret.chmod(0o600)
    proc = aikore_process(extra_args=["--token-file", str(secret)])
    assert proc.proc is not None
    assert TOKEN not in " ".join(psutil.Process(proc.proc.pid).cmdline())
    assert proc.request("GET", "/api/instances", headers={"Authorization": f"Bearer {TOKEN}"}).status == 200
    # Given, not generated: nothing is written to the data dir.
    assert not (tmp_path / "data" / "token").exists()


def test_token_file_from_the_environment(tmp_path: Path) -> None:
    secret = tmp_path / "t"
    secret.write_text(f"  {TOKEN}  \n")
    settings = Settings.from_args(["--data-dir", str(tmp_path)], {"AIKORE_TOKEN_FILE": str(secret)})
    assert settings.token == TOKEN
    assert settings.token_file == secret


@pytest.mark.parametrize(
    "argv,env,fragment",
    [
        (["--token-file", "/nonexistent/token"], {}, "cannot read the token"),
        (["--token-file", "{empty}"], {}, "holds no token"),
        (["--token-file", "{empty}", "--token", "x" * 20], {}, "give the token once"),
        (["--token-file", "{empty}"], {"AIKORE_TOKEN": "x" * 20}, "give the token once"),
    ],
)
def test_a_bad_token_file_is_refused_naming_it(tmp_path: Path, argv: list[str], env: dict[str, str],
                                               fragment: str) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(ConfigError, match=fragment):
        Settings.from_args([a.replace("{empty}", str(empty)) for a in argv], env)


def test_help_says_how_to_keep_the_token_private() -> None:
    out = subprocess.run([sys.executable, "-m", "aikore", "--help"], capture_output=True, text=True, check=True,
                         timeout=60).stdout
    flat = " ".join(out.split())
    assert "--token-file" in flat and "AIKORE_TOKEN_FILE" in flat
    assert "process list" in flat and "prefer AIKORE_TOKEN or --token-file" in flat
    assert "--allowed-hosts" in flat and "AIKORE_ALLOWED_HOSTS" in flat
