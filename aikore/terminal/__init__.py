"""Web terminals: shells on PTYs, one per browser tab, in an instance's environment or AiKore's own.

``setup_terminal(app)`` keeps the registry under ``TERMINALS`` and ends every shell on shutdown.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from aiohttp import web

from aikore.config import Settings
from aikore.errors import AikoreError
from aikore.store.instance import Instance
from aikore.supervisor.process import instance_env
from aikore.terminal.session import TerminalSession

__all__ = ["TERMINALS", "TerminalSession", "Terminals", "aikore_env", "session_json", "setup_terminal", "shell_env"]

# A shell is a process and a PTY: a bound keeps a forgotten "keep" from piling them up.
MAX_SESSIONS = 32
# The instance's Python environment, made by its blueprint (blueprints/lib) under INSTANCE_CONF_DIR.
VENV_DIR = "env"
_SECRET_ENV = frozenset({"AIKORE_TOKEN", "AIKORE_PASSWORD"})


class Terminals:
    """Every open shell, by session id."""

    def __init__(self) -> None:
        self._sessions: dict[str, TerminalSession] = {}

    async def open(self, title: str, cwd: Path, env: Mapping[str, str], keep: bool, cols: int, rows: int,
                   owner: int | None = None) -> TerminalSession:
        self._forget_ended()
        if len(self._sessions) >= MAX_SESSIONS:
            raise AikoreError("too_many_terminals", f"at most {MAX_SESSIONS} terminals are open at once", 409)
        session = TerminalSession(title, cwd, env, keep=keep, owner=owner)
        await session.start(cols, rows)
        self._sessions[session.id] = session
        return session

    def get(self, session_id: str) -> TerminalSession:
        session = self._sessions.get(session_id)
        if session is None or not session.alive:
            raise AikoreError("not_found", f"no terminal session {session_id[:40]!r}", 404)
        return session

    def list(self) -> list[TerminalSession]:
        self._forget_ended()
        return sorted(self._sessions.values(), key=lambda s: s.created)

    async def end(self, session_id: str) -> None:
        session = self.get(session_id)
        await session.end()
        self._sessions.pop(session_id, None)

    async def close(self) -> None:
        await asyncio.gather(*(s.end() for s in self._sessions.values()))
        self._sessions.clear()

    def _forget_ended(self) -> None:
        for sid in [sid for sid, s in self._sessions.items() if not s.alive]:
            del self._sessions[sid]


TERMINALS = web.AppKey("terminals", Terminals)


def setup_terminal(app: web.Application) -> None:
    app[TERMINALS] = Terminals()
    app.cleanup_ctx.append(_terminals_ctx)


async def _terminals_ctx(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[TERMINALS].close()


def shell_env(
    settings: Settings, instance: Instance, folder: Path, base: Mapping[str, str] | None = None,
    satellite_of: tuple[str, Path] | None = None,
) -> dict[str, str]:
    """What the instance's launch.sh sees, with its Python environment activated when it has one
    (a satellite's: its parent's)."""
    env = instance_env(settings, instance, folder, instance.port or 0, rebuild=False, base=base,
                       satellite_of=satellite_of)
    venv = Path(env["INSTANCE_CONF_DIR"]) / VENV_DIR
    if (venv / "bin" / "python").exists():
        env["VIRTUAL_ENV"] = str(venv)
        env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', os.defpath)}"
        env.pop("PYTHONHOME", None)
    return env


def aikore_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """AiKore's own environment for its own shell, minus the secrets."""
    return {k: v for k, v in (os.environ if base is None else base).items() if k not in _SECRET_ENV}


def session_json(session: TerminalSession) -> dict[str, Any]:
    return {
        "id": session.id, "title": session.title, "instance_id": session.owner, "keep": session.keep,
        "attached": session.attached, "pid": session.pid, "created": session.created,
    }
