"""A real Slurm cluster on this machine for tests: munged, slurmctld and two slurmd "nodes".

The nodes are ``node1`` on 127.0.0.2 and ``node2`` on 127.0.0.3 (loopback addresses standing for
hosts), each with two fake GPUs (gres files under the cluster's folder). Everything lives in one
temp folder with its own slurm.conf, munge key and socket, spool and state dirs, and free ports,
so it touches nothing of a real Slurm install. ``stop`` cancels every job and ends every daemon
and job step, and says if anything of the cluster is left.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from tests.helpers import free_port, wait_until

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scontrol", "scancel", "sinfo")
NODES = {"node1": "127.0.0.2", "node2": "127.0.0.3"}
PARTITION = "gpu"
# A partition whose nodes exist but that takes no jobs: what it is given stays pending with a reason.
CLOSED_PARTITION = "closed"
GPUS_PER_NODE = 2


def missing() -> list[str]:
    """The Slurm and munge programs this machine lacks (scripts/test-deps installs them)."""
    return [name for name in (*DAEMONS, *CLIENTS) if _program(name) is None]


def _program(name: str) -> str | None:
    # Daemons live in /usr/sbin, which a non-login PATH may lack.
    return shutil.which(name) or shutil.which(name, path="/usr/sbin")


@dataclass
class Cluster:
    """The running cluster; ``env`` is what a client (or AiKore) needs to talk to it."""

    base: Path
    ports: dict[str, int] = field(default_factory=dict)

    @property
    def conf(self) -> Path:
        return self.base / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        return {"SLURM_CONF": str(self.conf)}

    def run(self, *argv: str, check: bool = True) -> str:
        """A Slurm client command against this cluster; its stdout."""
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, env={**os.environ, **self.env})
        if check and done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
        return done.stdout

    def jobs(self) -> list[dict[str, str]]:
        """Jobs Slurm still holds as pending or running: id, name, state, reason, node, comment."""
        out = self.run("squeue", "-h", "-o", "%i|%j|%T|%r|%N|%k")
        keys = ("id", "name", "state", "reason", "node", "comment")
        return [dict(zip(keys, line.split("|"), strict=True)) for line in out.splitlines() if line.strip()]

    def job(self, job_id: str | int) -> dict[str, str]:
        """``scontrol show job`` as a dict (kept after the job ended, for MinJobAge)."""
        out = self.run("scontrol", "show", "job", "-o", str(job_id))
        return dict(part.split("=", 1) for part in out.split() if "=" in part)

    def start(self) -> Cluster:
        self._write_config()
        self._daemon(
            "munged", "--force", f"--socket={self.base / 'munge.sock'}", f"--key-file={self.base / 'munge.key'}",
            f"--pid-file={self.base / 'munged.pid'}", f"--log-file={self.base / 'log' / 'munged.log'}",
            f"--seed-file={self.base / 'munged.seed'}",
        )
        self._daemon("slurmctld", "-f", str(self.conf))
        for node in NODES:
            self._daemon("slurmd", "-f", str(self.conf), "-N", node)
        wait_until(self._idle, 30, what="both slurm nodes to be idle", interval=0.2)
        return self

    def stop(self) -> list[str]:
        """Cancel every job, end every daemon; returns what of the cluster is still running (nothing)."""
        with contextlib.suppress(RuntimeError, AssertionError, OSError, subprocess.SubprocessError):
            self.run("scancel", "--full", "-u", str(os.getuid()), check=False)
            wait_until(lambda: not self.jobs(), 30, what="every job to end", interval=0.2)
        for pidfile in ("slurmd.node1.pid", "slurmd.node2.pid", "slurmctld.pid", "munged.pid"):
            with contextlib.suppress(OSError, ValueError):
                os.kill(int((self.base / pidfile).read_text().split()[0]), signal.SIGTERM)
        with contextlib.suppress(AssertionError):
            wait_until(lambda: not self.leftovers(), 30, what="the cluster's processes to end", interval=0.2)
        for proc in self._processes():
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        return self.leftovers()

    def leftovers(self) -> list[str]:
        """Processes of this cluster still alive: daemons, job steps and whatever jobs started."""
        return [f"{p.pid} {' '.join(p.cmdline())[:120]}" for p in self._processes()]

    def _processes(self) -> list[psutil.Process]:
        found = []
        for proc in psutil.process_iter():
            try:
                mine = str(self.base) in " ".join(proc.cmdline()) or proc.environ().get("SLURM_CONF") == str(self.conf)
                if mine and proc.status() != psutil.STATUS_ZOMBIE:
                    found.append(proc)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        return found

    def _idle(self) -> bool:
        out = self.run("sinfo", "-h", "-N", "-p", PARTITION, "-o", "%N %t", check=False)
        states = dict(line.split() for line in out.splitlines() if line.strip())
        return all(states.get(node) == "idle" for node in NODES)

    def _daemon(self, name: str, *argv: str) -> None:
        # Each daemon forks into the background once it is set up; a failure to start is its exit status.
        done = subprocess.run([_program(name) or name, *argv], capture_output=True, text=True, timeout=30,
                              env={**os.environ, **self.env})
        if done.returncode != 0:
            logs = "\n".join(p.read_text(errors="replace")[-2000:] for p in (self.base / "log").glob("*.log"))
            raise RuntimeError(f"{name} did not start ({done.returncode}): {done.stderr}\n{logs}")

    def _write_config(self) -> None:
        for folder in ("state", "spool", "log", "gpus"):
            (self.base / folder).mkdir(parents=True, exist_ok=True)
        key = self.base / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        # Fake GPUs: Slurm only counts gres files, it never opens them without a cgroup device plugin.
        for n in range(GPUS_PER_NODE):
            (self.base / "gpus" / f"gpu{n}").touch()
        self.ports = {"ctld": free_port(), **{node: free_port() for node in NODES}}
        nodes = ",".join(NODES)
        lines = [
            "ClusterName=aikoretest",
            "SlurmctldHost=localhost(127.0.0.1)",
            f"SlurmctldPort={self.ports['ctld']}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={self.base / 'munge.sock'}",
            f"StateSaveLocation={self.base / 'state'}",
            f"SlurmdSpoolDir={self.base / 'spool'}/%n",
            f"SlurmctldPidFile={self.base / 'slurmctld.pid'}",
            f"SlurmdPidFile={self.base / 'slurmd.%n.pid'}",
            f"SlurmctldLogFile={self.base / 'log' / 'slurmctld.log'}",
            f"SlurmdLogFile={self.base / 'log' / 'slurmd.%n.log'}",
            # No cgroups in a container: jobs are tracked by their process tree.
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            # Job accounting on the nodes (no database needed): sstat reports a job's CPU and memory.
            "JobAcctGatherType=jobacct_gather/linux",
            "JobAcctGatherFrequency=1",
            "AccountingStorageType=accounting_storage/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            "SchedulerType=sched/backfill",
            "SchedulerParameters=sched_interval=2",
            # The nodes' hardware is this machine's; their declared size is what the tests need.
            "SlurmdParameters=config_overrides",
            "ReturnToService=2",
            "KillWait=5",
            # Ended jobs stay visible to scontrol (no accounting database here) for their exit code.
            "MinJobAge=600",
            "MpiDefault=none",
            "GresTypes=gpu",
            *(f"NodeName={node} NodeAddr={addr} NodeHostname={node} Port={self.ports[node]} CPUs=2 "
              f"RealMemory=1000 Gres=gpu:{GPUS_PER_NODE} State=UNKNOWN" for node, addr in NODES.items()),
            f"PartitionName={PARTITION} Nodes={nodes} Default=YES MaxTime=INFINITE State=UP",
            f"PartitionName={CLOSED_PARTITION} Nodes={nodes} MaxTime=INFINITE State=DOWN",
        ]
        self.conf.write_text("\n".join(lines) + "\n")
        (self.base / "gres.conf").write_text(f"Name=gpu File={self.base / 'gpus'}/gpu[0-{GPUS_PER_NODE - 1}]\n")


def start_cluster() -> Cluster:
    """A fresh cluster in its own short temp folder (munge's socket path must stay short)."""
    base = Path(tempfile.mkdtemp(prefix="aikore-slurm-", dir="/tmp"))
    base.chmod(0o755)
    cluster = Cluster(base)
    try:
        return cluster.start()
    except BaseException:
        cluster.stop()
        raise


def stop_cluster(cluster: Cluster) -> list[str]:
    """Stop it and remove its folder; returns leftovers (empty when everything ended)."""
    left = cluster.stop()
    if not left:
        shutil.rmtree(cluster.base, ignore_errors=True)
    return left
