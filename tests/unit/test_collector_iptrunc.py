"""IP truncation (/24, /48), the batch fast path, and where the client address comes from."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector_svc.iptrunc import (
    parse_networks,
    peer_host,
    request_client_ip,
    truncate_ip,
    truncate_ipv4_column,
)

TRUSTED = parse_networks(["10.0.0.0/8", "fd00::/8"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("203.0.113.77", "203.0.113.0"),
        ("0.0.0.0", "0.0.0.0"),
        ("255.255.255.255", "255.255.255.0"),
        ("2001:db8:1234:5678::1", "2001:db8:1234::"),
        ("2001:0db8:1234:ffff:ffff:ffff:ffff:ffff", "2001:db8:1234::"),
        ("::1", "::"),
        ("::ffff:198.51.100.9", "198.51.100.0"),
        ("fe80::1%eth0", "fe80::"),
    ],
)
def test_truncate(text: str, expected: str) -> None:
    assert truncate_ip(text) == expected
    assert truncate_ip(expected) == expected  # idempotent


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1.2.3",
        "1.2.3.4.5",
        "01.2.3.4",
        "256.1.1.1",
        "1.2.3.4 ",
        " 1.2.3.4",
        "\u0661.\u0662.\u0663.\u0664",
        "x",
        "1::2::3",
        "::g",
    ],
)
def test_not_an_address(text: str) -> None:
    assert truncate_ip(text) is None


@given(st.ip_addresses())
def test_truncate_matches_ipaddress(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        expected = str(ipaddress.ip_network(f"{addr.ipv4_mapped}/24", strict=False).network_address)
    else:
        prefix = 24 if addr.version == 4 else 48
        expected = str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False).network_address)
    assert truncate_ip(str(addr)) == expected


@given(st.lists(st.one_of(st.just(""), st.ip_addresses(v=4).map(str)), min_size=1, max_size=50))
def test_column_fast_path(ips: list[str]) -> None:
    assert truncate_ipv4_column(ips) == [truncate_ip(ip) if ip else "" for ip in ips]


@pytest.mark.parametrize("bad", ["2001:db8::1", "1.2.3.4\n5.6.7.8", "300.1.1.1", "1.2.3.4x"])
def test_column_fast_path_declines(bad: str) -> None:
    assert truncate_ipv4_column(["1.2.3.4", bad]) is None


def test_peer_host() -> None:
    assert peer_host("ipv4:127.0.0.1:5000") == "127.0.0.1"
    assert peer_host("ipv6:[::1]:5000") == "::1"
    assert peer_host("unix:/tmp/sock") is None


def test_peer_used_when_not_a_proxy() -> None:
    metadata = [("x-forwarded-for", "198.51.100.7")]
    assert request_client_ip("ipv4:203.0.113.9:4000", metadata, TRUSTED) == "203.0.113.0"


def test_xff_ignored_without_trusted_proxies() -> None:
    metadata = [("x-forwarded-for", "198.51.100.7")]
    assert request_client_ip("ipv4:10.1.2.3:4000", metadata, ()) == "10.1.2.0"


def test_xff_believed_from_trusted_proxy() -> None:
    metadata = [("x-forwarded-for", "198.51.100.7, 10.9.9.9")]
    assert request_client_ip("ipv4:10.1.2.3:4000", metadata, TRUSTED) == "198.51.100.0"


def test_xff_spoofed_left_entries_ignored() -> None:
    # the client prepended a fake address; the right-most untrusted hop is what the proxy saw
    metadata = [("x-forwarded-for", "1.1.1.1, 198.51.100.7")]
    assert request_client_ip("ipv4:10.1.2.3:4000", metadata, TRUSTED) == "198.51.100.0"


def test_xff_ipv6_through_trusted_ipv6_proxy() -> None:
    metadata = [("x-forwarded-for", "2001:db8:aaaa:bbbb::1")]
    assert request_client_ip("ipv6:[fd00::5]:4000", metadata, TRUSTED) == "2001:db8:aaaa::"


def test_xff_malformed_stops_at_last_trusted_hop() -> None:
    metadata = [("x-forwarded-for", "garbage, 10.7.7.7")]
    assert request_client_ip("ipv4:10.1.2.3:4000", metadata, TRUSTED) == "10.7.7.0"


def test_unknown_peer() -> None:
    assert request_client_ip("unix:/tmp/x", (), TRUSTED) is None


def test_parse_networks_error_names_the_value() -> None:
    with pytest.raises(ValueError, match="nope"):
        parse_networks(["10.0.0.0/8", "nope"])
