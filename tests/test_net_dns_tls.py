"""DNS names (compression, loops) and TLS ClientHello SNI."""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spywall.errors import FormatError, SpywallError, TruncatedError
from spywall.net import dns, tls
from spywall.samples.captures import client_hello, dns_query, dns_response


def test_query_name() -> None:
    msg = dns.parse(dns_query("Sip.NSOgroup.com"))
    assert msg.questions == ["sip.nsogroup.com"]
    assert not msg.response


def test_response_with_cname_and_compression() -> None:
    msg = dns.parse(dns_response("a.example.net", ["192.0.2.1", "2001:db8::5"],
                                 cname="cdn.example.org"))
    assert msg.response
    assert msg.questions == ["a.example.net"]
    assert msg.names == ["a.example.net", "cdn.example.org", "cdn.example.org",
                         "cdn.example.org"]
    assert msg.addresses == ["192.0.2.1", "2001:db8::5"]


def test_pointer_loop_is_an_error() -> None:
    msg = struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0) + b"\xc0\x0c" + b"\x00\x01\x00\x01"
    with pytest.raises(FormatError, match="compression pointers"):
        dns.parse(msg)


def test_long_pointer_chain_is_capped() -> None:
    msg = bytes(12) + b"\x01a\x00"           # the name "a" at offset 12
    for i in range(40):                       # pointer i at 15 + 2i points at the one before
        msg += struct.pack("!H", 0xC000 | (12 if i == 0 else 15 + 2 * (i - 1)))
    assert dns.read_name(msg, 15 + 2 * 20)[0] == "a"
    with pytest.raises(FormatError, match="compression pointers"):
        dns.read_name(msg, 15 + 2 * 39)


def test_name_length_is_capped() -> None:
    name = ".".join(["a" * 63] * 5)
    with pytest.raises(FormatError, match="longer than"):
        dns.parse(dns_query(name))


def test_truncated_message() -> None:
    with pytest.raises(TruncatedError):
        dns.parse(dns_query("example.com")[:-3])


def test_absurd_counts() -> None:
    with pytest.raises(FormatError):
        dns.parse(struct.pack("!HHHHHH", 1, 0x8000, 1, 60000, 0, 0))


@pytest.mark.parametrize("records", [1, 2, 5])
def test_sni_from_one_or_more_records(records: int) -> None:
    assert tls.client_hello_sni(client_hello("Sip.2access.xyz", records=records)) == \
        "sip.2access.xyz"


def test_sni_needs_more_bytes_until_the_hello_is_whole() -> None:
    hello = client_hello("example.org", records=2)
    assert tls.client_hello_sni(hello[:30]) == tls.NEED_MORE
    assert tls.client_hello_sni(hello[:-1]) == tls.NEED_MORE
    assert tls.client_hello_sni(hello) == "example.org"


def test_hello_without_sni() -> None:
    assert tls.client_hello_sni(client_hello(None)) is None


def test_not_tls() -> None:
    assert not tls.looks_like_tls(b"GET / HTTP/1.1\r\n")
    assert tls.looks_like_tls(client_hello("a.b"))


def test_broken_extension_length() -> None:
    hello = bytearray(client_hello("example.org"))
    hello[-12] = 0xFF
    with pytest.raises(SpywallError):
        tls.client_hello_sni(bytes(hello))


SEED_DNS = [dns_query("a.b.example"), dns_response("x.example", ["192.0.2.9"], cname="y.ex")]
SEED_TLS = [client_hello("sip.example.net"), client_hello("a.b", records=3)]


def _survives(parse: Callable[[bytes], object], data: bytes) -> None:
    """``parse`` returns or raises a SpywallError, nothing else."""
    with contextlib.suppress(SpywallError):
        parse(data)


def _mutate(seed: bytes, edits: list[tuple[int, int]], cut: int) -> bytes:
    data = bytearray(seed)
    for pos, val in edits:
        data[pos % len(data)] = val
    return bytes(data[:max(0, len(data) - cut)])


PARSERS: dict[str, tuple[Callable[[bytes], object], list[bytes], bytes]] = {
    "dns": (dns.parse, SEED_DNS, b""),
    "tls": (tls.client_hello_sni, SEED_TLS, b"\x16\x03\x01"),
}


@pytest.mark.parametrize("name", sorted(PARSERS))
@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_mutations_raise_only_spywall_errors(name: str, data: st.DataObject) -> None:
    parse, seeds, _ = PARSERS[name]
    seed = data.draw(st.sampled_from(seeds))
    edits = data.draw(st.lists(st.tuples(st.integers(0, 500), st.integers(0, 255)),
                               max_size=6))
    _survives(parse, _mutate(seed, edits, data.draw(st.integers(0, 40))))


@pytest.mark.parametrize("name", sorted(PARSERS))
@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=400))
def test_random_input_raises_only_spywall_errors(name: str, body: bytes) -> None:
    parse, _, prefix = PARSERS[name]
    _survives(parse, prefix + body)
