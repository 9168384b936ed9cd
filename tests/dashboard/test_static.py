"""The dashboard's files: served, CSP-clean (no inline code), vendored libraries pinned with licences."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import replace
from html.parser import HTMLParser

from aiohttp.test_utils import TestClient

from aikore.app import create_app
from aikore.config import Settings
from aikore.http.dashboard import html_pattern
from aikore.store.instance import dashboard_constants
from aikore.store.validation import NAME_RE, RESTART_POLICIES
from tests.helpers import REPO

STATIC = REPO / "static"


class _Assets(HTMLParser):
    """Collects asset URLs, inline scripts and style attributes of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0
        self.style_attributes: list[str] = []
        self.handlers: list[str] = []
        self.data_blocks: dict[str, str] = {}
        self._in_script = False
        self._data_block: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name, _ in attrs:
            if name.startswith("on"):
                self.handlers.append(f"<{tag} {name}>")
        if "style" in values:
            self.style_attributes.append(tag)
        if tag == "script" and values.get("type") == "application/json":
            # A data block: the browser never runs it, so a strict CSP does not need to allow it.
            self._data_block = str(values.get("id"))
            self.data_blocks[self._data_block] = ""
        elif tag == "script":
            self._in_script = "src" not in values
            if values.get("src"):
                self.urls.append(str(values["src"]))
        if tag == "link" and values.get("href"):
            self.urls.append(str(values["href"]))
        if tag == "img" and values.get("src"):
            self.urls.append(str(values["src"]))

    def handle_data(self, data: str) -> None:
        if self._data_block is not None:
            self.data_blocks[self._data_block] += data
        elif self._in_script and data.strip():
            self.inline_scripts += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False
            self._data_block = None


async def _index(client: TestClient) -> _Assets:
    response = await client.get("/")
    assert response.status == 200
    parser = _Assets()
    parser.feed(await response.text())
    return parser


async def test_index_has_no_inline_script_style_or_handler_so_a_strict_csp_holds(client: TestClient) -> None:
    page = await _index(client)
    assert page.inline_scripts == 0
    assert page.style_attributes == []
    assert page.handlers == []


async def test_index_serves_the_field_constants_as_an_inert_json_block(client: TestClient) -> None:
    page = await _index(client)
    block = page.data_blocks["aikore-config"]
    assert json.loads(block) == dashboard_constants()
    # Escaped by |tojson: no value can close the tag and start markup of its own.
    assert "<" not in block and ">" not in block


def test_html_pattern_escapes_a_hyphen_at_a_class_edge_and_keeps_ranges() -> None:
    assert html_pattern(NAME_RE.pattern) == r"^[a-z0-9][a-z0-9_\-]{0,62}$"
    assert html_pattern("[-a-z]x-y") == r"[\-a-z]x-y"


async def test_the_add_form_offers_the_served_restart_policies_and_name_pattern(client: TestClient) -> None:
    text = await (await client.get("/")).text()
    select = re.search(r'<select id="add-restart".*?</select>', text, re.DOTALL)
    assert select is not None
    assert re.findall(r'<option value="([^"]+)">', select[0]) == list(RESTART_POLICIES)
    assert f'pattern="{html_pattern(NAME_RE.pattern)}"' in text


async def test_every_asset_the_index_names_is_served(client: TestClient) -> None:
    page = await _index(client)
    assert len(page.urls) >= 6
    for url in page.urls:
        response = await client.get(url)
        assert response.status == 200, url


async def test_every_module_import_resolves_to_a_served_file(client: TestClient) -> None:
    imports = re.compile(r"""^import .*? from "([^"]+)";""", re.MULTILINE)
    for module in sorted((STATIC / "js").glob("*.js")):
        for target in imports.findall(module.read_text()):
            url = target if target.startswith("/") else f"/static/js/{target.removeprefix('./')}"
            response = await client.get(url)
            assert response.status == 200, f"{module.name} imports {target}"
            assert "javascript" in response.headers["Content-Type"], url


def test_vendored_libraries_carry_their_licence_and_the_pinned_version() -> None:
    script = (REPO / "scripts" / "vendor-static").read_text()
    pins = set(re.findall(r"\[([a-z_]+@\d+\.\d+\.\d+)\]=", script))
    assert pins, "scripts/vendor-static pins no package"
    recorded = (STATIC / "vendor" / "VERSIONS").read_text().split("\n")
    assert {line.split()[0] for line in recorded if line} == pins
    for pin in pins:
        name = pin.split("@")[0]
        licence = (STATIC / "vendor" / name / "LICENSE").read_text()
        assert "Permission is hereby granted" in licence, name


async def test_index_names_the_public_port_pool_and_is_revalidated(client: TestClient) -> None:
    response = await client.get("/")
    assert "From the pool 19001-19020" in await response.text()
    assert response.headers["Cache-Control"] == "no-cache"


async def test_templates_are_rendered_never_served_raw(
    aiohttp_client: Callable[..., Awaitable[TestClient]], settings: Settings
) -> None:
    token = "static-test-token-0123456789"
    client = await aiohttp_client(create_app(replace(settings, auth="token", token=token)))
    bearer = {"Authorization": f"Bearer {token}"}
    for raw in ("/static/index.html", "/static/login.html"):
        assert (await client.get(raw, headers=bearer)).status == 404, raw
    index = await client.get("/", headers=bearer)
    assert index.status == 200
    assert "{{" not in await index.text()
    login = await client.get("/login")
    assert login.status == 200
    assert 'name="token"' in await login.text()


async def test_every_static_file_is_revalidated_so_modules_of_two_releases_never_mix(client: TestClient) -> None:
    for url in ("/static/js/api.js", "/static/vendor/codemirror/codemirror.js", "/static/login.css"):
        response = await client.get(url)
        assert response.status == 200, url
        assert response.headers["Cache-Control"] == "no-cache", url
        assert response.headers["ETag"] and response.headers["Last-Modified"], url


async def test_an_unchanged_static_file_answers_a_conditional_get_with_304(client: TestClient) -> None:
    first = await client.get("/static/js/instances.js")
    for condition in ({"If-None-Match": first.headers["ETag"]},
                      {"If-Modified-Since": first.headers["Last-Modified"]}):
        again = await client.get("/static/js/instances.js", headers=condition)
        assert again.status == 304, condition
        assert again.headers["Cache-Control"] == "no-cache"
        assert await again.read() == b""
