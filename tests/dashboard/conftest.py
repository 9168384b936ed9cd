"""Headless Chromium (Debian's) driving the real dashboard of a real `aikore` process."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Locator, Page, expect, sync_playwright

from tests.helpers import REPO, AikoreProcess, launch_chromium

TOKEN = "dashboard-test-token-0123456789"
ARTIFACTS = REPO / "test-artifacts" / "dashboard"
SCREENSHOTS = REPO / "docs" / "screenshots"
# The README's pictures are refreshed only on request, so a test run leaves the tracked tree alone.
UPDATE_README_SHOTS = os.environ.get("AIKORE_UPDATE_SCREENSHOTS") == "1"
FAKE_PYNVML = Path(__file__).resolve().parent / "fake_pynvml"
DESKTOP = {"width": 1360, "height": 820}
# Generous: the machine running the suite may be busy; a condition that holds returns at once.
expect.set_options(timeout=15_000)


# Per module, not per session: sync Playwright keeps its own event loop current while open, which
# the async (aiohttp_client) tests of another module could not run beside.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = launch_chromium(p)
        yield browser
        browser.close()


@dataclass
class Dashboard:
    """A running aikore plus a logged-out browser page on it, recording what went wrong in the page."""

    server: AikoreProcess
    page: Page
    errors: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return self.server.base

    def login(self, path: str = "/") -> None:
        """Log in the way a user does: the token URL AiKore prints."""
        path, hash_mark, fragment = path.partition("#")
        sep = "&" if "?" in path else "?"
        self.page.goto(f"{self.base}{path}{sep}token={TOKEN}{hash_mark}{fragment}")
        self.page.wait_for_selector("#instances-loading", state="hidden", timeout=30_000)
        assert "token=" not in self.page.url, "the token must be dropped from the address bar"

    def api(self, method: str, path: str, body: object = None) -> Any:
        """Call the API as another client would (bearer token), returning the JSON body."""
        response = self.server.request(method, path, body)
        assert response.status < 300, f"{method} {path} -> {response.status}: {response.body[:300]!r}"
        return response.json()

    def row(self, name: str) -> str:
        return f"tbody.instance[data-name='{name}']"

    def action(self, name: str, action: str) -> Locator:
        """A row's action, opening its "⋯" menu first when the action lives there."""
        row = self.page.locator(self.row(name))
        control = row.locator(f"[data-action='{action}']")
        control.wait_for(state="attached")  # the row may not be rendered yet
        if control.evaluate("el => Boolean(el.closest('.more-menu')) && !el.checkVisibility()"):
            row.locator(".more-toggle").click()
        return control

    def tool(self, kind: str, instance_id: int | None = None) -> Locator:
        """A tab's panel in the tools pane: ``tool("logs", 3)``, ``tool("terminal")``."""
        suffix = "" if instance_id is None else f"-{instance_id}"
        return self.page.locator(f"#tool-{kind}{suffix}")

    def close_tool(self, kind: str, instance_id: int | None = None) -> None:
        """Close a tab the keyboard way: focus it, then Delete."""
        suffix = "" if instance_id is None else f"-{instance_id}"
        self.page.locator(f"#tool-{kind}{suffix}-tab").focus()
        self.page.keyboard.press("Delete")

    def shot(self, name: str, readme: bool = False, full_page: bool = False) -> Path:
        """Screenshot into test-artifacts/ (and docs/screenshots/ for the README ones, on request)."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        if full_page:
            self._shot_whole_view(path)
        else:
            self.page.screenshot(path=str(path))
        if readme and UPDATE_README_SHOTS:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, SCREENSHOTS / f"{name}.png")
        return path


    def _shot_whole_view(self, path: Path) -> None:
        # The page itself never scrolls (the workspace's panes do): a window as tall as the views'
        # pane's content shows all of it, as a full-page picture of a scrolling page would.
        size = self.page.viewport_size or DESKTOP
        needed = self.page.evaluate(
            """() => {
              const main = document.getElementById("main");
              if (!main) return document.documentElement.scrollHeight;
              return document.documentElement.clientHeight - main.clientHeight + main.scrollHeight;
            }"""
        )
        self.page.set_viewport_size({"width": size["width"], "height": max(size["height"], int(needed))})
        try:
            self.page.screenshot(path=str(path), full_page=True)
        finally:
            self.page.set_viewport_size(size)


@pytest.fixture
def dashboard(
    browser: Browser, aikore_process: Callable[..., AikoreProcess], request: pytest.FixtureRequest
) -> Iterator[Callable[..., Dashboard]]:
    """Factory: ``dashboard(gpus=, viewport=, extra_args=, env=)`` → a Dashboard, not logged in yet."""
    opened: list[Dashboard] = []

    def start(
        gpus: bool = False,
        viewport: dict[str, int] | None = None,
        extra_args: Sequence[str] = (),
        env: dict[str, str] | None = None,
    ) -> Dashboard:
        env = dict(env or {})
        if gpus:
            env["PYTHONPATH"] = os.pathsep.join([str(FAKE_PYNVML), str(REPO)])
        args = ["--token", TOKEN, "--stop-timeout", "5", "--monitor-interval", "1", *extra_args]
        server = aikore_process(extra_args=args, env=env)
        server.token = TOKEN
        opened.append(_open(browser, server, viewport))
        return opened[-1]

    yield start
    _close(opened, request)


@pytest.fixture(scope="module")
def shared_aikore(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AikoreProcess]:
    """One real aikore (token auth, the fake two-GPU NVML) for every test of a module: each test
    uses instance names of its own, so they do not meet."""
    data = tmp_path_factory.mktemp("shared") / "data"
    env = {"PYTHONPATH": os.pathsep.join([str(FAKE_PYNVML), str(REPO)])}
    args = ["--token", TOKEN, "--stop-timeout", "5", "--monitor-interval", "1"]
    server = AikoreProcess(data_dir=data, extra_args=args, env=env)
    server.token = TOKEN
    server.start()
    yield server
    try:
        server.stop(timeout=60)
    except Exception:
        server.kill()


@pytest.fixture
def shared_dashboard(
    browser: Browser, shared_aikore: AikoreProcess, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Dashboard]]:
    """Factory: ``shared_dashboard(viewport=, color_scheme=)`` → a new browser context (not logged in)
    on the module's aikore; the system's colour preference is dark unless ``color_scheme="light"``."""
    opened: list[Dashboard] = []

    def open_page(viewport: dict[str, int] | None = None, color_scheme: str = "dark") -> Dashboard:
        opened.append(_open(browser, shared_aikore, viewport, color_scheme))
        return opened[-1]

    yield open_page
    _close(opened, request)


def _open(
    browser: Browser, server: AikoreProcess, viewport: dict[str, int] | None, color_scheme: str = "dark"
) -> Dashboard:
    """A new browser context and page on ``server``, recording what goes wrong in the page."""
    context = browser.new_context(viewport=viewport or DESKTOP, color_scheme=color_scheme)
    page = context.new_page()
    page.set_default_timeout(15_000)
    board = Dashboard(server=server, page=page)
    page.on("pageerror", lambda exc: board.errors.append(f"page error: {exc}"))
    page.on("console", lambda msg: _console(board, msg))
    return board


def _close(opened: list[Dashboard], request: pytest.FixtureRequest) -> None:
    """A last screenshot of each page for the record, then fail the test on any error a page reported."""
    for board in opened:
        name = re.sub(r"[^\w.-]+", "_", request.node.name)
        try:
            board.shot(f"last-{name}")
        except Exception:
            pass
        board.page.context.close()
    for board in opened:
        assert not board.errors, "the page reported errors:\n" + "\n".join(board.errors)


def _console(board: Dashboard, message: ConsoleMessage) -> None:
    # Failed requests are the API answering 4xx on purpose (tested where they matter) or a live
    # stream cut by a restart; script errors are never expected. A desktop tab frames the Selkies
    # client, whose own messages (no audio device in headless Chromium) are not the dashboard's.
    if message.type != "error" or "Failed to load resource" in message.text:
        return
    if "/desktop/" in (message.location or {}).get("url", ""):
        return
    board.errors.append(f"console: {message.text}")
