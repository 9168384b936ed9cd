"""What AiKore keeps private to the user it runs as, whatever the umask it was started with.

The data dir holds the token, the session key, the database and every instance's scripts, logs
and outputs; a log can hold whatever an app printed (tokens and keys included). The data dir and
each instance folder are 0700, the database and its -wal/-shm files 0600, logs 0600.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

FOLDER_MODE = 0o700
FILE_MODE = 0o600


def private_folder(path: Path) -> None:
    """Make ``path`` (an existing folder) this user's only; a folder AiKore does not own is left, with a warning."""
    try:
        if path.stat().st_mode & 0o777 != FOLDER_MODE:
            path.chmod(FOLDER_MODE)
    except PermissionError as exc:
        log.warning("cannot make %s private (mode 700): %s", path, exc.strerror)


def private_data_dir(data_dir: Path, instances_dir: Path) -> None:
    """The data dir, the instances folder and every instance folder in it (an older AiKore's too)."""
    private_folder(data_dir)
    private_folder(instances_dir)
    for folder in instances_dir.iterdir():
        if folder.is_dir() and not folder.is_symlink():
            private_folder(folder)


def private_database(path: Path) -> None:
    """Create the database file 0600 before SQLite does (it would use 0644), and fix older ones.

    SQLite gives the -wal and -shm files the database file's mode when it creates them.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    for suffix in ("-wal", "-shm"):
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            companion.chmod(FILE_MODE)
