"""The Slurm cluster the tests in this folder run against: started once per session, torn down at the end."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.slurm.cluster import Cluster, missing, start_cluster, stop_cluster


@pytest.fixture(scope="session")
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
