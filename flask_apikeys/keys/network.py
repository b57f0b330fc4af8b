"""Client addresses against a key's IP allowlist (IPv4 and IPv6).

Layer 1: standard library only. Parsed networks are cached by the tuple of CIDR
strings, so a key's allowlist is parsed once per process, not once per request.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable

__all__ = ["address_allowed", "parse_networks", "storable_address"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


def _normalise_address(text: str) -> Address | None:
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0].strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:203.0.113.7 is 203.0.113.7
    return address


def _normalise_network(text: str) -> Network | None:
    try:
        network = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None
    if isinstance(network, ipaddress.IPv6Network) and network.subnet_of(_MAPPED):
        # ::ffff:10.0.0.0/104 is 10.0.0.0/8
        first = network.network_address.ipv4_mapped
        if first is not None:
            return ipaddress.IPv4Network((first, network.prefixlen - 96))
    return network


@functools.lru_cache(maxsize=4096)
def parse_networks(networks: tuple[str, ...]) -> tuple[tuple[Network, ...], tuple[Network, ...]]:
    """The (IPv4, IPv6) networks of *networks*; unparsable entries are dropped."""
    v4: list[Network] = []
    v6: list[Network] = []
    for text in networks:
        network = _normalise_network(text)
        if network is None:
            continue
        (v4 if network.version == 4 else v6).append(network)
    return tuple(v4), tuple(v6)


def address_allowed(address: str | None, networks: Iterable[str] | None) -> bool:
    """Whether *address* may use a key restricted to *networks* (empty: anywhere).

    An unknown or unparsable address is refused when there is an allowlist.
    """
    if not networks:
        return True
    key = networks if isinstance(networks, tuple) else tuple(networks)
    if not key:
        return True
    if not address:
        return False
    parsed = _normalise_address(address)
    if parsed is None:
        return False
    v4, v6 = parse_networks(key)
    return any(parsed in network for network in (v4 if parsed.version == 4 else v6))


@functools.lru_cache(maxsize=4096)
def storable_address(text: str | None) -> str | None:
    """*text* as an IP address fit for a ``String(45)`` column, or ``None``.

    The client address comes from the WSGI server, or from ``X-Forwarded-For`` through
    ``ProxyFix``, which any client can fill with anything (NUL bytes included): only a
    real address is written to the audit trail or as a key's last-used address.
    """
    if not text:
        return None
    address = _normalise_address(text)
    return None if address is None else str(address)
