"""IP truncation: the collector keeps only the /24 (IPv4) or /48 (IPv6) network of a client address.

Contract: the functions here take a full address and return only its truncated form (or None when the text is
not an address). The full address is never stored, logged, cached beyond one batch, or put in an exception
message by this module; callers get nothing from which it could be recovered.

Where the client address comes from (`request_client_ip`): the event's own `ip` field wins (handled by the
caller); otherwise the right-most X-Forwarded-For entry that is not a trusted proxy, but only when the TCP
peer itself is a trusted proxy; otherwise the TCP peer.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from typing import Any

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_V4 = re.compile(rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}")
_V4_LINES = re.compile(
    rf"(?:(?:{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET})?\n)*(?:{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET})?"
)
_LAST_OCTET = re.compile(r"\.[0-9]+$", re.MULTILINE)
_V6_MASK = ((1 << 48) - 1) << 80
MAX_IP_TEXT = 64  # longer text is never a valid address (IPv6 with a zone id included)


def truncate_ip(text: str) -> str | None:
    """`text`'s /24 (IPv4) or /48 (IPv6) network address as text, or None if `text` is not an IP address.

    Dotted-quad IPv4 is handled by a strict regex (no leading zeros, ASCII digits only, as `ipaddress`);
    everything else goes through `ipaddress`. IPv4-mapped IPv6 (::ffff:a.b.c.d) is truncated as IPv4.
    Zone ids (fe80::1%eth0) are dropped.
    """
    if _V4.fullmatch(text):
        return text[: text.rindex(".")] + ".0"
    if len(text) > MAX_IP_TEXT or ":" not in text:
        return None
    try:
        addr = ipaddress.IPv6Address(text)
    except ValueError:
        return None
    mapped = addr.ipv4_mapped
    if mapped is not None:
        return str(ipaddress.IPv4Address(int(mapped) & 0xFFFFFF00))
    return str(ipaddress.IPv6Address(int(addr) & _V6_MASK))


def truncate_ipv4_column(ips: Sequence[str]) -> list[str] | None:
    """Batch fast path: every text truncated to its /24, or None unless each one is dotted-quad IPv4 or "".

    One regex pass over the joined column instead of one call per address; "" stays "".
    """
    joined = "\n".join(ips)
    if not _V4_LINES.fullmatch(joined):
        return None
    out = _LAST_OCTET.sub(".0", joined).split("\n")
    return out if len(out) == len(ips) else None


def parse_networks(specs: Iterable[str]) -> tuple[IpNetwork, ...]:
    """Parse CIDR strings such as "10.0.0.0/8" or "::1/128"; raises ValueError naming the bad one."""
    out: list[IpNetwork] = []
    for spec in specs:
        try:
            out.append(ipaddress.ip_network(spec.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{spec!r} is not a CIDR network such as 10.0.0.0/8 or fd00::/8") from None
    return tuple(out)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        addr = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _trusted(addr: ipaddress.IPv4Address | ipaddress.IPv6Address, trusted: Sequence[IpNetwork]) -> bool:
    return any(addr.version == net.version and addr in net for net in trusted)


def peer_host(peer: str) -> str | None:
    """The host part of a gRPC peer string ("ipv4:1.2.3.4:5", "ipv6:[::1]:5"); None for unix sockets etc."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rpartition(":")[0] or None
    if kind == "ipv6":
        host = rest.rpartition(":")[0]
        return host[1:-1] if host.startswith("[") and host.endswith("]") else host or None
    return None


def request_client_ip(peer: str, metadata: Any, trusted: Sequence[IpNetwork]) -> str | None:
    """The truncated client address of a request whose events carry no `ip`, or None if unknown.

    X-Forwarded-For is believed only when the TCP peer is a trusted proxy; then its entries are walked from
    the right, skipping trusted proxies, and the first other address is the client (a malformed entry stops
    the walk at the last trusted hop; if every hop is trusted, the left-most one is used). A client can
    therefore never spoof its address through the header.
    """
    host = peer_host(peer)
    peer_addr = _address(host) if host else None
    if peer_addr is None:
        return None
    client = peer_addr
    if trusted and _trusted(peer_addr, trusted):
        hops = [
            part
            for key, value in metadata or ()
            if key == "x-forwarded-for" and isinstance(value, str)
            for part in value.split(",")
        ]
        for hop in reversed(hops):
            addr = _address(hop)
            if addr is None:
                break
            client = addr
            if not _trusted(addr, trusted):
                break
    return truncate_ip(str(client))
