"""Browser fixtures: Debian's Chromium driven by Playwright, the example app on a real server.

One browser for the package; a fresh server (and database) per test. Without
``/usr/bin/chromium`` the tests skip, except under ``CI``, where they fail.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from tests.conftest import service_unavailable

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
VIEWPORTS = {"desktop": (1280, 800), "mobile": (390, 844)}

pytestmark = pytest.mark.browser


# Package scope, not session: Playwright's sync API keeps an event loop running in this
# thread while it is open, so any later test calling asyncio.run (the MCP tests) would
# fail with "Already running asyncio in this thread".
@pytest.fixture(scope="package")
def chromium() -> Iterator[Any]:
    if not os.access(CHROMIUM, os.X_OK):
        service_unavailable("Chromium", f"{CHROMIUM} is missing (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def server(app: Flask) -> Iterator[str]:
    """The example app served over HTTP on 127.0.0.1, on the test database."""
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join(5)
    httpd.server_close()


@pytest.fixture
def new_page(chromium: Any, server: str) -> Iterator[Any]:
    """``new_page()`` -> a page in a fresh browser context (its own cookies)."""
    contexts = []

    def make() -> Any:
        context = chromium.new_context(
            base_url=server,
            viewport={"width": 1280, "height": 800},
            permissions=["clipboard-read", "clipboard-write"],
        )
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


class PageChecker:
    """Runs axe-core on a page and saves its screenshots at both sizes."""

    def __init__(self) -> None:
        from axe_playwright_python.sync_playwright import Axe

        self.axe = Axe()
        self.checked: list[str] = []

    def __call__(self, page: Any, name: str) -> None:
        results = self.axe.run(page)
        serious = [
            f"{v['id']} ({v['impact']}): {v['help']} — "
            + "; ".join(n["target"][0] for n in v["nodes"][:3])
            for v in results.response["violations"]
            if v.get("impact") in ("serious", "critical")
        ]
        assert not serious, f"axe-core on {name} ({page.url}):\n" + "\n".join(serious)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for label, (width, height) in VIEWPORTS.items():
            page.set_viewport_size({"width": width, "height": height})
            page.screenshot(path=str(SCREENSHOTS / f"{name}-{label}.png"), full_page=True)
        page.set_viewport_size({"width": 1280, "height": 800})
        self.checked.append(name)


@pytest.fixture
def check_page() -> PageChecker:
    return PageChecker()


def login(page: Any, email: str, path: str = "/settings/api-keys/") -> None:
    page.goto(path)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("demo-password")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
