"""The short fuzz run of the default suite: a few thousand generated requests at the example
app on the test database (SQLite, or PostgreSQL with TEST_DATABASE_URL); none may answer
5xx or leave a traceback in the log. ``scripts/fuzz`` runs 100,000 on each database.

``FUZZ_SEED`` picks other inputs (the default is fixed, so a failure reproduces).
"""

from __future__ import annotations

import logging
import os

import pytest

from tests.fuzzing.harness import counting_tracebacks, fuzz
from tests.fuzzing.inputs import Inputs

REQUESTS = 3000
SEED = int(os.environ.get("FUZZ_SEED", "20260"))


def test_a_few_thousand_fuzzed_requests_answer_no_5xx_and_log_no_traceback(database_url):
    report = fuzz(database_url, REQUESTS, SEED)
    assert report.requests == REQUESTS
    assert report.statuses[200] > 50, report.summary()  # the inputs reach the real views too
    assert report.statuses[401] > 50, report.summary()  # and the key checks
    assert report.server_errors == 0, "\n".join([report.summary(), *report.examples])
    assert report.tracebacks == 0, "\n".join([report.summary(), *report.examples])


@pytest.mark.backend_independent
def test_the_same_seed_makes_the_same_inputs():
    first, second = Inputs(7, ["fsk_" + "a" * 38]), Inputs(7, ["fsk_" + "a" * 38])
    assert [first.next().describe() for _ in range(200)] == [
        second.next().describe() for _ in range(200)
    ]


@pytest.mark.backend_independent
def test_a_traceback_in_the_log_is_counted():
    with counting_tracebacks() as log:
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logging.getLogger("example_app").exception("Exception on /x [GET]")
    assert len(log.records) == 1


@pytest.mark.backend_independent  # on a SQLite file of its own
def test_a_500_is_counted_with_a_reproducer(tmp_path, monkeypatch):
    """The harness sees a 5xx when there is one: the input check made to crash instead."""
    from example_app import hardening

    check = hardening.reject_control_characters

    def crash() -> None:
        try:
            check()
        except Exception as exc:
            raise RuntimeError("crashed on a control character") from exc

    monkeypatch.setattr(hardening, "reject_control_characters", crash)
    report = fuzz(f"sqlite:///{tmp_path / 'f.sqlite'}", 300, SEED)
    assert report.server_errors > 0
    assert report.tracebacks >= report.server_errors
    assert report.examples and all(" -> 500 " in example for example in report.examples)


@pytest.mark.backend_independent
def test_the_inputs_reach_every_form_with_hostile_bodies_and_huge_integers():
    """What the outside fuzz of issue #21 found is among the inputs: bodies that are no
    form at sign-in, sign-out and every form of the key pages, JSON nested too deep for
    the API, integers of any length in the policy form, each form with a valid token."""
    inputs = Inputs(SEED, ["fsk_" + "a" * 38, "fsk_" + "b" * 38, "fsk_" + "c" * 38])
    requests = [inputs.next() for _ in range(6000)]
    actions = {"new", "rename", "rotate", "revoke", "ip-allowlist", "rate-limit", "quota"}
    actions |= {"resources", "policy", "revoke-all"}

    def action(path: str) -> str:
        return path.rstrip("/").rsplit("/", 1)[-1]

    not_forms = [r for r in requests if r.kind == "not-a-form"]
    assert {"/login", "/logout"} <= {r.path for r in not_forms}
    assert actions <= {action(r.path) for r in not_forms}
    assert any(r.content_type and "json" in r.content_type and r.csrf == "valid" for r in not_forms)
    valid_forms = [r for r in requests if r.kind == "form" and r.csrf == "valid"]
    assert actions <= {action(r.path) for r in valid_forms}
    policy = b"".join(r.body or b"" for r in valid_forms if action(r.path) == "policy")
    assert b"9" * 309 in policy
    deep = [
        r
        for r in requests
        if r.path == "/v1/invoices" and (r.body or b"")[:1100] in (b"[" * 1100, b'{"a":' * 220)
    ]
    assert deep
