"""What the file browser does to confined paths: list, make a folder, rename, trash, text, upload."""

from __future__ import annotations

import asyncio
import errno
import os
import secrets
import shutil
import stat
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aikore.errors import AikoreError
from aikore.files.confine import check_name, relative_to

# Text the editor opens: a launch script, a config file, a workflow; not a model.
MAX_TEXT = 2 * 1024 * 1024
# Half-written uploads; hidden from listings and removed when the upload fails.
UPLOAD_PREFIX = ".upload-"
# A root on another filesystem than the data dir keeps its deleted entries here (a rename, not a copy).
LOCAL_TRASH = ".aikore-trash"
# The outputs gallery's thumbnail cache (aikore.outputs.thumbnails.CACHE_DIR) is AiKore's, not the user's.
_HIDDEN = (UPLOAD_PREFIX, LOCAL_TRASH, ".thumbnails")


def entry_json(root: Path, path: Path) -> dict[str, Any]:
    st = path.lstat()
    kind = "dir" if stat.S_ISDIR(st.st_mode) else "link" if stat.S_ISLNK(st.st_mode) else "file"
    if kind == "link":
        real = path.resolve()
        kind = "dir-link" if real.is_dir() else "file-link"
    return {"name": path.name, "path": relative_to(root, path), "type": kind, "size": st.st_size, "mtime": st.st_mtime}


def list_dir(root: Path, folder: Path) -> list[dict[str, Any]]:
    """Folders first, then files, each by name; half-written uploads and the local trash left out."""
    if not folder.is_dir():
        raise _missing(root, folder, "folder")
    entries = []
    with os.scandir(folder) as it:
        for entry in it:
            if not entry.name.startswith(_HIDDEN):
                try:
                    entries.append(entry_json(root, Path(entry.path)))
                except FileNotFoundError:
                    continue  # went away while listed
    return sorted(entries, key=lambda e: (e["type"] not in ("dir", "dir-link"), e["name"].lower()))


def make_dir(root: Path, parent: Path, name: str) -> Path:
    target = parent / check_name(name)
    if not parent.is_dir():
        raise _missing(root, parent, "folder")
    try:
        target.mkdir()
    except FileExistsError:
        raise AikoreError("exists", f"name: {name!r} already exists", 409, field="name") from None
    return target


def rename(root: Path, source: Path, name: str) -> Path:
    """Rename within the same folder; never over an existing entry."""
    if source == root.resolve():
        raise AikoreError("invalid_path", "path: the top folder cannot be renamed", 400, field="path")
    if not os.path.lexists(source):
        raise _missing(root, source, "entry")
    target = source.parent / check_name(name)
    if os.path.lexists(target):
        raise AikoreError("exists", f"name: {name!r} already exists", 409, field="name")
    os.rename(source, target)
    return target


def trash(root: Path, source: Path, trash_dir: Path, label: str) -> Path:
    """Move an entry to the trash: ``<data>/trash/files/`` or, across filesystems, the root's own."""
    if source == root.resolve():
        raise AikoreError("invalid_path", "path: the top folder cannot be deleted", 400, field="path")
    if not os.path.lexists(source):
        raise _missing(root, source, "entry")
    stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
    name = f"{label}-{stamp}-{source.name}"
    for folder in (trash_dir / "files", root.resolve() / LOCAL_TRASH):
        folder.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(source, folder / name)
            return folder / name
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
    raise AikoreError("trash_failed", "could not move the entry to a trash folder", 500)


def read_text(root: Path, path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise _missing(root, path, "file")
    st = path.stat()
    if st.st_size > MAX_TEXT:
        raise AikoreError("too_large", f"path: larger than {MAX_TEXT} bytes, download it instead", 413, field="path")
    data = path.read_bytes()
    try:
        content = data.decode("utf-8")
    except UnicodeDecodeError:
        raise AikoreError("not_text", "path: not UTF-8 text", 415, field="path") from None
    return {"path": relative_to(root, path), "content": content, "mtime": st.st_mtime}


def write_text(root: Path, path: Path, content: str) -> dict[str, Any]:
    """Replace (or create) a text file whole: written beside it, then renamed over it."""
    if not path.parent.is_dir():
        raise _missing(root, path.parent, "folder")
    if path.is_dir():
        raise AikoreError("is_a_folder", "path: is a folder", 409, field="path")
    temp = path.parent / f"{UPLOAD_PREFIX}{secrets.token_hex(6)}-{path.name}"
    try:
        temp.write_text(content, encoding="utf-8")
        if path.exists():
            shutil.copymode(path, temp)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return entry_json(root, path)


async def receive(root: Path, path: Path, chunks: AsyncIterator[bytes], overwrite: bool) -> dict[str, Any]:
    """Stream an upload to a hidden name beside its target, then rename it into place."""
    temp = await asyncio.to_thread(_upload_temp, root, path, overwrite)
    try:
        out = await asyncio.to_thread(open, temp, "wb")
        with out:
            async for chunk in chunks:
                await asyncio.to_thread(out.write, chunk)
        await asyncio.to_thread(os.replace, temp, path)
    finally:
        await asyncio.to_thread(temp.unlink, missing_ok=True)
    return await asyncio.to_thread(entry_json, root, path)


def _upload_temp(root: Path, path: Path, overwrite: bool) -> Path:
    """The hidden name an upload is written to (made here, empty), after checking its target."""
    check_name(path.name)
    if not path.parent.is_dir():
        raise _missing(root, path.parent, "folder")
    if path.is_dir() or (not overwrite and os.path.lexists(path)):
        raise AikoreError("exists", f"path: {path.name!r} already exists", 409, field="path")
    temp = path.parent / f"{UPLOAD_PREFIX}{secrets.token_hex(6)}-{path.name}"
    temp.touch(exist_ok=False)
    return temp


def _missing(root: Path, path: Path, what: str) -> AikoreError:
    return AikoreError("not_found", f"path: no {what} {relative_to(root, path)!r}", 404, field="path")
