"""The Rust IP truncation against collector_svc.iptrunc.truncate_ip (Python's ipaddress rules): same accepted
texts, same output text, and only the network part is ever produced."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector_svc.iptrunc import truncate_ip
from tests.unit.test_fastpath_differential import IP_SAMPLES

fastpath = pytest.importorskip("gnomon_fastpath")


def _same(text: str) -> None:
    assert fastpath.truncate_ip(text) == truncate_ip(text), text


MORE_SAMPLES = ["0.0.0.0", "1.2.3.4.5", " 1.2.3.4", "::ffff:0:0", "0:0:0:0:0:ffff:1.2.3.4", "1.2.3.4."]


@pytest.mark.parametrize("text", [*IP_SAMPLES, *MORE_SAMPLES])
def test_samples(text: str) -> None:
    _same(text)


@settings(max_examples=1500, deadline=None)
@given(st.ip_addresses())
def test_every_address_form(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    _same(str(addr))
    _same(addr.exploded)
    _same(str(addr).upper())
    if addr.version == 6:
        _same(f"{addr}%eth0")
        _same(f"::ffff:{ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)}")
        hextets = addr.exploded.split(":")
        _same(":".join(hextets[:6]) + ":" + str(ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)))


_ip_alphabet = st.sampled_from([*"0123456789abcdefABCDEFg:.%/ \n", "é", "\u0661", "::", "1.2.3.4"])


@settings(max_examples=3000, deadline=None)
@given(st.lists(_ip_alphabet, max_size=24).map("".join))
def test_address_like_text(text: str) -> None:
    _same(text)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=80))
def test_any_text(text: str) -> None:
    _same(text)


@given(st.ip_addresses())
def test_only_the_network_is_kept(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    short = fastpath.truncate_ip(str(addr))
    assert short is not None
    network = ipaddress.ip_network(short + ("/24" if "." in short else "/48"))
    assert network.network_address == ipaddress.ip_address(short)
