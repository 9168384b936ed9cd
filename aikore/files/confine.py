"""The one resolver of request paths: a relative path inside a root, or a 4xx."""

from __future__ import annotations

import os
from pathlib import Path

from aikore.errors import AikoreError

MAX_PATH = 4096


def resolve(root: Path, relative: str, follow: bool = True) -> Path:
    """The real path of ``relative`` under ``root``; refused when it is or leads anywhere else.

    ``follow=False`` resolves only the parent, for acting on an entry itself (rename, delete):
    a link inside the root is then moved, not what it points to.
    """
    parts = _parts(relative)
    top = root.resolve()
    if not parts:
        return top
    target = top.joinpath(*parts)
    real = target.resolve() if follow else target.parent.resolve() / target.name
    if not inside(top, real):
        raise AikoreError("outside_root", f"path: {relative[:200]!r} leads outside the folder", 403, field="path")
    return real


def inside(top: Path, path: Path) -> bool:
    return path == top or top in path.parents


def relative_to(root: Path, path: Path) -> str:
    return path.relative_to(root.resolve()).as_posix() if path != root.resolve() else ""


def _parts(relative: str) -> list[str]:
    if len(relative) > MAX_PATH:
        raise AikoreError("invalid_path", f"path: longer than {MAX_PATH} characters", 400, field="path")
    if "\x00" in relative:
        raise AikoreError("invalid_path", "path: contains a NUL byte", 400, field="path")
    if relative.startswith(("/", "\\")) or os.path.isabs(relative):
        raise AikoreError("invalid_path", f"path: {relative[:200]!r} is absolute", 400, field="path")
    parts = [p for p in relative.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise AikoreError("invalid_path", f"path: {relative[:200]!r} climbs out with '..'", 400, field="path")
    return parts


def check_name(name: str) -> str:
    """A single entry name (new folder, rename target): no separators, not '.' or '..'."""
    if not name or name in (".", "..") or "/" in name or "\x00" in name or "\\" in name or len(name) > 255:
        raise AikoreError("invalid_name", f"name: {name[:100]!r} is not a file name", 400, field="name")
    return name
