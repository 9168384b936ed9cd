"""Instances on the test cluster's GPU nodes, through a real ``aikore --slurm``: the same states, proxy and logs."""

from __future__ import annotations

import contextlib
import urllib.request

import psutil

from aikore.supervisor.crashpoints import ENV as CRASH_AT
from aikore.supervisor.process import INTERRUPTED_START
from tests.helpers import wait_until
from tests.slurm.aikore import Start, create, instance
from tests.slurm.cluster import CLOSED_PARTITION, PARTITION, Cluster
from tests.supervisor.real import CONNECTION_LOST


def app_processes(job_id: int) -> list[psutil.Process]:
    """Live processes of a job on its node (they carry its SLURM_JOB_ID)."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("SLURM_JOB_ID") == str(job_id) and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def test_instance_runs_on_the_node_asked_for_is_proxied_logs_live_and_stop_cancels_the_job(
    cluster: Cluster, aikore: Start
) -> None:
    proc = aikore()
    started = create(proc, "onnode2", slurm_partition=PARTITION, slurm_gpus=1, slurm_node="node2")
    assert started["status"] == "starting"
    job_id = started["slurm_job_id"]
    assert job_id and started["pid"] is None
    running = instance(proc, started["id"], "running")
    assert (running["node"], running["node_address"]) == ("node2", "127.0.0.3")
    job = cluster.job(job_id)
    assert job["JobState"] == "RUNNING" and job["NodeList"] == "node2"
    assert job["Comment"].startswith("aikore:") and job["TresPerNode"] == "gres:gpu:1"
    # The app listens on the node's address, and AiKore's /app/ reaches it there.
    with urllib.request.urlopen(f"http://127.0.0.3:{running['port']}/health", timeout=10) as direct:
        assert direct.status == 200
    page = proc.request("GET", "/app/onnode2/")
    assert page.status == 200 and b"demo" in page.body.lower()
    logs = proc.request("GET", f"/api/instances/{started['id']}/logs?tail=50").json()["lines"]
    assert any(f"web: on node2 at 127.0.0.3:{running['port']} job {job_id}" in line for line in logs), logs
    assert app_processes(job_id)

    stopped = proc.request("POST", f"/api/instances/{started['id']}/stop")
    assert stopped.status == 200
    done = instance(proc, started["id"], "stopped")
    assert done["port"] is None
    assert cluster.job(job_id)["JobState"] == "CANCELLED"
    assert not [j for j in cluster.jobs() if j["id"] == str(job_id)]
    wait_until(lambda: not app_processes(job_id), 15, what=f"job {job_id}'s processes to end")
    assert proc.request("GET", "/app/onnode2/").status == 503


def test_job_that_cannot_be_scheduled_shows_queued_with_slurms_reason(cluster: Cluster, aikore: Start) -> None:
    proc = aikore()
    started = create(proc, "waits", slurm_partition=CLOSED_PARTITION)
    queued = wait_until(
        lambda: (i := proc.request("GET", f"/api/instances/{started['id']}").json())["status_message"]
        == "queued: PartitionDown" and i,
        30, what="the queue reason", interval=0.2,
    )
    assert queued["status"] == "starting" and queued["port"] is None
    assert [j["state"] for j in cluster.jobs() if j["id"] == str(started["slurm_job_id"])] == ["PENDING"]
    assert proc.request("POST", f"/api/instances/{started['id']}/stop").status == 200
    instance(proc, started["id"], "stopped")
    assert not cluster.jobs()


def test_aikore_killed_and_restarted_re_adopts_the_running_job(cluster: Cluster, aikore: Start) -> None:
    first = aikore()
    started = create(first, "kept", slurm_partition=PARTITION, slurm_gpus=1)
    running = instance(first, started["id"], "running")
    first.kill()  # SIGKILL: AiKore does nothing on its way out
    second = aikore()
    again = instance(second, started["id"], "running")
    assert again["slurm_job_id"] == running["slurm_job_id"]
    assert (again["node"], again["port"]) == (running["node"], running["port"])
    # Not submitted twice: the one job still runs, and the proxy reaches it.
    assert [j["id"] for j in cluster.jobs()] == [str(running["slurm_job_id"])]
    assert second.request("GET", "/app/kept/health").status == 200


def test_job_cancelled_while_aikore_was_away_is_stopped_with_slurms_word(cluster: Cluster, aikore: Start) -> None:
    first = aikore()
    started = create(first, "gone", slurm_partition=PARTITION)
    instance(first, started["id"], "running")
    first.kill()
    cluster.run("scancel", str(started["slurm_job_id"]))
    wait_until(lambda: not cluster.jobs(), 30, what="the job to end")
    second = aikore()
    failed = instance(second, started["id"], "stopped")
    assert f"Slurm job {started['slurm_job_id']} CANCELLED" in failed["status_message"]
    assert "while AiKore was not running" in failed["status_message"]
    assert not cluster.jobs()


def test_job_of_a_start_aikore_died_during_is_found_by_its_comment_and_cancelled(
    cluster: Cluster, aikore: Start
) -> None:
    # AiKore dies after sbatch answered, before the job id was stored anywhere.
    first = aikore(env={CRASH_AT: "start:spawned-unrecorded"})
    created = first.request("POST", "/api/instances", {"name": "orphan", "blueprint": "web",
                                                       "slurm_partition": PARTITION}).json()
    with contextlib.suppress(*CONNECTION_LOST):
        first.request("POST", f"/api/instances/{created['id']}/start")
    first.proc.wait(timeout=30)
    assert [j["comment"].startswith("aikore:") for j in cluster.jobs()] == [True]
    second = aikore()
    wait_until(lambda: not cluster.jobs(), 30, what="the orphaned job to be cancelled")
    after = second.request("GET", f"/api/instances/{created['id']}").json()
    assert after["status"] == "stopped" and after["status_message"] == INTERRUPTED_START


def test_crashing_job_ends_in_error_with_its_exit_code(cluster: Cluster, aikore: Start) -> None:
    proc = aikore()
    started = create(proc, "crashes", "crash", slurm_partition=PARTITION)
    failed = instance(proc, started["id"], "error")
    assert failed["exit_code"] == 7
    assert f"Slurm job {started['slurm_job_id']} FAILED" in failed["status_message"]
    assert "crash: giving up" in failed["status_message"]


def test_two_instances_land_on_two_nodes(cluster: Cluster, aikore: Start) -> None:
    proc = aikore()
    # Each asks for both GPUs of a node: two cannot share one.
    first = create(proc, "first", slurm_partition=PARTITION, slurm_gpus=2)
    second = create(proc, "second", slurm_partition=PARTITION, slurm_gpus=2)
    a = instance(proc, first["id"], "running")
    b = instance(proc, second["id"], "running")
    assert {a["node"], b["node"]} == {"node1", "node2"}
    for name in ("first", "second"):
        assert proc.request("GET", f"/app/{name}/health").status == 200
    nodes = {n["name"]: n for n in proc.request("GET", "/api/cluster").json()["nodes"]}
    assert nodes["node1"]["gpus_allocated"] == nodes["node2"]["gpus_allocated"] == 2
    # Each job's own processes as sstat measures them on its node (the demo app is a Python process).
    jobs = wait_until(
        lambda: (j := proc.request("GET", "/api/cluster").json()["jobs"]) and all(x["memory_bytes"] for x in j) and j,
        30, what="sstat figures for both jobs", interval=0.5,
    )
    assert {(j["name"], j["node"]) for j in jobs} == {("aikore-first", a["node"]), ("aikore-second", b["node"])}
    assert all(j["memory_bytes"] > 10 * 2**20 and j["state"] == "running" for j in jobs)


def test_job_cancelled_outside_aikore_is_stopped_with_slurms_reason(cluster: Cluster, aikore: Start) -> None:
    proc = aikore()
    started = create(proc, "cancelled", slurm_partition=PARTITION)
    instance(proc, started["id"], "running")
    cluster.run("scancel", str(started["slurm_job_id"]))
    stopped = instance(proc, started["id"], "stopped")
    assert f"Slurm job {started['slurm_job_id']} CANCELLED" in stopped["status_message"]


def test_partition_is_checked_against_the_cluster_and_nothing_is_stored(cluster: Cluster, aikore: Start) -> None:
    proc = aikore()
    unknown = proc.request("POST", "/api/instances", {"name": "x", "blueprint": "web", "slurm_partition": "nope"})
    assert unknown.status == 400
    error = unknown.json()["error"]
    assert error["field"] == "slurm_partition" and "'nope'" in error["message"] and "gpu" in error["message"]
    bad_time = proc.request("POST", "/api/instances",
                            {"name": "x", "blueprint": "web", "slurm_partition": PARTITION, "slurm_time_limit": "soon"})
    assert bad_time.status == 400 and bad_time.json()["error"]["field"] == "slurm_time_limit"
    assert proc.request("GET", "/api/instances").json() == []
    cluster_info = proc.request("GET", "/api/cluster").json()
    assert cluster_info["enabled"] is True
    assert {p["name"]: p["available"] for p in cluster_info["partitions"]} == {PARTITION: True, CLOSED_PARTITION: False}
    assert [(n["name"], n["address"], n["gpus"]) for n in cluster_info["nodes"]] == [
        ("node1", "127.0.0.2", 2), ("node2", "127.0.0.3", 2)]
