"""Every page under the Content-Security-Policy, in Chromium: no violation anywhere, and
the copy buttons still work (issue #10, item 8).

Violations are collected twice: from ``securitypolicyviolation`` events (a listener
installed before any page script runs) and from the console, where Chromium reports
each one. A deliberate violation at the end proves the collector sees them.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.conftest import login

pytestmark = pytest.mark.browser

LISTENER = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  const where = `${e.sourceFile}:${e.lineNumber}`;
  window.__csp.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${where}`);
});
"""


class CSPWatch:
    """Follows one page: every violation, from events and from the console."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.console: list[str] = []
        self.events: list[str] = []
        self.visited: list[str] = []
        page.add_init_script(LISTENER)
        page.on("console", self._on_console)

    def _on_console(self, message: Any) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.console.append(message.text)

    def check(self, name: str) -> None:
        """Read this document's violations; the header must be there too."""
        self.page.wait_for_load_state()
        self.events += self.page.evaluate("window.__csp || []")
        self.visited.append(name)
        found = self.events + self.console
        assert not found, f"CSP violations by {name} ({self.page.url}):\n" + "\n".join(found)

    def goto(self, path: str, name: str) -> Any:
        response = self.page.goto(path)
        policy = response.headers.get("content-security-policy", "")
        assert "default-src 'none'" in policy, (path, policy)
        self.check(name)
        return response


def _flush_usage() -> None:
    from flask_apikeys.service.usage import flush_all

    flush_all()


def test_no_page_breaks_the_policy_and_copy_still_works(new_page, server, make_key):
    make_key("bob@acme.test", ["client.read"], name="Bob's export")
    page = new_page()
    watch = CSPWatch(page)
    watch.goto("/", "home")
    watch.goto("/login", "login")
    login(page, "alice@acme.test")
    watch.check("keys-empty")
    watch.goto("/settings/api-keys/new", "create")

    page.get_by_label("Name").fill("CSP check")
    page.get_by_label("Read-only", exact=True).check()  # the script ticks the grid
    expect(page.get_by_label(re.compile("See invoices"))).to_be_checked()
    page.get_by_role("radio", name="Custom date").check()  # the script shows the date field
    expect(page.get_by_label(re.compile("Expires after"))).to_be_visible()
    page.get_by_role("radio", name="90 days").check()
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_text("You will not see it again.")).to_be_visible()
    watch.check("show-once")

    shown = page.get_by_label("API key", exact=True).input_value()
    page.get_by_role("button", name="Copy API key", exact=True).click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    expect(page.locator(".ak-copy-status").first).to_have_text("Copied to the clipboard.")
    assert page.evaluate("navigator.clipboard.readText()") == shown
    snippet = page.locator("[data-ak-copy-target='ak-snippet-curl']")
    snippet.click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert "$FSK_API_KEY" in copied and shown not in copied  # it reads the variable
    watch.check("show-once-copied")

    for _ in range(3):  # some usage for the chart
        response = requests.get(
            server + "/v1/invoices", headers={"Authorization": f"Bearer {shown}"}, timeout=10
        )
        assert response.status_code == 200
    _flush_usage()
    page.get_by_role("link", name="Done", exact=True).click()
    expect(page.get_by_role("heading", name=re.compile("CSP check"))).to_be_visible()
    expect(page.locator(".ak-chart rect")).to_have_count(1)  # today's bar
    watch.check("detail-with-chart")
    detail = page.url

    page.get_by_label("When should the old key stop working?").select_option("1h")
    page.get_by_role("button", name="Rotate key").click()
    expect(page.get_by_role("heading", name="Copy your new API key")).to_be_visible()
    expect(page.get_by_text("keeps working until")).to_be_visible()
    watch.check("show-once-rotated")
    watch.goto(detail, "detail-rotating")
    page.get_by_role("link", name="Revoke…").click()
    watch.check("revoke-confirm")

    watch.goto("/settings/api-keys/", "keys-list")
    watch.goto("/settings/api-keys/organization", "organization")
    page.get_by_label("Status").select_option("all")  # applies itself (lists.js)
    expect(page).to_have_url(re.compile("status=all"))
    watch.check("organization-filtered")
    page.get_by_role("link", name=re.compile("Revoke all keys of Bob Keller")).click()
    watch.check("offboard-confirm")

    page.goto("/settings/api-keys/999999")  # 404 in the site's layout
    watch.check("not-found")
    page.goto("/no-such-page")
    watch.check("site-not-found")
    assert len(watch.visited) == 16

    # The collector sees a violation when there is one: an inline style attribute.
    page.evaluate("document.body.insertAdjacentHTML('beforeend', '<p style=\"color:red\">x</p>')")
    page.wait_for_function("window.__csp.length > 0")
    with pytest.raises(AssertionError, match="style-src"):
        watch.check("deliberate violation")
