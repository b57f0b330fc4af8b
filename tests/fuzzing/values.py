"""Generated values for the fuzzer: odd strings, raw bytes, keys almost right, header
values as a WSGI server hands them over, ids, query strings, form and JSON bodies."""

from __future__ import annotations

import base64
import json
import random
from typing import Any
from urllib.parse import quote_from_bytes

SPECIAL = [
    "",
    " ",
    "0",
    "-1",
    "1.5",
    "1e309",
    "NaN",
    "9" * 40,
    "9" * 309,  # beyond a float: OverflowError in WTForms' NumberRange
    "' OR '1'='1' --",
    '"; DROP TABLE users; --',
    "<script>alert(1)</script>",
    "{{ config }}",
    "${jndi:ldap://x}",
    "../../etc/passwd",
    "%00",
    "%",
    "%zz",
    "\u202eevil",
    "Ω≈ç√∫",
    "\U0001f511",
    "\ufeff",
    "null",
    "true",
    "[]",
    "{}",
    "\\",
    "//evil.test",
    "/\\evil.test",
    "https://evil.test/",
    "javascript:alert(1)",
    "203.0.113.0/24",
    "::1",
    "10.0.0.0/8\n2001:db8::/32",
    "300.1.1.1/99",
    "100/minute",
    "0/second",
    "1/day",
    "99999999999999999999/hour",
    "30d",
    "90d",
    "1y",
    "never",
    "custom",
    "read",
    "full",
    "1h",
    "now",
    "2030-01-01",
    "1999-12-31",
    "9999-12-31",
    "0000-00-00",
    "invoice.read",
    "api_key.manage",
]


class Values:
    """Values drawn from one ``random.Random``: the same seed, the same values."""

    def __init__(self, seed: int, keys: list[str]) -> None:
        self.rng = random.Random(seed)
        self.keys = keys  # valid keys of the app, refreshed by the harness
        self.key_ids: list[int] = [1, 2, 3]

    # -- values ------------------------------------------------------------------------

    def text(self) -> str:
        """A string for any field: mostly odd, sometimes plausible, rarely huge."""
        rng = self.rng
        roll = rng.random()
        if roll < 0.25:
            return rng.choice(SPECIAL)
        if roll < 0.40:
            return "".join(
                rng.choice("abcdefghijklmnopqrstuvwxyz0123456789 .-_@")
                for _ in range(rng.randint(1, 30))
            )
        if roll < 0.55:
            low = 0 if rng.random() < 0.2 else 0x20  # control characters in a fifth
            return "".join(chr(rng.randint(low, 0x7F)) for _ in range(rng.randint(1, 20)))
        if roll < 0.65:
            good = self.text_plain()
            cut = rng.randint(0, len(good))
            return (
                good[:cut]
                + rng.choice(["\x00", "\r\n", "\n", "\r", "\t", "\x1b", "\x7f", "\x00\x00"])
                + good[cut:]
            )
        if roll < 0.75:
            return "".join(
                chr(
                    rng.choice(
                        [
                            rng.randint(0x80, 0x7FF),
                            rng.randint(0x800, 0xD7FF),
                            rng.randint(0xE000, 0x10FFFF),
                        ]
                    )
                )
                for _ in range(rng.randint(1, 12))
            )
        if roll < 0.80:
            return rng.choice(["x", "\x00", "é", "A\r\n"]) * rng.choice([1000, 10_000, 100_000])
        if roll < 0.90:
            return self.key_like()
        return str(rng.choice([0, 1, 2, 3, -1, 2**31, 2**63, 10**30, rng.randint(-5, 50)]))

    def number(self) -> str:
        """What a number field may get: plausible, negative, huge, not a number."""
        rng = self.rng
        if rng.random() < 0.4:
            return str(rng.choice([1, 7, 30, 90, 365, 3650]))
        return rng.choice(
            [
                "0",
                "-1",
                "3651",
                "9" * 309,
                "-" + "9" * 309,
                "9" * 5000,  # beyond the digits int() reads: a ValueError
                str(2**63),
                "1e309",
                "1.5",
                "1_000",
                " 12 ",
                "+5",
                "\u0663",  # ARABIC-INDIC DIGIT THREE: int() reads it
                "NaN",
                "",
            ]
        )

    def text_plain(self) -> str:
        return self.rng.choice(
            ["bob@acme.test", "Accounting export", "demo-password", "ci key", "10.0.0.1"]
        )

    def raw(self) -> bytes:
        """Bytes that are often not UTF-8 at all."""
        rng = self.rng
        if rng.random() < 0.6:
            return self.text().encode("utf-8", "surrogatepass")
        low = 0 if rng.random() < 0.2 else 0x20  # control bytes in a fifth of them
        return bytes(rng.randint(low, 255) for _ in range(rng.randint(0, 40)))

    def key_like(self) -> str:
        """A key: valid, one character off, truncated, padded, of another prefix, or forged."""
        rng = self.rng
        key = rng.choice(self.keys) if self.keys else "fsk_" + "A" * 38
        roll = rng.random()
        if roll < 0.3:
            return key
        if roll < 0.5:
            i = rng.randrange(len(key))
            return key[:i] + rng.choice("aZ09_\x00 é") + key[i + 1 :]
        if roll < 0.6:
            return key[: rng.randrange(len(key))]
        if roll < 0.7:
            return (
                rng.choice([" ", "\t", "\x00", "\r\n"]) + key + rng.choice(["", " ", ",", "\x00"])
            )
        if roll < 0.8:
            return rng.choice(["ak_", "FSK_", "fsk-", "fsk__", ""]) + key[4:]
        if roll < 0.9:
            return key + "," + rng.choice(self.keys or [key])
        return "fsk_" + "".join(rng.choice("0123456789ABCDEFabcdef") for _ in range(38))

    def header(self) -> str:
        """A header value as a WSGI server hands it over: latin-1 decoded bytes."""
        return (
            self.raw().decode("latin-1")
            if self.rng.random() < 0.3
            else self.text().encode("utf-8", "surrogatepass").decode("latin-1")
        )

    def key_headers(self) -> dict[str, str]:
        rng = self.rng
        environ: dict[str, str] = {}
        roll = rng.random()
        if roll < 0.35:
            scheme = rng.choice(
                ["Bearer ", "bearer ", "Bearer  ", "BEARER ", "Token ", "Bearer", ""]
            )
            environ["HTTP_AUTHORIZATION"] = scheme + (
                self.key_like() if rng.random() < 0.7 else self.header()
            )
        elif roll < 0.5:
            user, password = (
                (self.key_like(), "") if rng.random() < 0.7 else (self.text(), self.key_like())
            )
            credentials = f"{user}:{password}".encode("utf-8", "surrogatepass")
            environ["HTTP_AUTHORIZATION"] = "Basic " + base64.b64encode(credentials).decode()
        elif roll < 0.55:
            environ["HTTP_AUTHORIZATION"] = self.header()
        if rng.random() < 0.4:
            environ["HTTP_X_API_KEY"] = self.key_like() if rng.random() < 0.7 else self.header()
        if rng.random() < 0.2:
            environ["HTTP_X_FORWARDED_FOR"] = rng.choice(
                [self.header(), "203.0.113.9", "::1, 10.0.0.1", "unknown"]
            )
        if rng.random() < 0.05:
            environ["HTTP_COOKIE"] = "session=" + self.header()
        return environ

    def ident(self) -> str:
        rng = self.rng
        roll = rng.random()
        if roll < 0.5 and self.key_ids:
            return str(rng.choice(self.key_ids))
        if roll < 0.7:
            return str(rng.choice([0, -1, 2**31, 2**63, 10**20, rng.randint(1, 200)]))
        return quote_from_bytes(self.raw(), safe="")

    def query(self, names: tuple[str, ...] = ()) -> bytes:
        rng = self.rng
        pairs = []
        for _ in range(rng.choice([0, 0, 0, 1, 1, 2, 3, 5])):
            name = (
                rng.choice(names)
                if names and rng.random() < 0.8
                else quote_from_bytes(self.raw(), safe="")
            )
            value = (
                self.raw() if rng.random() < 0.3 else self.text().encode("utf-8", "surrogatepass")
            )
            pairs.append(f"{name}={quote_from_bytes(value, safe='')}")
        if rng.random() < 0.05:
            pairs.append(rng.choice(["=", "&&", "a", "%", "%G0", "a=%00", "a[]=1&a[]=2"]))
        return "&".join(pairs).encode("ascii")

    def form(self, fields: dict[str, Any]) -> bytes:
        """An urlencoded body: each field fuzzed, kept plausible, or left out; extra junk."""
        rng = self.rng
        pairs: list[tuple[bytes, bytes]] = []
        for name, plausible in fields.items():
            roll = rng.random()
            if roll < 0.15:
                continue
            values = plausible if isinstance(plausible, list) else [plausible]
            if roll < 0.5:
                values = [rng.choice(values)]
            elif roll < 0.9:
                values = [
                    self.raw()
                    if rng.random() < 0.4
                    else self.text().encode("utf-8", "surrogatepass")
                ]
            else:
                values = [
                    self.text().encode("utf-8", "surrogatepass") for _ in range(rng.randint(2, 4))
                ]
            pairs += [
                (name.encode(), v if isinstance(v, bytes) else str(v).encode()) for v in values
            ]
        if rng.random() < 0.1:
            pairs.append((self.raw(), self.raw()))
        return "&".join(
            quote_from_bytes(k, safe="") + "=" + quote_from_bytes(v, safe="") for k, v in pairs
        ).encode()

    def nested(self) -> bytes:
        """JSON nested deeper than a parser goes (``[[[...]]]``), closed or not."""
        rng = self.rng
        depth = rng.choice([1100, 5000, 50_000])
        opening, closing = rng.choice([(b"[", b"]"), (b'{"a":', b"}")])
        inner = b"1" if opening != b"[" else b""
        return opening * depth + inner + (closing * depth if rng.random() < 0.7 else b"")

    def json_body(self) -> bytes:
        rng = self.rng
        roll = rng.random()
        if roll < 0.2:
            return self.raw()
        if roll < 0.25:
            return self.nested()
        values = [
            self.text(),
            rng.randint(-(2**70), 2**70),
            1,
            10**12,
            0,
            None,
            True,
            1.5,
            [],
            {},
            "EUR",
            "eur",
            "€€€",
        ]
        body = {
            name: rng.choice(values)
            for name in ("client_id", "amount_cents", "currency", self.text())
            if rng.random() < 0.8
        }
        if rng.random() < 0.3:
            body["client_id"] = rng.choice([1, 2, 3, 4, 99])
            body["amount_cents"] = rng.choice([1, 500, 10**12 - 1])
        return json.dumps(body if rng.random() < 0.9 else [body]).encode()
