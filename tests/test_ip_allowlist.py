"""IP allowlists per key: CIDRs, IPv4 and IPv6, 403 ip_not_allowed outside them."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_apikeys import parse_key
from flask_apikeys.keys.network import address_allowed, parse_networks
from tests.conftest import bearer


@pytest.mark.parametrize(
    ("address", "networks", "allowed"),
    [
        ("203.0.113.7", ["203.0.113.0/24"], True),
        ("203.0.114.7", ["203.0.113.0/24"], False),
        ("203.0.113.7", ["203.0.113.7"], True),
        ("203.0.113.8", ["203.0.113.7/32"], False),
        ("2001:db8::1", ["2001:db8::/32"], True),
        ("2001:db9::1", ["2001:db8::/32"], False),
        ("2001:DB8:0:0::1", ["2001:db8::1/128"], True),
        ("fe80::1%eth0", ["fe80::/10"], True),
        # IPv4-mapped IPv6 (a dual-stack socket) is the IPv4 address, both ways round.
        ("::ffff:203.0.113.7", ["203.0.113.0/24"], True),
        ("::ffff:203.0.114.7", ["203.0.113.0/24"], False),
        ("203.0.113.7", ["::ffff:203.0.113.0/120"], True),
        # An IPv4 address never matches an IPv6 network and vice versa.
        ("10.0.0.1", ["::/0"], False),
        ("2001:db8::1", ["0.0.0.0/0"], False),
        ("10.0.0.1", ["192.168.0.0/16", "10.0.0.0/8"], True),
        # No allowlist: anywhere; an allowlist and no or bad address: refused.
        ("10.0.0.1", [], True),
        ("10.0.0.1", None, True),
        (None, ["10.0.0.0/8"], False),
        ("", ["10.0.0.0/8"], False),
        ("not-an-ip", ["10.0.0.0/8"], False),
    ],
)
def test_address_allowed(address: str | None, networks: list[str] | None, allowed: bool) -> None:
    assert address_allowed(address, networks) is allowed


def test_networks_are_parsed_once_per_allowlist() -> None:
    networks = ("198.51.100.0/24", "2001:db8:42::/48")
    address_allowed("198.51.100.1", list(networks))
    before = parse_networks.cache_info()
    for _ in range(10):
        assert address_allowed("198.51.100.1", list(networks))
    after = parse_networks.cache_info()
    assert after.hits - before.hits == 10
    assert after.misses == before.misses


def _from(address: str) -> dict[str, Any]:
    return {"environ_base": {"REMOTE_ADDR": address}}


def test_a_request_from_outside_the_allowlist_gets_403(client: FlaskClient, make_key: Any) -> None:
    secret = make_key(
        "bob@acme.test", ["client.read"], ip_allowlist=["10.0.0.0/8", "2001:db8::/32"]
    )
    refused = client.get("/v1/clients", headers=bearer(secret))  # from 127.0.0.1
    assert refused.status_code == 403
    assert refused.json == {
        "error": "ip_not_allowed",
        "message": "This API key cannot be used from your address.",
    }
    assert refused.headers["WWW-Authenticate"].startswith("Bearer ")
    for address in ("10.20.30.40", "2001:db8::5", "::ffff:10.0.0.9"):
        assert (
            client.get("/v1/clients", headers=bearer(secret), **_from(address)).status_code == 200
        )
    assert (
        client.get("/v1/clients", headers=bearer(secret), **_from("2001:db9::5")).status_code == 403
    )


def test_a_key_without_an_allowlist_works_from_anywhere(client: FlaskClient, make_key: Any) -> None:
    secret = make_key("bob@acme.test", ["client.read"])
    for address in ("127.0.0.1", "203.0.113.1", "2001:db8::1"):
        assert (
            client.get("/v1/clients", headers=bearer(secret), **_from(address)).status_code == 200
        )


def test_the_cli_sets_and_clears_the_allowlist(
    app: Flask, client: FlaskClient, make_key: Any
) -> None:
    secret = make_key("bob@acme.test", ["client.read"])
    prefix = parse_key(secret).display_prefix
    runner = app.test_cli_runner()
    result = runner.invoke(args=["apikeys", "set-ips", prefix, "10.0.0.0/8", "2001:db8::/32"])
    assert result.exit_code == 0, result.stderr
    assert "10.0.0.0/8, 2001:db8::/32" in result.stderr
    assert client.get("/v1/clients", headers=bearer(secret)).status_code == 403
    assert client.get("/v1/clients", headers=bearer(secret), **_from("10.1.1.1")).status_code == 200

    bad = runner.invoke(args=["apikeys", "set-ips", prefix, "10.0.0.0/33"])
    assert bad.exit_code == 1
    assert "not an IP address or network" in bad.stderr
    assert runner.invoke(args=["apikeys", "set-ips", prefix]).exit_code == 2  # neither
    assert runner.invoke(args=["apikeys", "set-ips", prefix, "10.0.0.1", "--clear"]).exit_code == 2

    cleared = runner.invoke(args=["apikeys", "set-ips", prefix, "--clear"])
    assert cleared.exit_code == 0
    assert "any address" in cleared.stderr
    assert client.get("/v1/clients", headers=bearer(secret)).status_code == 200
