"""An app's releases: the tags its remote has (``git ls-remote --tags``), newest first, cached.

Only version tags count as releases (``v1.2.3``, ``1.2``); pre-releases and other names
(``nightly``, ``v2.0-rc1``) are never offered as an update. A remote that cannot be asked (no
network, a private repository) makes the answer unknown, never an error.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass

from aikore.versions.commands import CommandTimeout, run

_VERSION_TAG = re.compile(r"^v?(\d+(?:\.\d+)*)$")
# Releases come out every few days at most; asking the remote more often only costs time.
FRESH_FOR = 15 * 60.0
# A failure (network down) is asked again sooner.
RETRY_AFTER = 60.0
LS_REMOTE_TIMEOUT = 20.0


def version_key(tag: str) -> tuple[int, ...] | None:
    """Sortable form of a release tag; None for anything that is not one."""
    found = _VERSION_TAG.match(tag)
    return tuple(int(part) for part in found.group(1).split(".")) if found else None


def newest(tags: Iterable[str]) -> str | None:
    releases = [tag for tag in tags if version_key(tag) is not None]
    return max(releases, key=lambda tag: version_key(tag) or (), default=None)


def is_newer(candidate: str | None, current: str | None) -> bool | None:
    """Whether release ``candidate`` is newer than ``current``; None when either is no release."""
    new, old = version_key(candidate or ""), version_key(current or "")
    if new is None or old is None:
        return None
    return new > old


@dataclass(frozen=True)
class ReleaseCheck:
    url: str
    tags: tuple[str, ...]
    latest: str | None
    checked_at: float
    # Why the remote could not be asked; the check is then unknown (tags empty).
    error: str | None = None

    @property
    def known(self) -> bool:
        return self.error is None


class Releases:
    """Per-remote cache of release checks; one ``git ls-remote`` at a time per remote."""

    def __init__(self) -> None:
        self._checks: dict[str, ReleaseCheck] = {}
        self._running: dict[str, asyncio.Task[ReleaseCheck]] = {}

    async def check(self, url: str, env: dict[str, str], refresh: bool = False) -> ReleaseCheck:
        cached = self._checks.get(url)
        if cached is not None and not refresh:
            age = time.time() - cached.checked_at
            if age < (FRESH_FOR if cached.known else RETRY_AFTER):
                return cached
        task = self._running.get(url)
        if task is None:
            task = self._running[url] = asyncio.ensure_future(self._ask(url, env))
            task.add_done_callback(lambda _t: self._running.pop(url, None))
        # Shielded: a browser that goes away does not cancel the check others wait for.
        checked = await asyncio.shield(task)
        self._checks[url] = checked
        return checked

    async def close(self) -> None:
        for task in list(self._running.values()):
            task.cancel()
        await asyncio.gather(*self._running.values(), return_exceptions=True)

    async def _ask(self, url: str, env: dict[str, str]) -> ReleaseCheck:
        # Never a password prompt on AiKore's terminal for a private repository.
        quiet = {**env, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "SSH_ASKPASS": "true"}
        try:
            done = await run(["git", "ls-remote", "--tags", "--refs", "--", url], env=quiet,
                             limit=LS_REMOTE_TIMEOUT)
        except CommandTimeout:
            return ReleaseCheck(url, (), None, time.time(), f"the remote did not answer in {LS_REMOTE_TIMEOUT:g} s")
        except OSError as exc:
            return ReleaseCheck(url, (), None, time.time(), f"git could not run: {exc}")
        if not done.ok:
            return ReleaseCheck(url, (), None, time.time(), done.reason())
        tags = tuple(line.split("refs/tags/", 1)[1] for line in done.stdout.splitlines() if "refs/tags/" in line)
        return ReleaseCheck(url, tags, newest(tags), time.time())
