"""Running git and uv for the versions package: off the event loop, bounded, never left behind.

Each command runs in its own process group; a timeout or a cancellation (AiKore shutting down)
kills the whole group and waits for it, so no git or uv outlives the operation that started it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from aikore.errors import AikoreError

# Enough for a slow remote or a big package set; a hung command must not hold an instance forever.
DEFAULT_TIMEOUT = 600.0


@dataclass(frozen=True)
class Completed:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def reason(self) -> str:
        """The last lines the command printed on stderr (or stdout), for an error message."""
        text = (self.stderr.strip() or self.stdout.strip() or f"exit code {self.returncode}").splitlines()
        return " / ".join(line.strip() for line in text[-3:])


class CommandTimeout(Exception):
    """The command ran past its time and was killed."""


async def run(
    argv: Sequence[str], *, cwd: Path | None = None, env: Mapping[str, str] | None = None,
    limit: float = DEFAULT_TIMEOUT,
) -> Completed:
    """Run ``argv`` to its end; its output is kept in memory (git and uv print little)."""
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=cwd, env=dict(env) if env is not None else None, start_new_session=True,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), limit)
    except TimeoutError:
        await _kill(proc)
        raise CommandTimeout(f"{argv[0]} {argv[1] if len(argv) > 1 else ''} ran past {limit:g} s") from None
    except BaseException:
        await asyncio.shield(_kill(proc))
        raise
    assert proc.returncode is not None
    return Completed(tuple(argv), proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"))


async def _kill(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        await proc.wait()


def find_uv(env: Mapping[str, str]) -> str:
    """The uv that blueprints use (on PATH), else the one installed beside AiKore's Python."""
    found = shutil.which("uv", path=env.get("PATH")) or shutil.which("uv", path=str(Path(sys.executable).parent))
    if found is None:
        raise AikoreError("uv_missing", "uv is not installed: 'pip install uv' (it is in AiKore's Docker image)", 409)
    return found
