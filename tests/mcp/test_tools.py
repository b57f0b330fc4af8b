"""The example's tools an assistant needs: search_invoices and get_invoice, on the key's
organization and the clients the key is limited to, through the separate process and
the official client. (``test_real_clients.py`` runs them with the real clients and checks
their schemas; the seed gives Acme three invoices a month apart, all but the latest paid:
INV-1-00001 to Wayne, INV-1-00002 to Stark, INV-1-00003 to Wayne, issued today.)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

from tests.mcp.conftest import Keys, Proc, _uvicorn, bearer, mcp_session, server_env

pytestmark = pytest.mark.servers  # starts a real uvicorn server

TODAY = dt.date.today()


@pytest.fixture(scope="module")
def separate(mcp_app: Any, mcp_database: str, tmp_path_factory: Any) -> Iterator[Proc]:
    proc = _uvicorn(
        "separate",
        "tests.mcp.servers:separate_app",
        server_env(mcp_database),
        tmp_path_factory.mktemp("tools"),
    )
    try:
        yield proc
    finally:
        proc.kill()


@pytest.fixture(scope="module")
def reader(keys: Keys) -> str:
    return keys.issue("bob@acme.test", ["invoice.read", "client.read"])


def calls(url: str, secret: str, *wanted: tuple[str, dict[str, Any]]) -> list[Any]:
    async def run() -> list[Any]:
        async with mcp_session(url, bearer(secret)) as session:
            return [await session.call_tool(name, arguments) for name, arguments in wanted]

    return anyio.run(run)


def numbers(result: Any) -> list[str]:
    assert not result.is_error, result.content
    return [invoice["number"] for invoice in result.structured_content["invoices"]]


def test_search_invoices_by_each_filter_and_together(separate: Proc, reader: str) -> None:
    month_and_a_half = (TODAY - dt.timedelta(days=45)).isoformat()
    found = calls(
        separate.url,
        reader,
        ("search_invoices", {}),
        ("search_invoices", {"status": "paid"}),
        ("search_invoices", {"status": "open"}),
        ("search_invoices", {"client": "WAYNE"}),
        ("search_invoices", {"client_id": 2}),
        ("search_invoices", {"issued_from": month_and_a_half}),
        ("search_invoices", {"issued_to": month_and_a_half}),
        ("search_invoices", {"text": "inv-1-00002"}),
        ("search_invoices", {"text": "stark.test"}),
        ("search_invoices", {"client": "wayne", "status": "paid"}),
        ("search_invoices", {"status": "void"}),
    )
    assert [numbers(result) for result in found] == [
        ["INV-1-00003", "INV-1-00002", "INV-1-00001"],  # newest first
        ["INV-1-00002", "INV-1-00001"],
        ["INV-1-00003"],
        ["INV-1-00003", "INV-1-00001"],
        ["INV-1-00002"],
        ["INV-1-00003", "INV-1-00002"],
        ["INV-1-00001"],
        ["INV-1-00002"],
        ["INV-1-00002"],
        ["INV-1-00001"],
        [],
    ]
    assert found[0].structured_content["more"] is False


def test_search_text_is_no_pattern_and_the_limit_says_there_is_more(
    separate: Proc, reader: str
) -> None:
    wildcards, first, wrong = calls(
        separate.url,
        reader,
        ("search_invoices", {"text": "%"}),
        ("search_invoices", {"limit": 1}),
        ("search_invoices", {"status": "late", "limit": 0}),
    )
    assert numbers(wildcards) == []
    assert numbers(first) == ["INV-1-00003"] and first.structured_content["more"] is True
    assert wrong.is_error  # the schema's enum and minimum, checked by the SDK


def test_get_invoice_by_id_or_number(separate: Proc, reader: str) -> None:
    listed = calls(separate.url, reader, ("search_invoices", {"text": "INV-1-00002"}))[0]
    invoice = listed.structured_content["invoices"][0]
    by_id, by_number, neither, both, missing = calls(
        separate.url,
        reader,
        ("get_invoice", {"invoice_id": invoice["id"]}),
        ("get_invoice", {"number": " inv-1-00002 "}),
        ("get_invoice", {}),
        ("get_invoice", {"invoice_id": invoice["id"], "number": "INV-1-00002"}),
        ("get_invoice", {"number": "INV-1-99999"}),
    )
    assert by_id.structured_content == by_number.structured_content == invoice
    assert invoice["status"] == "paid" and invoice["client"]["name"] == "Stark Industries"
    assert neither.is_error and both.is_error
    assert missing.is_error and "INV-1-99999" in missing.content[0].text


def test_another_organizations_invoice_is_not_there(separate: Proc, keys: Keys) -> None:
    globex = keys.issue("carol@globex.test", ["invoice.read"])
    searched, got = calls(
        separate.url,
        globex,
        ("search_invoices", {"text": "INV-1-"}),
        ("get_invoice", {"number": "INV-1-00001"}),
    )
    assert numbers(searched) == []
    assert got.is_error
    assert "There is no invoice INV-1-00001" in got.content[0].text


def test_a_key_limited_to_a_client_sees_that_clients_invoices_only(
    separate: Proc, keys: Keys
) -> None:
    from example_app import db
    from example_app.models import Client

    with keys.app.app_context():
        wayne = db.session.scalar(db.select(Client.id).where(Client.name == "Wayne Enterprises"))
        db.session.remove()
    limited = keys.issue("alice@acme.test", ["invoice.read"], resources={"client": [str(wayne)]})
    searched, listed, stark, own = calls(
        separate.url,
        limited,
        ("search_invoices", {}),
        ("list_invoices", {}),
        ("get_invoice", {"number": "INV-1-00002"}),  # Stark's
        ("get_invoice", {"number": "INV-1-00001"}),
    )
    assert numbers(searched) == ["INV-1-00003", "INV-1-00001"]
    assert [i["number"] for i in listed.structured_content["result"]] == [
        "INV-1-00001",
        "INV-1-00003",
    ]
    assert stark.is_error and not own.is_error
