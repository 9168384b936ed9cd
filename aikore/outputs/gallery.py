"""The images and videos of an output folder, newest first, and their changes over time."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

IMAGE_TYPES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp"})
VIDEO_TYPES = frozenset({".mp4", ".webm", ".mov", ".mkv"})
# How often a live gallery looks for new files (a walk of the folder; no inotify dependency).
POLL = 2.0


def kind_of(path: Path) -> str | None:
    suffix = path.suffix.lower()
    return "image" if suffix in IMAGE_TYPES else "video" if suffix in VIDEO_TYPES else None


def scan(folder: Path) -> dict[str, dict[str, Any]]:
    """Every image and video under ``folder`` (links not followed), by path relative to it."""
    found: dict[str, dict[str, Any]] = {}
    if not folder.is_dir():
        return found
    top = folder.resolve()
    for current, dirs, files in os.walk(top, followlinks=False):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            path = Path(current) / name
            kind = kind_of(path)
            if kind is None or name.startswith("."):
                continue
            try:
                st = path.lstat()
            except FileNotFoundError:
                continue
            if not path.is_symlink():
                rel = path.relative_to(top).as_posix()
                found[rel] = {"path": rel, "name": name, "kind": kind, "size": st.st_size, "mtime": st.st_mtime}
    return found


def newest_first(items: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(items.values(), key=lambda i: (-i["mtime"], i["path"]))


async def changes(folder: Path, closing: asyncio.Event) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """("added", item) for each new or rewritten file, ("removed", {"path"}) for each gone one."""
    known = await asyncio.to_thread(scan, folder)
    while not closing.is_set():
        await asyncio.sleep(POLL)
        now = await asyncio.to_thread(scan, folder)
        for rel, item in sorted(now.items(), key=lambda kv: kv[1]["mtime"]):
            old = known.get(rel)
            if old is None or (old["mtime"], old["size"]) != (item["mtime"], item["size"]):
                yield "added", item
        for rel in known.keys() - now.keys():
            yield "removed", {"path": rel}
        known = now
