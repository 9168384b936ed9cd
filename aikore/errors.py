"""Domain errors: raised anywhere with a stable code, rendered as JSON in one place."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

log = logging.getLogger(__name__)


class AikoreError(Exception):
    """An error a client caused or must know about: HTTP status, stable code, readable message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def not_found(what: str, ident: object) -> AikoreError:
    return AikoreError(404, "not_found", f"{what} {ident!s} does not exist")


def error_response(status: int, code: str, message: str) -> web.Response:
    body = json.dumps({"error": {"code": code, "message": message}})
    return web.Response(status=status, text=body, content_type="application/json")


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


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Turn AikoreError and aiohttp's HTTP errors under /api into the JSON error shape."""
    try:
        return await handler(request)
    except AikoreError as exc:
        return error_response(exc.status, exc.code, exc.message)
    except web.HTTPException as exc:
        if not _is_api(request) or exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        resp = error_response(exc.status, code, exc.reason or code)
        for name in ("Allow", "Retry-After", "WWW-Authenticate"):
            if name in exc.headers:
                resp.headers[name] = exc.headers[name]
        return resp
    except Exception:
        if not _is_api(request):
            raise
        # A bug, not a client error: keep the JSON shape so the dashboard can still show it.
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "internal error; see the AiKore log")


def _is_api(request: web.Request) -> bool:
    return request.path.startswith("/api/") or request.path == "/metrics"
