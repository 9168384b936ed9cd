"""Instance logs: the logwriter (separator per start, size rotation, exit status), tail, follow, download."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from aiohttp.test_utils import TestClient

from aikore.supervisor import logwriter
from aikore.supervisor.logs import InstanceLog, this_run
from aikore.supervisor.states import RUNNING
from tests.helpers import until

from .conftest import MakeClient, api, create, status_is


def _run_writer(log: Path, script: str, max_bytes: int = 10_000, backups: int = 3) -> int:
    cmd = [
        sys.executable, "-I", logwriter.__file__, "--log", str(log), "--max-bytes", str(max_bytes),
        "--backups", str(backups), "--status", str(log.with_suffix(".exit.json")), "--banner", "start of t",
        "--", "bash", "-c", script,
    ]
    return subprocess.run(cmd, timeout=60, check=False).returncode


def _kept_text(log: InstanceLog) -> str:
    return "".join(p.read_text() for p in log.files())


def test_logwriter_appends_a_dated_separator_per_start_and_never_truncates(tmp_path: Path) -> None:
    log = InstanceLog(tmp_path, backups=3)
    assert _run_writer(log.path, "echo first run; echo to stderr >&2; exit 4") == 4
    assert _run_writer(log.path, "echo second run") == 0
    text = log.path.read_text()
    assert text.index("first run") < text.index("second run")
    assert "to stderr" in text
    assert text.count("start of t") == 2 and "UTC start of t" in text
    assert "exited with code 4" in text and "exited with code 0" in text
    assert json.loads(log.path.with_suffix(".exit.json").read_text())["exit_code"] == 0


def test_logwriter_rotates_by_size_keeping_whole_lines_and_the_backup_count(tmp_path: Path) -> None:
    log = InstanceLog(tmp_path, backups=3)
    # 2000 numbered lines (about 20 kB) through a 4 kB limit: rotation happens while it runs.
    assert _run_writer(log.path, "for i in $(seq 1 2000); do echo line-$i-padding; done", max_bytes=4000) == 0
    files = log.files()
    assert [p.name for p in files] == ["instance.log.3", "instance.log.2", "instance.log.1", "instance.log"]
    for path in files[:-1]:
        size = path.stat().st_size
        assert 3000 < size <= 4000 and path.read_bytes().endswith(b"\n")
    numbers = [int(line.split("-")[1]) for line in _kept_text(log).splitlines() if line.startswith("line-")]
    # What is kept is the newest part, contiguous, in order: nothing inside it was lost.
    assert numbers == list(range(numbers[0], 2001))
    assert numbers[0] > 1  # older lines went with the oldest rotated file


def test_logwriter_exit_status_of_a_signal_is_128_plus_signal(tmp_path: Path) -> None:
    log = InstanceLog(tmp_path, backups=1)
    assert _run_writer(log.path, "kill -KILL $$") == 137
    assert log.last_exit(12345678) is None  # another logwriter's status is never taken for this one


def test_tail_spans_rotated_files(tmp_path: Path) -> None:
    log = InstanceLog(tmp_path, backups=5)
    _run_writer(log.path, "for i in $(seq 1 300); do echo row $i; done", max_bytes=500)
    last = log.tail(120)
    rows = [line for line in last if line.startswith("row ")]
    assert rows[-1] == "row 300" and len(last) == 120
    assert len(log.files()) > 2


async def _sse_texts(client: TestClient, path: str, want: str, within: float = 30.0) -> str:
    """Read an SSE log stream until ``want`` appears; return all text received."""
    text = ""
    async with client.get(path) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/event-stream")

        async def read() -> None:
            nonlocal text
            async for raw in resp.content:
                line = raw.decode()
                if line.startswith("data: "):
                    text += json.loads(line[6:])["text"]
                    if want in text:
                        return

        await asyncio.wait_for(read(), within)
    return text


async def test_logs_tail_stream_and_download_of_a_chatty_instance_across_rotation(make_client: MakeClient) -> None:
    client = await make_client(log_max_bytes=800, log_backups=50)
    inst = await create(client, "chat", "chatty")
    await api(client, "POST", f"/api/instances/{inst['id']}/start")
    await status_is(client, inst["id"], RUNNING)
    tail = await until(lambda: _tail_with_ticks(client, inst["id"]), what="ticks in the log")
    first_tick = int(tail[-1].split()[1])
    log = InstanceLog(_folder(client, "chat"), backups=50)
    files_before = len(log.files())
    # The stream starts with a backfill of the last lines, then follows across rotations.
    target = f"tick {first_tick + 300}\n"
    text = await _sse_texts(client, f"/api/instances/{inst['id']}/logs/stream?tail=5", target)
    ticks = [int(line.split()[1]) for line in text.splitlines() if line.startswith("tick ")]
    assert ticks[0] <= first_tick + 5
    assert ticks == list(range(ticks[0], ticks[-1] + 1)), "a line was lost or repeated while following"
    assert len(log.files()) >= files_before + 2, "the follow must have crossed rotations"
    resp = await client.get(f"/api/instances/{inst['id']}/logs/download")
    assert resp.status == 200 and 'filename="chat.log"' in resp.headers["Content-Disposition"]
    body = (await resp.read()).decode()
    assert "start of chat" in body and target in body


def _folder(client: TestClient, name: str) -> Path:
    from aikore.store import WORKSPACE

    return client.app[WORKSPACE].path(name)


async def _tail_with_ticks(client: TestClient, instance_id: int) -> list[str] | None:
    data = await api(client, "GET", f"/api/instances/{instance_id}/logs?tail=3")
    return data["lines"] if len(data["lines"]) == 3 and all(x.startswith("tick ") for x in data["lines"]) else None


async def test_logs_parameters_are_checked(make_client: MakeClient) -> None:
    client = await make_client()
    inst = await create(client, "web", "demo")
    bad = await api(client, "GET", f"/api/instances/{inst['id']}/logs?tail=-1", status=400)
    assert "tail" in bad["error"]["message"]
    bad = await api(client, "GET", f"/api/instances/{inst['id']}/logs?source=../x", status=400)
    assert "source" in bad["error"]["message"]
    empty = await api(client, "GET", f"/api/instances/{inst['id']}/logs")
    assert empty["lines"] == []
    await api(client, "GET", "/api/instances/999/logs", status=404)


async def test_follow_reads_files_that_rotated_away_between_two_polls(tmp_path: Path) -> None:
    log = InstanceLog(tmp_path, backups=10)
    writer = logwriter.RotatingFile(log.path, max_bytes=200, backups=10)
    writer.write(b"old line\n")
    closing = asyncio.Event()
    follow = log.follow(1, closing)
    received = [await anext(follow)]
    assert received == ["old line\n"]
    # Several rotations at once, with no chance for the follower to run in between.
    for i in range(100):
        writer.write(f"burst {i:03d}\n".encode())
    assert len(log.files()) >= 5
    text = ""
    while "burst 099" not in text:
        text += await asyncio.wait_for(anext(follow), 10)
    closing.set()
    await follow.aclose()
    writer.close()
    assert [line for line in text.splitlines() if line] == [f"burst {i:03d}" for i in range(100)]


def test_this_run_is_what_follows_the_last_start_banner_without_blanks() -> None:
    lines = [
        "===== 2026-12-04 10:00:00 UTC start of x (logwriter pid 1) =====", "old words",
        "===== 2026-12-04 10:00:05 UTC exited with code 1 =====",
        "===== 2026-12-04 10:01:00 UTC start of x (logwriter pid 2) =====", "new words", "", "  ",
    ]
    assert this_run(lines) == ["new words"]
    assert this_run(["no banner in the tail", ""]) == ["no banner in the tail"]
