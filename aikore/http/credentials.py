"""The secrets a person or script proves itself with: the token, and the optional password.

The token is ``--token``/``AIKORE_TOKEN`` or, failing that, a random one kept in the data dir;
the password (``AIKORE_PASSWORD``) is only ever held as a salted scrypt hash. Every check from a
client address goes through the login limiter, which refuses (429) once too many have failed.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets

from aiohttp import hdrs
from multidict import CIMultiDict, CIMultiDictProxy

from aikore.config import Settings
from aikore.errors import AikoreError
from aikore.http.ratelimit import LoginLimiter
from aikore.http.secretfiles import read_or_create_secret

log = logging.getLogger(__name__)

_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}
_SHORT_TOKEN = 16


class TooManyAttempts(AikoreError):
    """The client address is over the failed-login limit: 429 with Retry-After."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "too_many_requests", f"too many failed login attempts; retry in {retry_after} s", 429,
            headers={hdrs.RETRY_AFTER: str(retry_after)},
        )
        self.retry_after = retry_after


class Credentials:
    """The token and password hash, checked in constant time and counted by the limiter."""

    def __init__(self, settings: Settings, limiter: LoginLimiter) -> None:
        self.settings = settings
        self.limiter = limiter
        self._token: str | None = None
        self._password: tuple[bytes, bytes] | None = None

    @property
    def token(self) -> str:
        if self._token is None:
            raise RuntimeError("credentials are not loaded")
        return self._token

    def load(self) -> None:
        """Read or create the token under the data dir; hash the password."""
        given = self.settings.token
        self._token = given or read_or_create_secret(self.settings.token_path)
        if given and len(given) < _SHORT_TOKEN:
            log.warning("the --token/AIKORE_TOKEN value is short (%d characters); use %d or more",
                        len(given), _SHORT_TOKEN)
        if self.settings.password:
            salt = secrets.token_bytes(16)
            self._password = (salt, _scrypt(self.settings.password, salt))

    @property
    def fingerprint(self) -> bytes:
        """Stands for the token and password together; sessions are signed with it mixed in."""
        # The password's hash is salted afresh each start, so it cannot serve here.
        password = (self.settings.password or "").encode("utf-8", errors="surrogatepass")
        return hashlib.sha256(self.token.encode()).digest() + hashlib.sha256(password).digest()

    def token_matches(self, candidate: str) -> bool:
        return self._token is not None and hmac.compare_digest(candidate.encode(), self._token.encode())

    def password_matches(self, candidate: str) -> bool:
        if self._password is None:
            return False
        salt, expected = self._password
        return hmac.compare_digest(_scrypt(candidate, salt), expected)

    async def verify(self, address: str, *, token: str | None = None, password: str | None = None) -> bool:
        """Check a token or password from ``address``, counting failures; raises TooManyAttempts.

        The attempt is counted before the check runs (and taken back when it was right): the
        scrypt of a password takes long enough for many attempts to arrive meanwhile.
        """
        wait = self.limiter.acquire(address)
        if wait is not None:
            raise TooManyAttempts(wait)
        ok = False
        if token is not None:
            ok = self.token_matches(token)
        elif password is not None and self._password is not None:
            # scrypt takes tens of milliseconds on purpose; keep the event loop free meanwhile.
            ok = await asyncio.to_thread(self.password_matches, password)
        if ok:
            self.limiter.release(address)
        else:
            log.warning("failed login from %s", address)
        return ok

    def record_failure(self, address: str) -> None:
        """Count one wrong token or password from ``address`` toward the limit."""
        self.limiter.fail(address)
        log.warning("failed login from %s", address)


def bearer_of(headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, if there is one."""
    return bearer_token(headers.get(hdrs.AUTHORIZATION, ""))


def bearer_token(authorization: str) -> str | None:
    """The token of one ``Bearer <token>`` Authorization value, if it is one."""
    scheme, _, value = authorization.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _scrypt(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode("utf-8", errors="surrogatepass"), salt=salt, **_SCRYPT)
