"""Plain HTTP forwarding: stream both ways, flat memory, exact headers and status semantics."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from aiohttp import web
from multidict import CIMultiDict

from . import pages
from .headers import PeerInfo, Scrub, downstream_response_headers, rewrite_location, upstream_request_headers
from .table import STARTING, Route
from .upstream import UpstreamConnectError, UpstreamError, UpstreamPool, UpstreamResponse

# Bodies up to this size with a known length are read whole and sent in one write:
# far fewer awaits per request than streaming, and memory stays bounded by the limit.
SMALL_BODY = 64 * 1024

_NO_BODY_STATUSES = frozenset({204, 304})


async def forward_http(
    request: web.Request,
    pool: UpstreamPool,
    route: Route,
    host: str,
    target: str,
    *,
    peer: PeerInfo,
    prefix: str,
    mount: str,
    scrub: Scrub | None = None,
) -> web.StreamResponse:
    """Send one request to the route's app and relay its answer."""
    route.requests += 1
    route.last_activity = time.time()
    port = route.port
    assert port is not None
    headers = upstream_request_headers(request.headers, peer=peer, prefix=prefix, scrub=scrub)
    body = await _request_body(request, route)
    try:
        upstream = await pool.request(host, port, request.method, target, headers, body)
    except UpstreamConnectError:
        if route.state == STARTING:
            return pages.starting(route, pages.dashboard_for(prefix))
        return pages.bad_gateway()
    except UpstreamError:
        return pages.bad_gateway()
    try:
        return await _relay(request, route, upstream, mount, peer.host)
    finally:
        upstream.release()


async def _request_body(request: web.Request, route: Route) -> bytes | AsyncIterator[bytes] | None:
    if not request.body_exists:
        return None
    length = request.content_length
    if length is not None and length <= SMALL_BODY:
        body = await request.read()
        route.bytes_in += len(body)
        return body
    return _counted_upload(request, route)


async def _counted_upload(request: web.Request, route: Route) -> AsyncIterator[bytes]:
    # The upstream writer drains after each piece, so a slow app slows the browser instead of
    # the upload piling up here.
    async for chunk in request.content.iter_any():
        route.bytes_in += len(chunk)
        route.last_activity = time.time()
        yield chunk


async def _relay(
    request: web.Request, route: Route, upstream: UpstreamResponse, mount: str, host: str
) -> web.StreamResponse:
    status = upstream.status
    headers = downstream_response_headers(upstream.headers)
    location = headers.get("Location")
    if location is not None:
        headers["Location"] = rewrite_location(location, mount=mount, own_hosts=_own_hosts(host, route))
    if request.method == "HEAD" or status in _NO_BODY_STATUSES or status < 200:
        return _bodiless(request, status, upstream.reason or None, headers)
    if upstream.chunked:
        # The body is decoded here and re-framed toward the browser; a length would be wrong.
        headers.popall("Content-Length", None)
    length = upstream.length
    if length is not None and length <= SMALL_BODY:
        try:
            body = await upstream.read()
        except UpstreamError:
            return _abort(request)
        route.bytes_out += len(body)
        return web.Response(status=status, reason=upstream.reason or None, headers=headers, body=body)
    return await _stream(request, route, upstream, headers)


def _bodiless(request: web.Request, status: int, reason: str | None, headers: CIMultiDict[str]) -> web.StreamResponse:
    # A StreamResponse sends the headers as given, so HEAD keeps the upstream's Content-Length.
    response = web.StreamResponse(status=status, reason=reason, headers=headers)
    if status in _NO_BODY_STATUSES:
        response.headers.popall("Content-Length", None)
    return response


async def _stream(
    request: web.Request,
    route: Route,
    upstream: UpstreamResponse,
    headers: CIMultiDict[str],
) -> web.StreamResponse:
    if headers.get("Content-Type", "").startswith("text/event-stream"):
        # Tell any proxy in front of AiKore not to buffer events either.
        headers["X-Accel-Buffering"] = "no"
    response = web.StreamResponse(status=upstream.status, reason=upstream.reason or None, headers=headers)
    await response.prepare(request)
    try:
        # Whatever arrived is passed on at once: large pieces under load, single events for SSE.
        async for chunk in upstream.iter_body():
            route.bytes_out += len(chunk)
            route.last_activity = time.time()
            await response.write(chunk)
    except (UpstreamError, ConnectionError):
        # The upstream vanished mid-body, or the browser left: either way this body is over.
        return _abort(request, response)
    await response.write_eof()
    return response


def _abort(request: web.Request, response: web.StreamResponse | None = None) -> web.StreamResponse:
    """Cut the browser's connection so a truncated body is never taken as complete."""
    if request.transport is not None:
        request.transport.abort()
    return response if response is not None else web.Response(status=502)


def _own_hosts(host: str, route: Route) -> frozenset[str]:
    port = route.port
    # An app on another host (a cluster node) names that host in its absolute redirects.
    elsewhere = {f"{route.host.lower()}:{port}"} if route.host else set()
    return frozenset({host.lower(), f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", *elsewhere})
