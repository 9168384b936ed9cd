"""Browser sessions: the signed ``aikore_session`` cookie a browser gets by logging in.

The cookie value is ``<id>.<expiry>.<signature>``: nothing is stored per session, so sessions
survive restarts. The signing key is derived from a secret in the data dir and the current token
and password, so changing either ends every session; a logout is remembered on disk until the
session would have expired anyway.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from aikore.http.forwarded import Peer
from aikore.http.secretfiles import load_revoked, read_or_create_secret, save_revoked

COOKIE_NAME = "aikore_session"
# Longer than any cookie we sign; a bigger value is refused before any hashing.
_MAX_COOKIE = 256
# Distinct verified cookie values remembered (a few per browser; cleared when full).
_VERIFIED_CACHE = 4096


@dataclass(frozen=True, slots=True)
class Session:
    """A browser login: an id (for logout), when it ends, and the signed cookie value."""

    id: str
    expires_at: float
    cookie: str


class Sessions:
    """Opens, checks and revokes sessions, and puts their cookie on responses."""

    def __init__(self, data_dir: Path, ttl: float, *, clock: Callable[[], float] = time.time) -> None:
        self.ttl = ttl
        self._key_path = data_dir / "session.key"
        self._revoked_path = data_dir / "sessions-revoked.json"
        self._clock = clock
        self._signing_key = b""
        self._revoked: dict[str, float] = {}
        # Cookie values whose signature was checked: a browser sends the same one request after
        # request. Only the HMAC is remembered; expiry and logout are checked every time.
        self._verified: dict[str, Session] = {}
        # Live streams opened by a session, set when it logs out so they end at once.
        self._watchers: dict[str, set[asyncio.Event]] = {}

    def load(self, fingerprint: bytes) -> None:
        """Read or create the session key; ``fingerprint`` binds sessions to the current credentials."""
        secret = read_or_create_secret(self._key_path).encode()
        self._signing_key = hmac.new(secret, b"aikore-session-v1\0" + fingerprint, hashlib.sha256).digest()
        self._revoked = load_revoked(self._revoked_path, self._clock())
        self._verified.clear()

    def open(self) -> Session:
        """A new session, ending ``ttl`` seconds from now."""
        sid = secrets.token_urlsafe(18)
        expires = int(self._clock() + self.ttl)
        payload = f"{sid}.{expires}"
        return Session(sid, float(expires), f"{payload}.{self._sign(payload)}")

    def from_cookie(self, value: str | None) -> Session | None:
        """The session a cookie value stands for, if it is ours, unexpired and not logged out."""
        if not value:
            return None
        session = self._verified.get(value) or self._verify(value)
        if session is None or session.expires_at <= self._clock() or session.id in self._revoked:
            return None
        return session

    def _verify(self, value: str) -> Session | None:
        if len(value) > _MAX_COOKIE or not self._signing_key:
            return None
        parts = value.split(".")
        if len(parts) != 3 or not (parts[1].isascii() and parts[1].isdigit()):
            return None
        sid, expires_text, signature = parts
        if not hmac.compare_digest(signature.encode(), self._sign(f"{sid}.{expires_text}").encode()):
            return None
        if len(self._verified) >= _VERIFIED_CACHE:
            self._verified.clear()
        session = self._verified[value] = Session(sid, float(expires_text), value)
        return session

    def revoke(self, session: Session) -> None:
        """Log a session out for good (kept on disk until it would have expired anyway)."""
        now = self._clock()
        self._revoked = {sid: exp for sid, exp in self._revoked.items() if exp > now}
        self._revoked[session.id] = session.expires_at
        save_revoked(self._revoked_path, self._revoked)
        for ended in self._watchers.pop(session.id, set()):
            ended.set()

    @contextlib.contextmanager
    def watch(self, session: Session) -> Iterator[asyncio.Event]:
        """An event set when ``session`` logs out, while the caller (a live stream) holds it."""
        ended = asyncio.Event()
        watchers = self._watchers.setdefault(session.id, set())
        watchers.add(ended)
        try:
            yield ended
        finally:
            watchers.discard(ended)
            if not watchers and self._watchers.get(session.id) is watchers:
                del self._watchers[session.id]

    def set_cookie(self, response: web.StreamResponse, session: Session, peer: Peer) -> None:
        response.set_cookie(
            COOKIE_NAME,
            session.cookie,
            max_age=int(self.ttl),
            path="/",
            httponly=True,
            samesite="Lax",
            secure=peer.scheme == "https",
        )

    def clear_cookie(self, response: web.StreamResponse) -> None:
        response.del_cookie(COOKIE_NAME, path="/")

    def _sign(self, payload: str) -> str:
        digest = hmac.new(self._signing_key, payload.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
