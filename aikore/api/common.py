"""Helpers shared by API views: JSON bodies in and out, path parameters."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from aikore.errors import AikoreError
from aikore.store.validation import reject_unknown

__all__ = ["MAX_BODY", "json_response", "path_id", "read_body", "read_json_object", "reject_unknown"]

# API bodies are small JSON documents or scripts; proxied uploads never pass through here.
MAX_BODY = 1024 * 1024


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 4xx naming what is wrong with it."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise AikoreError("payload_too_large", f"body is larger than {MAX_BODY} bytes", 413)
    raw = await read_body(request, MAX_BODY)
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise AikoreError("invalid_json", "body is not valid UTF-8", 400) from None
    except json.JSONDecodeError as exc:
        raise AikoreError("invalid_json", f"body is not valid JSON: {exc.msg} at position {exc.pos}", 400) from None
    except RecursionError:
        # "[[[[..." a few hundred thousand deep fits in 1 MB and exhausts the parser's stack.
        raise AikoreError("invalid_json", "body is nested too deeply", 400) from None
    except ValueError as exc:
        # Python refuses integer literals of more than 4300 digits (int_max_str_digits).
        raise AikoreError("invalid_json", f"body is not valid JSON: {str(exc)[:80]}", 400) from None
    if not isinstance(data, dict):
        raise AikoreError("invalid_json", "body must be a JSON object", 400)
    return data


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole request body, however many TCP pieces it arrives in; a 413 past ``limit`` bytes.

    One ``content.read(n)`` returns what has arrived so far, not n bytes: a body sent in two
    pieces would be cut in half and refused as invalid.
    """
    parts: list[bytes] = []
    size = 0
    while chunk := await request.content.read(limit + 1 - size):
        parts.append(chunk)
        size += len(chunk)
        if size > limit:
            raise AikoreError("payload_too_large", f"body is larger than {limit} bytes", 413)
    return b"".join(parts)


def path_id(request: web.Request) -> int:
    text = request.match_info["id"]
    # isascii(): str.isdigit() is also true for "²", which int() then refuses (a 500).
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise AikoreError("not_found", "instance ids are positive integers", 404)
    return int(text)


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)
