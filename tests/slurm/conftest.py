"""The Slurm cluster the tests in this folder run against: started once for them, torn down after them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import AikoreProcess, wait_until
from tests.slurm.aikore import BLUEPRINTS, HEADER, Start
from tests.slurm.cluster import Cluster, missing, start_cluster, stop_cluster


# Per package: started at the first test here, torn down once this folder's tests are done, so
# the rest of the suite runs without Slurm's daemons around.
@pytest.fixture(scope="package")
def cluster() -> Iterator[Cluster]:
    """munged, slurmctld and two slurmd on loopback addresses, with fake GPUs; nothing left after."""
    absent = missing()
    if absent:
        pytest.skip(f"Slurm is not installed (missing {', '.join(absent)}): scripts/test-deps installs "
                    "slurm-wlm and munge")
    if os.geteuid() != 0:
        pytest.skip("the test cluster's daemons run as root (SlurmUser=root); run the Slurm tests as root")
    running = start_cluster()
    yield running
    left = stop_cluster(running)
    assert not left, f"the test cluster left processes running: {left}"


@pytest.fixture
def aikore(cluster: Cluster, tmp_path: Path) -> Iterator[Start]:
    """Factory for ``aikore --slurm`` on one data dir, talking to the test cluster."""
    blueprints = tmp_path / "blueprints"
    blueprints.mkdir()
    for name, body in BLUEPRINTS.items():
        (blueprints / f"{name}.sh").write_text(HEADER.format(name=name) + body)
    started: list[AikoreProcess] = []

    def start(env: dict[str, str] | None = None) -> AikoreProcess:
        proc = AikoreProcess(
            data_dir=tmp_path / "data",
            extra_args=["--no-auth", "--slurm", "--blueprints-dir", str(blueprints), "--stop-timeout", "3"],
            env={**cluster.env, **(env or {})},
        )
        started.append(proc)
        return proc.start()

    yield start
    for proc in started:
        proc.close()
    # Whatever a test left, the next one starts on an empty queue.
    cluster.run("scancel", "-u", "root", check=False)
    wait_until(lambda: not cluster.jobs(), 30, what="the test's jobs to end")
