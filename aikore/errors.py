"""Domain errors: raised anywhere with a stable code, rendered as JSON in exactly one place.

Every refusal AiKore makes itself - a bad field, an unknown instance, the auth gate's 401/403,
the login limiter's 429 - is an ``AikoreError``; ``render`` is the only code that turns one into
an HTTP answer, so the body always has the documented shape:
``{"error": {"code": ..., "message": ..., "field": ... or null}}``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from aikore.paths import is_api

log = logging.getLogger(__name__)


class AikoreError(Exception):
    """An error a client caused or must know about: stable code, readable message, HTTP status.

    ``field`` names the input field at fault (the dashboard marks it); ``headers`` go with the
    answer (``Retry-After``, ``WWW-Authenticate``).
    """

    def __init__(
        self,
        code: str,
        message: str,
        status: int = 400,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.field = field
        self.headers = dict(headers or {})

    def to_json(self) -> dict[str, dict[str, str | None]]:
        return {"error": {"code": self.code, "message": self.message, "field": self.field}}


def not_found(what: str, ident: object) -> AikoreError:
    return AikoreError("not_found", f"{what} {ident!s} does not exist", 404)


def invalid(field: str, message: str) -> AikoreError:
    """A 400 for one input field; the message starts with the field's name, as every one does."""
    return AikoreError("invalid_field", f"{field}: {message}", 400, field=field)


def render(error: AikoreError) -> web.Response:
    """The one place an AikoreError becomes an HTTP answer."""
    return web.Response(
        status=error.status,
        text=json.dumps(error.to_json()),
        content_type="application/json",
        headers=error.headers,
    )


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}
# aiohttp's own refusals keep these headers when they become JSON.
_KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Turn AikoreError (anywhere) and aiohttp's HTTP errors under /api into the JSON error shape."""
    try:
        return await handler(request)
    except AikoreError as exc:
        return render(exc)
    except web.HTTPException as exc:
        if not is_api(request.path) or exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        headers = {name: exc.headers[name] for name in _KEPT_HEADERS if name in exc.headers}
        return render(AikoreError(code, exc.reason or code, exc.status, headers=headers))
    except Exception:
        if not is_api(request.path):
            raise
        # A bug, not a client error: keep the JSON shape so the dashboard can still show it.
        log.exception("unhandled error on %s %s", request.method, request.path)
        return render(AikoreError("internal_error", "internal error; see the AiKore log", 500))
