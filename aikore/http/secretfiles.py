"""The files AiKore's credentials live in: the token, the session key, the logged-out sessions.

All of them are private to the user AiKore runs as (mode 600): anyone who can read the token or
the session key can log in.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from pathlib import Path

log = logging.getLogger(__name__)


def read_or_create_secret(path: Path) -> str:
    """The secret kept in ``path`` (created once, mode 600); an existing file is made private."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        text = ""
    if text:
        if path.stat().st_mode & 0o077:
            log.warning("%s was readable by others; making it private (mode 600)", path)
            path.chmod(0o600)
        return text
    secret = secrets.token_urlsafe(32)
    write_private(path, secret + "\n")
    return secret


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``, readable by this user only."""
    # Created 600 from the start (no window where another user can read it), then moved in.
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def load_revoked(path: Path, now: float) -> dict[str, float]:
    """Logged-out session ids and when each would have expired; expired and unreadable ones are dropped."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): float(v) for k, v in data.items() if isinstance(v, (int, float)) and v > now}


def save_revoked(path: Path, revoked: dict[str, float]) -> None:
    """Keep the logged-out sessions across restarts."""
    write_private(path, json.dumps(revoked))
