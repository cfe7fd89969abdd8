"""Properties of the gate's look-ups, against independent oracles: Python's ``ipaddress``
for addresses and ranges, ``str.startswith`` for phone prefixes, ``fnmatch`` for client
patterns; and the gate's promise that a registry change is seen by the next decision."""

from __future__ import annotations

import fnmatch
import ipaddress
from pathlib import Path

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spywall.platform import db
from spywall.platform.contract import from_mapping
from spywall.platform.intake import Intake
from spywall.platform.matcher import RegistryIndex
from spywall.platform.registry import Identifier, Party, Registry
from spywall.platform.registry_store import import_registry, retire_identifier

v4_nets = st.builds(lambda a, n: ipaddress.ip_network((a, n), strict=False),
                    st.integers(0, 2**32 - 1), st.integers(0, 32))
v6_nets = st.builds(lambda a, n: ipaddress.ip_network((a, n), strict=False),
                    st.integers(0, 2**128 - 1), st.integers(0, 128))
v4_addrs = st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address)
v6_addrs = st.integers(0, 2**128 - 1).map(ipaddress.IPv6Address)


def _index(idents: list[tuple[str, str]], official: list[str] | None = None) -> RegistryIndex:
    party = Party(id="p", name="P", identifiers=[Identifier(kind=k, value=v) for k, v in idents])
    return RegistryIndex([party], official or [])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(v4_nets, v6_nets), min_size=1, max_size=12),
       st.lists(st.one_of(v4_addrs, v6_addrs), min_size=1, max_size=12))
def test_cidr_lookups_agree_with_ipaddress(nets: list[ipaddress._BaseNetwork],
                                           addrs: list[ipaddress._BaseAddress]) -> None:
    index = _index([("cidr", str(n)) for n in nets])
    for addr in addrs:
        got = sorted({h.value for h in index.ip(str(addr))})
        want = sorted({str(n) for n in nets if n.version == addr.version and addr in n})
        assert got == want, addr


@settings(max_examples=200, deadline=None)
@given(st.lists(v4_nets, min_size=1, max_size=8), v4_addrs)
def test_an_address_outside_every_range_is_never_denied(nets: list[ipaddress.IPv4Network],
                                                        addr: ipaddress.IPv4Address) -> None:
    index = _index([("cidr", str(n)) for n in nets])
    inside = any(addr in n for n in nets)
    assert bool(list(index.ip(str(addr)))) == inside


digits = st.text("0123456789", min_size=1, max_size=12)


@settings(max_examples=300, deadline=None)
@given(st.lists(digits, min_size=1, max_size=8), st.lists(digits, min_size=1, max_size=8))
def test_phone_prefixes_agree_with_startswith(prefixes: list[str], phones: list[str]) -> None:
    index = _index([("phone_prefix", "+" + p) for p in prefixes])
    for phone in ("+" + p for p in phones):
        got = sorted({h.value for h in index.phone(phone)})
        want = sorted({"+" + p for p in prefixes if phone.startswith("+" + p)})
        assert got == want


clients = st.text("ABWIS/0123456789. *?", min_size=1, max_size=14)


@settings(max_examples=200, deadline=None)
@given(st.lists(clients, min_size=1, max_size=5), st.lists(clients, min_size=1, max_size=5))
def test_client_patterns_agree_with_fnmatch(patterns: list[str], seen: list[str]) -> None:
    index = _index([("client", p.strip() or "x") for p in patterns], official=patterns)
    for value in seen:
        want_official = any(fnmatch.fnmatchcase(value, p) for p in patterns)
        assert index.is_official(value) == want_official
        got = {h.value for h in index.client(value)}
        want = {p.strip() or "x" for p in patterns
                if fnmatch.fnmatchcase(value, p.strip() or "x")}
        assert got == want


def _call(ident: str, ip: str) -> dict[str, str]:
    return {"id": ident, "type": "call.offered", "ts": "2026-01-01T00:00:00Z",
            "call": f"c-{ident}", "caller": "someone", "callee": "other", "ip": ip}


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(v4_addrs)
def test_a_registry_change_is_seen_by_the_next_decision(tmp_path: Path,
                                                         addr: ipaddress.IPv4Address) -> None:
    url = f"sqlite:///{tmp_path}/gate-{int(addr)}.db"
    engine = db.make_engine(url)
    db.init_schema(engine)
    intake = Intake(engine)
    first = intake.submit([from_mapping(_call(f"a{int(addr)}", str(addr)))])[0]
    assert first.verdict == "allow"
    registry = Registry(parties=[Party(id="vendor", name="Vendor", identifiers=[
        Identifier(kind="ip", value=str(addr), source="test")])])
    with engine.begin() as conn:
        import_registry(conn, registry, "test", "property test")
    intake.refresh()
    second = intake.submit([from_mapping(_call(f"b{int(addr)}", str(addr)))])[0]
    assert second.verdict == "deny"
    assert second.party == "vendor"
    with engine.begin() as conn:
        assert retire_identifier(conn, "vendor", "ip", str(addr), "test", "retired in test")
    intake.refresh()
    third = intake.submit([from_mapping(_call(f"c{int(addr)}", str(addr)))])[0]
    assert third.verdict == "allow"
    with engine.connect() as conn:
        actions = [r.action for r in conn.execute(sa.select(db.registry_changes))]
    assert actions == ["party-add", "identifier-add", "identifier-retire"]
    engine.dispose()
