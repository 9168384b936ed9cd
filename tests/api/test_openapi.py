"""The OpenAPI document is valid 3.1 and covers every route the app serves."""

from __future__ import annotations

import re

from aiohttp.test_utils import TestClient
from openapi_spec_validator import validate

# Routes that are not part of the JSON API document (pages, assets, proxied apps).
_UNDOCUMENTED = re.compile(r"^/($|static|app/|desktop/|login|logout)")


async def test_document_is_valid_openapi_31(client: TestClient) -> None:
    resp = await client.get("/api/openapi.json")
    assert resp.status == 200
    doc = await resp.json()
    assert doc["openapi"].startswith("3.1")
    validate(doc)


async def test_every_api_route_is_documented_with_responses(client: TestClient) -> None:
    doc = await (await client.get("/api/openapi.json")).json()
    served: set[tuple[str, str]] = set()
    for route in client.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or ""
        if route.method in ("HEAD", "OPTIONS") or not path or _UNDOCUMENTED.match(path):
            continue
        served.add((path, route.method.lower()))
    assert served, "no API routes found"
    for path, method in served:
        assert path in doc["paths"], f"{path} is not documented"
        op = doc["paths"][path].get(method)
        assert op is not None, f"{method.upper()} {path} is not documented"
        assert op["responses"], f"{method.upper()} {path} documents no response"
