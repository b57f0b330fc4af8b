"""Per-key rate limits (limits library) and the failed-authentication throttle."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.middleware.proxy_fix import ProxyFix

from flask_apikeys import parse_key
from flask_apikeys.service.ratelimit import RateLimits
from tests.conftest import bearer
from tests.own_redis import own_redis
from tests.statements import recorded_statements, writes

RATE_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")


def _get(client: FlaskClient, secret: str, **kwargs: Any) -> Any:
    return client.get("/v1/clients", headers=bearer(secret), **kwargs)


def _cli(app: Flask, *args: str) -> Any:
    return app.test_cli_runner().invoke(args=["apikeys", *args])


def test_without_a_limit_there_are_no_rate_limit_headers(
    client: FlaskClient, make_key: Any
) -> None:
    response = _get(client, make_key("bob@acme.test", ["client.read"]))
    assert response.status_code == 200
    assert not any(name in response.headers for name in RATE_HEADERS)


def test_the_default_limit_applies_and_says_so_in_headers(
    app: Flask, client: FlaskClient, make_key: Any
) -> None:
    app.config["APIKEYS_DEFAULT_RATE_LIMIT"] = "3/minute"
    secret = make_key("bob@acme.test", ["client.read"])
    remaining = []
    for _ in range(3):
        response = _get(client, secret)
        assert response.status_code == 200
        assert response.headers["RateLimit-Limit"] == "3"
        assert 0 < int(response.headers["RateLimit-Reset"]) <= 60
        remaining.append(response.headers["RateLimit-Remaining"])
    assert remaining == ["2", "1", "0"]
    refused = _get(client, secret)
    assert refused.status_code == 429
    assert refused.json == {
        "error": "rate_limited",
        "message": "Too many requests: slow down and retry later.",
    }
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["RateLimit-Limit"] == "3"
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert "WWW-Authenticate" not in refused.headers


def test_a_keys_own_limit_beats_the_default(app: Flask, client: FlaskClient, make_key: Any) -> None:
    app.config["APIKEYS_DEFAULT_RATE_LIMIT"] = "1/minute"
    generous = make_key("bob@acme.test", ["client.read"], rate_limit="5/minute")
    strict = make_key("bob@acme.test", ["client.read"])
    assert [_get(client, generous).status_code for _ in range(5)] == [200] * 5
    assert [_get(client, strict).status_code for _ in range(2)] == [200, 429]


def test_each_key_has_its_own_budget(client: FlaskClient, make_key: Any) -> None:
    first = make_key("bob@acme.test", ["client.read"], rate_limit="1/minute")
    second = make_key("bob@acme.test", ["client.read"], rate_limit="1/minute")
    assert _get(client, first).status_code == 200
    assert _get(client, second).status_code == 200
    assert _get(client, first).status_code == 429


def test_several_limits_report_the_tightest(client: FlaskClient, make_key: Any) -> None:
    secret = make_key("bob@acme.test", ["client.read"], rate_limit="10/second;2/minute")
    response = _get(client, secret)
    assert (response.headers["RateLimit-Limit"], response.headers["RateLimit-Remaining"]) == (
        "2",
        "1",
    )
    assert _get(client, secret).status_code == 200
    assert _get(client, secret).status_code == 429


def test_the_cli_sets_and_resets_a_keys_limit(
    app: Flask, client: FlaskClient, make_key: Any
) -> None:
    secret = make_key("bob@acme.test", ["client.read"])
    prefix = parse_key(secret).display_prefix
    result = _cli(app, "set-limit", prefix, "1/minute")
    assert result.exit_code == 0, result.stderr
    assert "1/minute" in result.stderr
    assert [_get(client, secret).status_code for _ in range(2)] == [200, 429]
    result = _cli(app, "set-limit", prefix, "default")
    assert result.exit_code == 0
    assert "unlimited" in result.stderr
    assert _get(client, secret).status_code == 200
    refused = _cli(app, "set-limit", prefix, "lots")
    assert refused.exit_code == 1
    assert "not a rate limit" in refused.stderr
    assert _cli(app, "set-limit", "fsk_nothere", "1/minute").exit_code == 1


@pytest.mark.parametrize("strategy", ["fixed-window", "sliding-window-counter"])
def test_other_strategies_can_be_chosen(
    app: Flask, client: FlaskClient, make_key: Any, strategy: str
) -> None:
    app.config["APIKEYS_RATELIMIT_STRATEGY"] = strategy
    secret = make_key("bob@acme.test", ["client.read"], rate_limit="2/hour")
    assert [_get(client, secret).status_code for _ in range(3)] == [200, 200, 429]


def test_an_unknown_strategy_is_a_configuration_error() -> None:
    with pytest.raises(RuntimeError, match="APIKEYS_RATELIMIT_STRATEGY"):
        RateLimits(strategy="leaky-bucket")


# -- the storage --------------------------------------------------------------------------

DOWN = "redis://127.0.0.1:9/0"  # the discard port: nothing listens there


def test_an_unreachable_storage_fails_open_by_default(
    app: Flask, client: FlaskClient, make_key: Any
) -> None:
    app.config.update(APIKEYS_RATELIMIT_STORAGE_URI=DOWN)
    secret = make_key("bob@acme.test", ["client.read"], rate_limit="1/minute")
    responses = [_get(client, secret) for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert "RateLimit-Limit" not in responses[0].headers


def test_an_unreachable_storage_can_fail_closed(
    app: Flask, client: FlaskClient, make_key: Any
) -> None:
    app.config.update(APIKEYS_RATELIMIT_STORAGE_URI=DOWN, APIKEYS_RATELIMIT_FAIL_OPEN=False)
    limited = make_key("bob@acme.test", ["client.read"], rate_limit="100/minute")
    unlimited = make_key("bob@acme.test", ["client.read"])
    refused = _get(client, limited)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert _get(client, unlimited).status_code == 200  # no limit, no storage needed
    # The throttle fails closed too: a refused key gets 429, not a free 401.
    assert _get(client, _bad(1)).status_code == 429


def test_an_unreachable_storage_fails_open_for_the_throttle_too(
    app: Flask, client: FlaskClient
) -> None:
    app.config.update(APIKEYS_RATELIMIT_STORAGE_URI=DOWN, APIKEYS_FAILED_AUTH_LIMIT="1/minute")
    assert {_get(client, _bad(n)).status_code for n in range(5)} == {401}


def test_an_outage_is_one_warning_without_a_traceback(
    app: Flask, client: FlaskClient, make_key: Any, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    app.config.update(APIKEYS_RATELIMIT_STORAGE_URI=DOWN, APIKEYS_RATELIMIT_FAIL_OPEN=False)
    limited = make_key("bob@acme.test", ["client.read"], rate_limit="100/minute")
    limits = app.extensions["apikeys"].rate_limits(app)
    limits.retry_after_failure = 0  # try the storage on every request: every one fails
    with caplog.at_level(logging.WARNING, logger="flask_apikeys"):
        statuses = {_get(client, limited).status_code for _ in range(5)}
        statuses |= {_get(client, _bad(n)).status_code for n in range(5)}
    assert statuses == {429}
    warnings = [r for r in caplog.records if "rate-limit storage" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert warnings[0].exc_info is None and "failing closed" in warnings[0].getMessage()
    assert "127.0.0.1:9" in warnings[0].getMessage()


@pytest.mark.redis
def test_a_verified_request_without_a_limit_sends_redis_nothing(
    app: Flask, client: FlaskClient, make_key: Any, tmp_path: Path
) -> None:
    """Counted on a redis-server of the test's own: the shared one's server-wide
    counters move with every other client's commands."""
    import redis

    with own_redis(tmp_path) as redis_url:
        app.config.update(
            APIKEYS_RATELIMIT_STORAGE_URI=redis_url,
            APIKEYS_RATELIMIT_KEY_PREFIX=f"test-{uuid.uuid4().hex}",
        )
        unlimited = make_key("bob@acme.test", ["client.read"])
        limited = make_key("bob@acme.test", ["client.read"], rate_limit="100/minute")
        assert _get(client, unlimited).status_code == 200  # the limiter is made, if at all
        server = redis.Redis.from_url(redis_url)

        def commands_during(secret: str, requests: int) -> int:
            before = int(server.info("stats")["total_commands_processed"])
            for _ in range(requests):
                assert _get(client, secret).status_code == 200
            return int(server.info("stats")["total_commands_processed"]) - before

        try:
            baseline = commands_during(unlimited, 0)  # the INFO itself
            assert commands_during(unlimited, 20) == baseline
            assert commands_during(limited, 5) > baseline  # the count sees a key's limit
        finally:
            server.close()


@pytest.mark.redis
def test_a_redis_limit_is_shared_by_every_app_using_it(
    app: Flask, make_key: Any, redis_url: str, tmp_path: Any
) -> None:
    """Two apps (think: two hosts) on one database and one Redis share each key's limit."""
    from example_app import create_app

    settings = {
        "APIKEYS_RATELIMIT_STORAGE_URI": redis_url,
        "APIKEYS_RATELIMIT_KEY_PREFIX": f"test-{uuid.uuid4().hex}",
    }
    app.config.update(settings)
    other = create_app(
        {
            **settings,
            "TESTING": True,
            "SECRET_KEY": "x",
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
        }
    )
    other.instance_path = str(tmp_path)
    secret = make_key("bob@acme.test", ["client.read"], rate_limit="4/minute")
    clients = [app.test_client(), other.test_client()]
    statuses = [_get(clients[n % 2], secret).status_code for n in range(8)]
    assert statuses.count(200) == 4
    assert statuses[:4] == [200] * 4
    with other.app_context():
        from example_app import apikeys, db

        apikeys.flush_usage(other)  # before the engine goes
        db.session.remove()
        db.engine.dispose()


# -- failed authentication per client address -----------------------------------------------


def _bad(n: int) -> str:
    """A well-formed key with a good checksum that is not in the database."""
    from flask_apikeys.keys.format import checksum

    random = f"{n:032d}"
    return f"fsk_{random}{checksum(random)}"


def test_over_the_limit_refused_keys_get_429_and_a_valid_key_is_still_served(
    app: Flask, client: FlaskClient, make_key: Any
) -> None:
    app.config["APIKEYS_FAILED_AUTH_LIMIT"] = "5/minute"
    good = make_key("bob@acme.test", ["client.read"])
    assert [_get(client, _bad(n)).status_code for n in range(5)] == [401] * 5
    with recorded_statements() as statements:
        blocked = [_get(client, _bad(100 + n)) for n in range(40)]
    # Refusals over the limit write nothing (no audit row per refusal).
    assert writes(statements) == []
    for response in blocked:
        assert response.status_code == 429
        assert response.json["error"] == "rate_limited"
        assert 1 <= int(response.headers["Retry-After"]) <= 60
    # A key that is found and usable is served, whatever its address did.
    assert _get(client, good).status_code == 200
    fresh = make_key("bob@acme.test", ["client.read"])
    assert _get(client, fresh).status_code == 200
    # Garbage costs no query: it gets its precise 401, blocked or not.
    garbage = _get(client, "garbage")
    assert garbage.status_code == 401 and garbage.json["error"] == "invalid_api_key"
    # Another address is not affected.
    other = _get(client, _bad(999), environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert other.status_code == 401


def test_a_revoked_key_in_a_retry_loop_does_not_lock_out_fresh_keys(
    app: Flask, client: FlaskClient, make_key: Any
) -> None:
    from example_app import apikeys

    app.config["APIKEYS_FAILED_AUTH_LIMIT"] = "3/minute"
    stale = make_key("bob@acme.test", ["client.read"])
    with app.app_context():
        apikeys.service.keys.revoke(
            apikeys.service.queries.get_by_display_prefix(parse_key(stale).display_prefix)
        )
    statuses = [_get(client, stale).status_code for _ in range(10)]
    assert statuses[:3] == [401] * 3 and set(statuses[3:]) == {429}
    assert _get(client, make_key("bob@acme.test", ["client.read"])).status_code == 200


def test_garbage_and_typos_never_lock_an_address_out(
    app: Flask, client: FlaskClient, make_key: Any
) -> None:
    app.config["APIKEYS_FAILED_AUTH_LIMIT"] = "2/minute"
    good = make_key("bob@acme.test", ["client.read"])
    typo = good[:-1] + ("A" if good[-1] != "A" else "B")
    for value in ["garbage", typo, "fsk_" + "é" * 38, "", typo]:
        response = client.get("/v1/clients", headers={"Authorization": f"Bearer {value}"})
        assert response.status_code == 401
    assert _get(client, good).status_code == 200


def test_missing_keys_do_not_count_as_failures(app: Flask, client: FlaskClient) -> None:
    app.config["APIKEYS_FAILED_AUTH_LIMIT"] = "2/minute"
    for _ in range(5):
        assert client.get("/v1/clients").status_code == 401
    assert _get(client, _bad(1)).status_code == 401


def test_behind_proxyfix_the_forwarded_client_address_is_throttled(
    app: Flask, client: FlaskClient, make_key: Any
) -> None:
    app.config["APIKEYS_FAILED_AUTH_LIMIT"] = "3/minute"
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1)  # type: ignore[method-assign]
    good = make_key("bob@acme.test", ["client.read"])
    attacker = {"X-Forwarded-For": "198.51.100.7"}
    for n in range(3):
        assert client.get("/v1/clients", headers={**bearer(_bad(n)), **attacker}).status_code == 401
    assert client.get("/v1/clients", headers={**bearer(_bad(9)), **attacker}).status_code == 429
    assert client.get("/v1/clients", headers={**bearer(good), **attacker}).status_code == 200
    honest = {"X-Forwarded-For": "198.51.100.8"}
    assert client.get("/v1/clients", headers={**bearer(_bad(9)), **honest}).status_code == 401


def test_without_proxyfix_x_forwarded_for_is_ignored(
    app: Flask, client: FlaskClient, make_key: Any
) -> None:
    app.config["APIKEYS_FAILED_AUTH_LIMIT"] = "3/minute"
    good = make_key("bob@acme.test", ["client.read"])
    for n in range(3):  # a client rotating X-Forwarded-For cannot escape the throttle
        spoof = {"X-Forwarded-For": f"198.51.100.{n}"}
        assert client.get("/v1/clients", headers={**bearer(_bad(n)), **spoof}).status_code == 401
    spoof = {"X-Forwarded-For": "198.51.100.200"}
    assert client.get("/v1/clients", headers={**bearer(_bad(9)), **spoof}).status_code == 429
    assert client.get("/v1/clients", headers={**bearer(good), **spoof}).status_code == 200


def test_the_throttle_can_be_turned_off(app: Flask, client: FlaskClient) -> None:
    app.config["APIKEYS_FAILED_AUTH_LIMIT"] = None
    assert {_get(client, _bad(n)).status_code for n in range(40)} == {401}
