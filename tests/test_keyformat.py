"""Key format: every generated key parses; every typo and every garbage string fails."""

from __future__ import annotations

import contextlib
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flask_apikeys.keys import format as keyformat
from flask_apikeys.keys.format import (
    ALPHABET,
    KEY_PATTERN,
    KeyFormatError,
    checksum,
    generate_key,
    hash_secret,
    key_pattern,
    parse_key,
)

pytestmark = pytest.mark.backend_independent  # pure functions, no database

prefixes = st.from_regex(r"[a-z][a-z0-9]{0,15}", fullmatch=True)


@given(prefixes)
def test_every_generated_key_parses_and_matches_the_scanner_regex(prefix: str) -> None:
    generated = generate_key(prefix)
    parsed = parse_key(generated.secret, prefix)
    assert parsed.secret == generated.secret
    assert parsed.display_prefix == generated.display_prefix
    assert generated.display_prefix == generated.secret[: len(prefix) + 1 + 8]
    assert KEY_PATTERN.fullmatch(generated.secret)
    assert key_pattern(prefix).fullmatch(generated.secret)
    assert len(generated.secret) == len(prefix) + 1 + 32 + 6


def test_random_part_is_long_base62_and_unique() -> None:
    secrets = {generate_key("fsk").secret for _ in range(2000)}
    assert len(secrets) == 2000
    for secret in secrets:
        assert set(secret[4:]) <= set(ALPHABET)


@settings(max_examples=300)
@given(st.data())
def test_every_single_character_change_fails(data: st.DataObject) -> None:
    secret = generate_key("fsk").secret
    position = data.draw(st.integers(0, len(secret) - 1))
    replacement = data.draw(st.characters().filter(lambda c: c != secret[position]))
    changed = secret[:position] + replacement + secret[position + 1 :]
    with pytest.raises(KeyFormatError):
        parse_key(changed, "fsk")


@settings(max_examples=100)
@given(st.data())
def test_every_base62_substitution_in_the_body_fails_the_checksum(data: st.DataObject) -> None:
    # The key comes from Hypothesis (not from secrets), so a failing example replays.
    body = data.draw(st.text(alphabet=ALPHABET, min_size=32, max_size=32))
    secret = f"fsk_{body}{checksum(body)}"
    position = data.draw(st.integers(4, len(secret) - 1))
    replacement = data.draw(st.sampled_from([c for c in ALPHABET if c != secret[position]]))
    changed = secret[:position] + replacement + secret[position + 1 :]
    with pytest.raises(KeyFormatError, match="checksum"):
        parse_key(changed, "fsk")


@settings(max_examples=300)
@given(st.one_of(st.text(), st.text(max_size=10_000), st.binary(), st.none(), st.integers()))
def test_parsing_anything_raises_only_the_librarys_error(text: object) -> None:
    with contextlib.suppress(KeyFormatError):
        parse_key(text)


@pytest.mark.parametrize(
    "text",
    ["", " ", "fsk_", "é" * 10_000, "x" * 10_000, "\x00" * 40, "fsk_" + "ä" * 38, "Bearer x"],
)
def test_parsing_garbage_raises_key_format_error(text: str) -> None:
    with pytest.raises(KeyFormatError):
        parse_key(text)


def test_wrong_prefix_is_refused() -> None:
    secret = generate_key("fsk").secret
    with pytest.raises(KeyFormatError, match="prefix"):
        parse_key(secret, "fdk")


def test_surrounding_whitespace_is_not_a_key() -> None:
    secret = generate_key("fsk").secret
    with pytest.raises(KeyFormatError):
        parse_key(secret + "\n", "fsk")


@pytest.mark.parametrize("prefix", ["", "FSK", "1ab", "a_b", "a" * 17, "fsk-", "é"])
def test_invalid_prefixes_are_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        generate_key(prefix)


def test_the_scanner_regex_finds_keys_in_text_and_nothing_else() -> None:
    a, b = generate_key("fsk").secret, generate_key("ghx2").secret
    text = f"export KEY={a}\ncurl -H 'Authorization: Bearer {b}' https://x\nfsk_short"
    assert KEY_PATTERN.findall(text) == [a, b]
    assert key_pattern("fsk").findall(text) == [a]
    assert re.search(keyformat.KEY_PATTERN, "fsk_" + "a" * 37) is None


def test_hash_is_sha256_hex_and_the_pepper_changes_it() -> None:
    secret = generate_key("fsk").secret
    plain, peppered = hash_secret(secret), hash_secret(secret, b"pepper")
    assert len(plain) == len(peppered) == 64
    assert plain != peppered
    assert hash_secret(secret, b"pepper") == peppered
    assert secret not in plain


def test_generated_key_repr_hides_the_secret() -> None:
    generated = generate_key("fsk")
    assert generated.secret not in repr(generated)
