"""Swagger UI at /docs: served from the package under its own CSP, "Authorize" with a key
makes "Try it out" call the running example app."""

from __future__ import annotations

from typing import Any

import pytest

from example_app.openapi import DOCS_CSP
from tests.browser.conftest import SCREENSHOTS

pytestmark = pytest.mark.browser


def open_docs(new_page: Any, server: str) -> tuple[Any, list[str]]:
    page = new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on(
        "console",
        lambda message: (
            problems.append(f"console: {message.text}") if message.type == "error" else None
        ),
    )
    page.on(
        "request",
        lambda request: (
            problems.append(f"off-site request: {request.url}")
            if not request.url.startswith((server + "/", "data:"))
            else None
        ),
    )
    response = page.goto("/docs")
    assert response.status == 200
    assert response.headers["content-security-policy"] == DOCS_CSP  # its own, not the app's
    page.get_by_text("Ledgerly API").first.wait_for()
    return page, problems


def try_it_out(page: Any, operation_id: str) -> Any:
    """Expand the operation *operation_id*, run it, return its panel."""
    block = page.locator(f".opblock[id$='-{operation_id}']")  # under its tag's group
    block.locator(".opblock-summary").first.click()
    block.get_by_role("button", name="Try it out").click()
    block.get_by_role("button", name="Execute").click()
    block.locator(".live-responses-table .response .response-col_status").first.wait_for()
    return block


@pytest.mark.parametrize("scheme", ["APIKeyHeader", "APIKeyBearer"])
def test_authorize_with_a_key_then_try_it_out(
    new_page: Any, server: str, make_key: Any, scheme: str
) -> None:
    secret = make_key("bob@acme.test", ["client.read"])
    page, problems = open_docs(new_page, server)

    # Without a key: 401 and the error body, as described.
    block = try_it_out(page, "get_api_list_clients")
    assert (
        block.locator(".live-responses-table .response .response-col_status").first.inner_text()
        == "401"
    )
    assert "missing_api_key" in block.locator(".live-responses-table").inner_text()

    page.get_by_role("button", name="Authorize").first.click()
    dialog = page.locator(".modal-ux")
    form = dialog.locator(".auth-container").filter(has_text=scheme)
    form.locator("input").fill(secret)
    form.get_by_role("button", name="Apply credentials").click()  # labelled "Authorize"
    form.get_by_text("Logout").wait_for()
    form.get_by_role("button", name="Close").click()

    block.get_by_role("button", name="Execute").click()
    status = block.locator(".live-responses-table .response .response-col_status").first
    page.wait_for_function(
        "el => el.innerText.trim() === '200'", arg=status.element_handle(), timeout=10_000
    )
    body = block.locator(".live-responses-table").inner_text()
    assert "Wayne Enterprises" in body and "Initech" not in body  # Acme's clients only
    header = "X-API-Key" if scheme == "APIKeyHeader" else "Authorization: Bearer"
    assert header in block.locator(".curl-command").inner_text()

    # A scope the key lacks: 403 with the missing scope.
    invoices = try_it_out(page, "get_api_list_invoices")
    assert invoices.locator(
        ".live-responses-table .response .response-col_status"
    ).first.inner_text() == ("403")
    assert "invoice.read" in invoices.locator(".live-responses-table").inner_text()

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"swagger-ui-{scheme}.png"), full_page=True)
    # The browser logs the 401 and the 403 it was shown; nothing else (no CSP violation).
    failed = "console: Failed to load resource: the server responded with a status of"
    expected = {f"{failed} 401 (UNAUTHORIZED)", f"{failed} 403 (FORBIDDEN)"}
    assert set(problems) == expected, problems
