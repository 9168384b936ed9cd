"""What goes wrong with the data dir's storage, as errors a client and an operator can act on.

A change AiKore cannot record is refused, never half made: ``StorageError`` is an ``AikoreError``
(507 when the disk is full, 503 when the database or folder cannot be written), so a view answers
it as JSON and the supervisor knows nothing changed. ``Unusable`` is a refusal to start at all
(a damaged or unwritable database, a data dir another AiKore holds): the CLI prints it and exits.
"""

from __future__ import annotations

import errno
import sqlite3

from aikore.errors import AikoreError

# SQLite's primary result codes (the extended ones carry these in their low byte).
_SQLITE_FULL = 13
_SQLITE_READONLY = 8
_SQLITE_IOERR = 10
_SQLITE_CANTOPEN = 14
_SQLITE_BUSY = 5
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_UNWRITABLE_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO})


class StorageError(AikoreError):
    """A change could not be recorded (nothing of it was made)."""


class Unusable(Exception):
    """AiKore must not start on this data dir; ``message`` says why and what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def disk_full(detail: str) -> StorageError:
    return StorageError(
        "disk_full",
        f"the disk holding AiKore's data is full ({detail}); nothing was changed: free space and retry",
        507,
    )


def unwritable(detail: str) -> StorageError:
    return StorageError(
        "storage_unwritable",
        f"AiKore's database or data folder cannot be written ({detail}); nothing was changed: "
        "make the data dir writable again (read-only mount, immutable file, failing disk?) and retry",
        503,
    )


def from_sqlite(exc: sqlite3.Error) -> StorageError | None:
    """The client-facing error for a failed database write, or None when it is not a storage fault."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:
        return None
    primary = code & 0xFF
    if primary == _SQLITE_FULL:
        return disk_full(str(exc))
    if primary in (_SQLITE_READONLY, _SQLITE_IOERR, _SQLITE_CANTOPEN):
        return unwritable(str(exc))
    if primary == _SQLITE_BUSY:
        return StorageError("storage_busy", f"the database is locked by another program ({exc}); retry", 503)
    return None


def from_os(exc: OSError) -> StorageError | None:
    """The client-facing error for a failed file operation in the data dir, or None."""
    if exc.errno in _FULL_ERRNOS:
        return disk_full(exc.strerror or str(exc))
    if exc.errno in _UNWRITABLE_ERRNOS:
        return unwritable(exc.strerror or str(exc))
    return None
