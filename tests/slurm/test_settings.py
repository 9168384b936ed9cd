"""Turning Slurm on: the flag and its variable, and what an AiKore without it says of a partition."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from aikore.config import ConfigError, Settings


def test_slurm_is_off_unless_the_flag_or_its_variable_says_so() -> None:
    assert Settings.from_args([], environ={}).slurm is False
    assert Settings.from_args(["--slurm"], environ={}).slurm is True
    assert Settings.from_args([], environ={"AIKORE_SLURM": "1"}).slurm is True
    assert Settings.from_args([], environ={"AIKORE_SLURM": "0"}).slurm is False
    with pytest.raises(ConfigError, match="AIKORE_SLURM"):
        Settings.from_args([], environ={"AIKORE_SLURM": "maybe"})


async def test_without_slurm_a_partition_is_refused_naming_the_flag(client: TestClient) -> None:
    resp = await client.post("/api/instances", json={"name": "x", "blueprint": "demo", "slurm_partition": "gpu"})
    assert resp.status == 409
    error = (await resp.json())["error"]
    assert error["code"] == "slurm_disabled" and error["field"] == "slurm_partition" and "--slurm" in error["message"]
    assert await (await client.get("/api/instances")).json() == []
    cluster = await (await client.get("/api/cluster")).json()
    assert cluster == {"enabled": False, "partitions": [], "nodes": [], "jobs": []}


def test_aikore_with_slurm_but_no_slurm_commands_refuses_to_start_naming_them(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path)}  # nothing of Slurm's on it
    done = subprocess.run(
        [sys.executable, "-m", "aikore", "--slurm", "--no-auth", "--port", "0", "--data-dir", str(tmp_path / "data")],
        capture_output=True, text=True, timeout=60, env=env,
    )
    assert done.returncode == 2
    assert "--slurm needs Slurm's client commands; not found: sbatch, squeue, scontrol, scancel, sinfo" in done.stderr
    assert not (tmp_path / "data").exists()
