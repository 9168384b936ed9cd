"""The Slurm launcher: an instance's process group as a batch job on a cluster's GPU node.

It takes the place of the local OS seam (``oskit.RealOsKit``) for the instances that chose a
partition; the state machine (``process.py``) is the same for both. What differs is only how a
launch is started (``sbatch``), found again (job id + submit time, and the ``aikore:<launch id>``
comment on every job), signalled (``scancel``: Slurm ends the whole job tree on the node) and
reaped (``squeue``, then ``scontrol``/``sacct`` for the end state and exit code).

Everything goes through Slurm's own client commands, so AiKore needs only a working client
configuration (``SLURM_CONF``, munge) on its machine, and the data dir on a filesystem the nodes
share: the job writes the instance's log there, and the endpoint file naming where the app listens.
One poller (``run``) asks ``squeue`` for every job at once each second; handles read its results.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import shlex
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from aikore.supervisor import slurmjob
from aikore.supervisor.oskit import Exit, Handle, HealthGets, Owner

log = logging.getLogger(__name__)

COMMENT_PREFIX = "aikore:"
JOB_PREFIX = "aikore-"
ENDPOINT_FILE = "slurm-endpoint.json"
JOB_OUTPUT = "slurm-job.out"
POLL_INTERVAL = 1.0
_COMMAND_TIMEOUT = 30.0
_KILL_WAIT = 10.0
# States of a job whose processes may still run (COMPLETING: Slurm is ending them).
ACTIVE = frozenset({"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "RESIZING",
                    "REQUEUE_HOLD", "REQUEUE_FED", "SIGNALING", "STAGE_OUT", "STOPPED"})
# Ended by someone's decision, not by a failure of the app: shown as stopped, not error.
STOPPED_BY_SLURM = frozenset({"CANCELLED", "PREEMPTED"})
_FIELD = re.compile(r"(\S+?)=(.*?)(?= \S+?=|$)")


CLIENT_COMMANDS = ("sbatch", "squeue", "scontrol", "scancel", "sinfo")


def missing_commands() -> list[str]:
    """The Slurm client commands AiKore needs that are not on PATH (checked once, at startup)."""
    return [name for name in CLIENT_COMMANDS if shutil.which(name) is None]


class SlurmError(Exception):
    """A Slurm command failed; the message is Slurm's own."""


@dataclass(frozen=True)
class JobRequest:
    """Where an instance asks to run: a partition, GPUs as gres, and optionally a node, time limit, account."""

    partition: str
    gpus: int = 0
    node: str | None = None
    time_limit: str | None = None
    account: str | None = None

    def sbatch_args(self) -> list[str]:
        args = [f"--partition={self.partition}"]
        if self.gpus:
            args.append(f"--gres=gpu:{self.gpus}")
        if self.node:
            args.append(f"--nodelist={self.node}")
        if self.time_limit:
            args.append(f"--time={self.time_limit}")
        if self.account:
            args.append(f"--account={self.account}")
        return args


@dataclass(frozen=True)
class Endpoint:
    """Where the job's app listens: the node, its address and the port the job chose there."""

    node: str
    host: str
    port: int
    # The logwriter's pid on the node (its phase file names it).
    pid: int | None = None


@dataclass(frozen=True)
class JobInfo:
    job_id: int
    name: str
    state: str
    reason: str
    node: str
    comment: str
    submitted: float | None

    @property
    def active(self) -> bool:
        return self.state in ACTIVE


@dataclass(frozen=True)
class JobEnd:
    """A job's last state as Slurm tells it."""

    state: str
    reason: str | None
    code: int | None

    def describe(self, job_id: int) -> str:
        reason = f", {self.reason}" if self.reason and self.reason != "None" else ""
        return f"Slurm job {job_id} {self.state}{reason}"


def parse_fields(line: str) -> dict[str, str]:
    """One ``scontrol -o`` record (``Key=value`` pairs; values may hold spaces) as a dict."""
    return {m.group(1): m.group(2) for m in _FIELD.finditer(line.strip())}


def parse_exit_code(text: str | None) -> int | None:
    """Slurm's ``code:signal`` as one code, 128+signal for a signal (as a shell shows it)."""
    if not text or ":" not in text:
        return None
    code, sig = text.split(":", 1)
    with contextlib.suppress(ValueError):
        return 128 + int(sig) if int(sig) else int(code)
    return None


def parse_time(text: str) -> float | None:
    """Slurm's local ``2026-12-04T13:45:18`` as epoch seconds (None for Unknown/N/A)."""
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def parse_duration(text: str) -> float | None:
    """Slurm's ``[D-]HH:MM:SS[.mmm]`` or ``MM:SS.mmm`` as seconds."""
    days, _, clock = text.strip().rpartition("-")
    try:
        parts = [float(p) for p in clock.split(":")]
        seconds = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
        return seconds + (int(days) * 86400 if days else 0)
    except ValueError:
        return None


def parse_size(text: str) -> int | None:
    """Slurm's ``63636K`` / ``1.5G`` / ``512`` (KiB by default for sizes) as bytes."""
    match = re.fullmatch(r"([0-9.]+)([KMGTP]?)", text.strip())
    if match is None:
        return None
    scale = 1024 ** ("KMGTP".index(match[2]) + 1) if match[2] else 1
    return int(float(match[1]) * scale)


def gres_gpus(text: str) -> int:
    """GPUs in a gres string such as ``gpu:2``, ``gpu:a100:4(S:0-1)`` or ``gpu:1(IDX:0),shard:0``."""
    total = 0
    for part in re.split(r",(?![^(]*\))", text or ""):
        # The last "(...)" says where (IDX, sockets); "(null)" may stand for the type.
        fields = re.sub(r"\([^()]*\)$", "", part).split(":")
        if fields[0] == "gpu" and fields[-1].isdigit():
            total += int(fields[-1])
    return total


class JobHandle:
    """A launch's batch job: ``pid`` is the job id and ``create_time`` its submit time (its identity)."""

    def __init__(self, slurm: Slurm, job_id: int, submitted: float, launch_id: str, endpoint_path: Path) -> None:
        self.slurm = slurm
        self.pid = job_id
        self.create_time = submitted
        self.launch_id = launch_id
        self.endpoint_path = endpoint_path
        self._endpoint: Endpoint | None = None

    def poll(self) -> Exit | None:
        end = self.slurm.ended(self.pid)
        if end is None:
            return None
        return Exit(end.code, end.describe(self.pid), stopped=end.state in STOPPED_BY_SLURM)

    def queued(self) -> str | None:
        """Why the job waits (Slurm's reason), or None once it runs."""
        info = self.slurm.job(self.pid)
        if info is None or info.state != "PENDING":
            return None
        # Before the scheduler first looks at a job its reason is "None".
        return info.reason if info.reason not in ("", "None") else "waiting for the scheduler"

    def node(self) -> str | None:
        info = self.slurm.job(self.pid)
        return info.node if info is not None and info.node else None

    def endpoint(self) -> Endpoint | None:
        """Where the app listens, once the job wrote it (None before)."""
        if self._endpoint is None:
            try:
                data = json.loads(self.endpoint_path.read_text())
                if str(data.get("job")) == str(self.pid):
                    pid = data.get("pid")
                    self._endpoint = Endpoint(str(data["node"]), str(data["host"]), int(data["port"]),
                                              pid if isinstance(pid, int) else None)
            except (OSError, ValueError, KeyError, TypeError):
                return None
        return self._endpoint


@dataclass
class Slurm:
    """The launcher for instances on a Slurm partition (what ``OsKit`` is for local ones)."""

    env: Mapping[str, str] | None = None
    interval: float = POLL_INTERVAL
    _jobs: dict[int, JobInfo] = field(default_factory=dict)
    _ends: dict[int, JobEnd] = field(default_factory=dict)
    _watched: set[int] = field(default_factory=set)
    _partitions: list[dict[str, Any]] = field(default_factory=list)
    _health: HealthGets = field(default_factory=HealthGets)
    _poller: asyncio.Task[None] | None = None

    # -- the client commands ----------------------------------------------------------------

    async def command(self, *argv: str) -> str:
        """Run a Slurm client command; its stdout, or ``SlurmError`` with its stderr."""
        env = None if self.env is None else dict(self.env)
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
            )
        except OSError as exc:
            raise SlurmError(f"{argv[0]}: {exc}") from None
        try:
            out, err = await asyncio.wait_for(proc.communicate(), _COMMAND_TIMEOUT)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise SlurmError(f"{argv[0]} did not answer within {_COMMAND_TIMEOUT:g} s") from None
        if proc.returncode != 0:
            raise SlurmError(err.decode(errors="replace").strip() or f"{argv[0]} exited with {proc.returncode}")
        return out.decode(errors="replace")

    async def refresh(self) -> None:
        """Every AiKore job Slurm holds now; the end of each watched job that left the queue."""
        # --me: AiKore's jobs are its user's; a big cluster's whole queue is not read every second.
        out = await self.command("squeue", "--me", "-h", "-o", "%i|%j|%T|%r|%N|%k|%V")
        jobs: dict[int, JobInfo] = {}
        for line in out.splitlines():
            parts = line.split("|")
            if len(parts) != 7 or not parts[5].startswith(COMMENT_PREFIX) or not parts[0].isdigit():
                continue
            jobs[int(parts[0])] = JobInfo(int(parts[0]), parts[1], parts[2], parts[3], parts[4], parts[5],
                                          parse_time(parts[6]))
        self._jobs = jobs
        for job_id in list(self._watched):
            info = jobs.get(job_id)
            if job_id not in self._ends and (info is None or not info.active):
                end = await self.end_of(job_id)
                # squeue may miss a job for a moment that scontrol still calls active: not an end.
                if end.state not in ACTIVE:
                    self._ends[job_id] = end

    async def end_of(self, job_id: int) -> JobEnd:
        """How a job ended: ``scontrol`` while Slurm keeps it (MinJobAge), else ``sacct``."""
        with contextlib.suppress(SlurmError):
            record = parse_fields(await self.command("scontrol", "show", "job", "-o", str(job_id)))
            if record.get("JobState"):
                return JobEnd(record["JobState"], record.get("Reason"), parse_exit_code(record.get("ExitCode")))
        with contextlib.suppress(SlurmError):
            out = await self.command("sacct", "-n", "-P", "-X", "-j", str(job_id), "-o", "State,ExitCode,Reason")
            for line in out.splitlines():
                state, code, reason = [*line.split("|"), "", ""][:3]
                if state:
                    return JobEnd(state.split()[0], reason or None, parse_exit_code(code))
        return JobEnd("GONE", "Slurm no longer knows the job", None)

    async def partitions(self) -> list[dict[str, Any]]:
        """The cluster's partitions (``sinfo``): name, availability, node count, GPUs, time limit."""
        out = await self.command("sinfo", "-h", "-o", "%R|%a|%D|%G|%l")
        found: dict[str, dict[str, Any]] = {}
        for line in out.splitlines():
            name, avail, nodes, gres, limit = [*line.split("|"), "", "", "", ""][:5]
            if name and name not in found:
                found[name] = {"name": name, "available": avail == "up", "nodes": int(nodes or 0),
                               "gpus_per_node": gres_gpus(gres), "time_limit": limit}
        self._partitions = list(found.values())
        return self._partitions

    def known_partitions(self) -> frozenset[str]:
        """The partitions the last ``sinfo`` saw (what an instance may choose)."""
        return frozenset(p["name"] for p in self._partitions)

    async def nodes(self) -> list[dict[str, Any]]:
        """Every node (``scontrol show node``): address, state, CPUs, memory and GPUs, total and in use."""
        out = await self.command("scontrol", "-d", "-o", "show", "node")
        nodes = []
        for line in out.splitlines():
            rec = parse_fields(line)
            if "NodeName" not in rec:
                continue
            nodes.append({
                "name": rec["NodeName"],
                "address": rec.get("NodeAddr") or rec["NodeName"],
                "state": rec.get("State", "").lower(),
                "partitions": [p for p in rec.get("Partitions", "").split(",") if p],
                "cpus": _int(rec.get("CPUTot")),
                "cpus_allocated": _int(rec.get("CPUAlloc")),
                "cpu_load": _float(rec.get("CPULoad")),
                "memory_mb": _int(rec.get("RealMemory")),
                "memory_free_mb": _int(rec.get("FreeMem")),
                "gpus": gres_gpus(rec.get("Gres", "")),
                "gpus_allocated": gres_gpus(rec.get("GresUsed", "")),
                "reason": rec.get("Reason") or None,
            })
        return nodes

    async def jobs(self) -> list[dict[str, Any]]:
        """AiKore's active jobs, with their processes' CPU time and memory from ``sstat`` where it works.

        ``sstat`` needs job accounting on the nodes (``JobAcctGatherType``); without it, or for a
        job still pending, the figures are null.
        """
        jobs = sorted(self._jobs.values(), key=lambda j: j.job_id)
        running = [j.job_id for j in jobs if j.state == "RUNNING"]
        usage: dict[int, tuple[float | None, int | None]] = {}
        if running:
            with contextlib.suppress(SlurmError):
                out = await self.command("sstat", "-n", "-P", "-j", ",".join(f"{j}.batch" for j in running),
                                         "-o", "JobID,AveCPU,MaxRSS")
                for line in out.splitlines():
                    job, cpu, rss = [*line.split("|"), "", ""][:3]
                    if job.split(".")[0].isdigit():
                        usage[int(job.split(".")[0])] = (parse_duration(cpu), parse_size(rss))
        return [{"job_id": j.job_id, "name": j.name, "state": j.state.lower(), "node": j.node or None,
                 "reason": j.reason if j.state == "PENDING" else None,
                 "cpu_seconds": usage.get(j.job_id, (None, None))[0],
                 "memory_bytes": usage.get(j.job_id, (None, None))[1]} for j in jobs]

    # -- the launcher -------------------------------------------------------------------------

    async def submit(
        self, argv: Sequence[str], cwd: Path, env: Mapping[str, str], log_dir: Path, request: JobRequest,
        name: str, launch_id: str,
    ) -> JobHandle:
        """Submit ``argv`` (the logwriter running launch.sh) as a batch job; its handle."""
        endpoint = _fresh_endpoint(log_dir)
        addresses = ",".join(f"{n['name']}={n['address']}" for n in await self.nodes())
        # The job's first program finds the node's address and a port, then becomes ``argv``.
        wrapped = [sys.executable, "-I", slurmjob.__file__, "--endpoint", str(endpoint), "--addresses", addresses,
                   "--", *argv]
        sbatch = [
            "sbatch", "--parsable", f"--job-name={JOB_PREFIX}{name}", f"--comment={COMMENT_PREFIX}{launch_id}",
            f"--chdir={cwd}", f"--output={log_dir / JOB_OUTPUT}", "--open-mode=append", "--export=ALL",
            # A node failure ends the job (NODE_FAIL, an error): AiKore's restart policy decides what
            # follows, not a silent requeue that would leave the route pointing at the old node.
            "--no-requeue",
            *request.sbatch_args(), "--wrap", f"exec {shlex.join(wrapped)}",
        ]
        proc = await asyncio.create_subprocess_exec(
            *sbatch, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=dict(env)
        )
        out, err = await proc.communicate()
        if proc.returncode != 0:
            raise SlurmError(f"sbatch refused the job: {err.decode(errors='replace').strip()}")
        job_id = int(out.decode().strip().split(";")[0])
        await self.refresh()
        info = self._jobs.get(job_id)
        self._watched.add(job_id)
        log.info("instance %s: submitted Slurm job %s (%s)", name, job_id, " ".join(request.sbatch_args()))
        submitted = info.submitted if info is not None and info.submitted is not None else 0.0
        return JobHandle(self, job_id, submitted, launch_id, endpoint)

    def adopt_job(self, job_id: int, submitted: float, launch_id: str, log_dir: Path) -> JobHandle | None:
        """The job of an earlier AiKore if Slurm still runs it as that launch (same id, submit time, comment)."""
        info = self._jobs.get(job_id)
        if info is None or not info.active or info.comment != COMMENT_PREFIX + launch_id:
            return None
        if info.submitted is not None and submitted and abs(info.submitted - submitted) > 1.0:
            return None
        self._watched.add(job_id)
        return JobHandle(self, job_id, submitted, launch_id, log_dir / ENDPOINT_FILE)

    def job(self, job_id: int) -> JobInfo | None:
        return self._jobs.get(job_id)

    def ended(self, job_id: int) -> JobEnd | None:
        return self._ends.get(job_id)

    def jobs_of(self, launch_id: str) -> list[int]:
        """Active jobs that carry a launch's comment (found again by comment, not by a stored id)."""
        return [j.job_id for j in self._jobs.values() if j.comment == COMMENT_PREFIX + launch_id and j.active]

    async def terminate(self, handle: Handle | None, marker: str, grace: float, cgroup: str | None = None) -> None:
        """``scancel`` the launch's jobs (Slurm signals the whole tree), wait ``grace``, then kill them.

        Slurm failing to answer for a moment is waited out until the deadline, not taken as "gone".
        """
        with contextlib.suppress(SlurmError):
            await self.refresh()
        ids = set(self.jobs_of(marker))
        if handle is not None and handle.poll() is None:
            ids.add(handle.pid)
        if not ids:
            return
        self._watched.update(ids)
        with contextlib.suppress(SlurmError):
            await self.command("scancel", *map(str, sorted(ids)))
        if await self._wait_ended(ids, grace):
            return
        with contextlib.suppress(SlurmError):
            await self.command("scancel", "--signal=KILL", "--full", *map(str, sorted(ids)))
        if not await self._wait_ended(ids, _KILL_WAIT):
            log.error("Slurm jobs %s of launch %s did not end after scancel", sorted(ids), marker)

    async def _wait_ended(self, ids: set[int], within: float) -> bool:
        deadline = time.monotonic() + within
        while True:
            try:
                await self.refresh()
                if all(j not in self._jobs or not self._jobs[j].active for j in ids):
                    return True
            except SlurmError as exc:
                log.warning("waiting for Slurm jobs %s to end: %s", sorted(ids), exc)
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.2)

    async def leftovers(self, marker: str, cgroup: str | None = None) -> int:
        """How many jobs of a launch Slurm still runs or holds (as last seen, if it does not answer now)."""
        with contextlib.suppress(SlurmError):
            await self.refresh()
        return len(self.jobs_of(marker))

    async def probe(self, port: int, path: str, owners: Sequence[Owner] = ()) -> bool:
        """Whether the app answers below 500 at the address its job reported."""
        host = next((e.host for o in owners if isinstance(o.handle, JobHandle) and (e := o.handle.endpoint())), None)
        if host is None:
            return False
        return await self._health.answers(f"http://{host}:{port}{path}")

    def make_cgroup(self, launch_id: str) -> str | None:
        return None  # the node's slurmd holds the job's processes, not this machine

    def remove_cgroup(self, cgroup: str | None) -> None:
        return None

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Read the queue and the partitions once (re-adoption needs them), then poll in the background."""
        try:
            await self.refresh()
            await self.partitions()
        except SlurmError as exc:
            log.error("Slurm does not answer (%s); instances on it are seen once it does", exc)
        self._poller = asyncio.create_task(self._poll(), name="aikore-slurm-poller")

    async def _poll(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.refresh()
                await self.partitions()
                if failing:
                    log.info("Slurm answers again")
                failing = False
            except SlurmError as exc:
                if not failing:
                    log.warning("Slurm does not answer: %s", exc)
                failing = True

    async def close(self) -> None:
        task, self._poller = self._poller, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._health.close()


def _fresh_endpoint(log_dir: Path) -> Path:
    """The endpoint file's path, with the last job's file gone (it names an older job)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    endpoint = log_dir / ENDPOINT_FILE
    endpoint.unlink(missing_ok=True)
    return endpoint


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None
