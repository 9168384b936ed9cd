"""The test cluster itself: a GPU job runs on the node asked for, and one that cannot run waits with a reason."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import wait_until
from tests.slurm.cluster import CLOSED_PARTITION, Cluster


def test_gpu_job_runs_on_the_node_asked_for(cluster: Cluster, tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    job = cluster.run("sbatch", "--parsable", "--gres=gpu:1", "-w", "node2", f"--output={out}",
                      "--wrap", "echo on $SLURMD_NODENAME").strip()
    wait_until(lambda: cluster.job(job)["JobState"] == "COMPLETED", 30, what=f"job {job} to complete")
    assert out.read_text().strip() == "on node2"


def test_job_for_a_closed_partition_pends_with_its_reason(cluster: Cluster) -> None:
    job = cluster.run("sbatch", "--parsable", "-p", CLOSED_PARTITION, "--wrap", "true").strip()
    try:
        pending = wait_until(lambda: cluster.job(job)["Reason"] != "None" and cluster.job(job), 30,
                             what="a reason for the pending job")
        assert pending["JobState"] == "PENDING"
        assert pending["Reason"] == "PartitionDown"
    finally:
        cluster.run("scancel", job)
