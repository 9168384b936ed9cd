"""Copying an instance's installed app and environment into a new instance's folder.

Each file is cloned copy-on-write (the ``FICLONE`` ioctl: btrfs, XFS, bcachefs, OpenZFS 2.2) when
the filesystem allows it, so a 10 GB environment costs no space and seconds; elsewhere it is
copied in the kernel (``shutil.copy2`` uses ``sendfile``). Never hardlinked: an environment and an
app are mutable - pip rewrites files, apps save settings into their own folder with ``open("w")``,
which truncates the inode in place - so through a hardlink one instance's change would silently
become the other's too. A reflink shares blocks only until either side writes.

``shutil.copytree`` walks the tree (directories, modes, symlinks kept as links); this module gives
it the per-file copy, which counts progress and stops at the next file once cancelled. A file
that vanishes while the source runs (a temporary file) is skipped; any other failure stops the
copy at once (a full disk is not retried for every remaining file).

A Python environment records its own absolute path in its scripts (``bin/pip``'s ``#!`` line,
``activate``) and sometimes in ``.pth`` files: ``relocate`` rewrites them to the new folder, so
the copy's tools run the copy's interpreter, not the source's.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

# linux/fs.h: _IOW(0x94, 9, int)
FICLONE = 0x40049409
_NO_REFLINK = {errno.EOPNOTSUPP, errno.ENOTTY, errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EPERM}
# Text files worth rewriting are small; binaries (a NUL early on) are left alone.
_REWRITE_MAX = 4 * 1024 * 1024


class Cancelled(Exception):
    """The copy was cancelled; the caller removes what was built."""


class CopyFailed(Exception):
    """A file could not be copied; ``__cause__`` is the ``OSError``."""

    def __init__(self, path: str, cause: OSError) -> None:
        super().__init__(f"{path}: {cause.strerror or cause}")
        self.path = path
        self.cause = cause


@dataclass(frozen=True)
class Progress:
    files_total: int = 0
    bytes_total: int = 0
    files_done: int = 0
    bytes_done: int = 0
    # Files shared copy-on-write rather than copied.
    reflinked: int = 0


def measure(source: Path) -> Progress:
    """What a copy of ``source`` will have to copy: its regular files and their bytes."""
    files = size = 0
    for folder, _dirs, names in os.walk(source):
        for name in names:
            try:
                st = os.lstat(os.path.join(folder, name))
            except FileNotFoundError:
                continue
            if not os.path.islink(os.path.join(folder, name)):
                files += 1
                size += st.st_size
    return Progress(files_total=files, bytes_total=size)


class TreeCopy:
    """One copy of ``source`` into ``target`` (created), run in a worker thread by the caller."""

    def __init__(self, source: Path, target: Path, on_progress: Callable[[Progress], None]) -> None:
        self.source = source
        self.target = target
        self.on_progress = on_progress
        self.cancelled = threading.Event()
        self.progress = Progress()
        self._reflink = True

    def run(self) -> Progress:
        self.progress = measure(self.source)
        self.on_progress(self.progress)
        try:
            shutil.copytree(self.source, self.target, symlinks=True, copy_function=self._copy_file)
        except shutil.Error as exc:
            # Only directory-level failures (copystat of a folder) reach here; files raise CopyFailed.
            first = exc.args[0][0] if exc.args and exc.args[0] else ("?", "?", "?")
            raise CopyFailed(str(first[0]), OSError(errno.EIO, str(first[2]))) from exc
        except OSError as exc:
            raise CopyFailed(str(self.target), exc) from exc
        return self.progress

    def _copy_file(self, src: str, dst: str) -> str:
        if self.cancelled.is_set():
            raise Cancelled
        try:
            size = os.lstat(src).st_size
            if self._clone(src, dst):
                shutil.copystat(src, dst)
                cloned = 1
            else:
                shutil.copy2(src, dst)
                cloned = 0
        except (FileNotFoundError, shutil.SpecialFileError):
            # Gone since the walk (a temporary file of the running source), or a fifo/socket.
            return dst
        except OSError as exc:
            raise CopyFailed(src, exc) from exc
        p = self.progress
        self.progress = replace(p, files_done=p.files_done + 1, bytes_done=p.bytes_done + size,
                                reflinked=p.reflinked + cloned)
        self.on_progress(self.progress)
        return dst

    def _clone(self, src: str, dst: str) -> bool:
        """Share the file's blocks (copy-on-write); False where this filesystem cannot."""
        if not self._reflink:
            return False
        with open(src, "rb") as fsrc, open(dst, "wb") as fdst:
            try:
                fcntl.ioctl(fdst.fileno(), FICLONE, fsrc.fileno())
            except OSError as exc:
                if exc.errno not in _NO_REFLINK:
                    raise
                # Asked once: the rest of the tree is on the same filesystem.
                self._reflink = False
                return False
        return True


def relocate(tree: Path, old: Path, new: Path) -> list[Path]:
    """Rewrite ``old`` to ``new`` in the Python environments under ``tree``; returns the files changed."""
    changed: list[Path] = []
    for folder, dirs, names in os.walk(tree):
        if "pyvenv.cfg" not in names:
            continue
        dirs[:] = []  # an environment holds no other environment
        venv = Path(folder)
        candidates = [p for p in (venv / "bin").glob("*") if p.is_file() and not p.is_symlink()]
        candidates += list(venv.glob("lib/python*/site-packages/*.pth"))
        # With the trailing slash: ``.../config/`` never matches inside ``.../config2/``.
        old_b, new_b = os.fsencode(f"{old}/"), os.fsencode(f"{new}/")
        changed += [path for path in candidates if _rewrite(path, old_b, new_b)]
    return changed


def _rewrite(path: Path, old: bytes, new: bytes) -> bool:
    try:
        if path.stat().st_size > _REWRITE_MAX:
            return False
        data = path.read_bytes()
    except OSError:
        return False
    if b"\0" in data[:8192] or old not in data:
        return False
    fresh = path.with_name(f".{path.name}.relocated")
    fresh.write_bytes(data.replace(old, new))
    shutil.copystat(path, fresh)
    os.replace(fresh, path)
    return True
