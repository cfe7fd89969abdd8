"""STIX loading: the fast pattern path agrees with stix2-patterns; odd forms load or are
refused cleanly; hostile bundles raise only SpywallError."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spywall.errors import InputError, SpywallError
from spywall.iocs import bundled_dir
from spywall.iocs.model import object_path
from spywall.iocs.stix import (
    UnsupportedPattern,
    comparisons,
    fast_comparisons,
    load_bundle,
    load_csv,
    slow_comparisons,
)

BUNDLED = sorted(bundled_dir().glob("*.stix2"))


def _norm(comps: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return sorted((object_path(t), v) for t, v in comps)


def _patterns(path: object) -> list[str]:
    doc = json.loads(path.read_bytes())  # type: ignore[attr-defined]
    return [o["pattern"] for o in doc["objects"] if o.get("type") == "indicator"]


def test_bundled_files_present() -> None:
    # the 16 public STIX sets of shared/iocs, plus spywall's own court-record set
    assert len(BUNDLED) == 17
    assert "spywall_whatsapp_2019.stix2" in {p.name for p in BUNDLED}


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.name)
def test_fast_path_agrees_with_stix2_patterns(path: object) -> None:
    pats = _patterns(path)
    assert pats
    for p in pats:
        fast = fast_comparisons(p)
        assert fast is not None, p  # every published pattern takes the fast path
        assert _norm(fast) == _norm(slow_comparisons(p)), p


ODD = [
    ("[domain-name:value = 'a.com' OR domain-name:value = 'b.com']",
     [("domain-name:value", "a.com"), ("domain-name:value", "b.com")]),
    ("[url:value = 'https://x.com/?a=b&c=d']", [("url:value", "https://x.com/?a=b&c=d")]),
    ("[file:name = 'it\\'s = here']", [("file:name", "it's = here")]),
    ("[file:path = 'C:\\\\tmp\\\\x']", [("file:path", "C:\\tmp\\x")]),
    ("[file:hashes.'SHA-256' = 'AB' OR file:hashes.md5 = 'cd']",
     [("file:hashes.'SHA-256'", "AB"), ("file:hashes.md5", "cd")]),
    ("[process:name='a']", [("process:name", "a")]),
]


@pytest.mark.parametrize(("pattern", "expected"), ODD)
def test_odd_simple_forms(pattern: str, expected: list[tuple[str, str]]) -> None:
    assert fast_comparisons(pattern) == expected
    assert _norm(slow_comparisons(pattern)) == _norm(expected)


def test_observation_or_goes_through_fallback() -> None:
    p = "[domain-name:value = 'a.com'] OR [ipv4-addr:value = '1.2.3.4']"
    assert fast_comparisons(p) is None
    assert _norm(comparisons(p)) == [("domainname:value", "a.com"), ("ipv4addr:value", "1.2.3.4")]


@pytest.mark.parametrize("pattern", [
    "[domain-name:value = 'a.com' AND url:value = 'http://a.com/x']",
    "[domain-name:value != 'a.com']",
    "[domain-name:value LIKE 'a%']",
    "[domain-name:value = 'a.com'] FOLLOWEDBY [domain-name:value = 'b.com']",
    "[domain-name:value = 'a.com'] WITHIN 5 SECONDS",
    "[domain-name:value = 'a.com'",
    "domain-name:value = 'a.com'",
    "[file:size = 5]",
])
def test_unsupported_forms_refused(pattern: str) -> None:
    with pytest.raises(UnsupportedPattern):
        comparisons(pattern)


def _bundle(*patterns: str, malware: str | None = "Evil") -> bytes:
    objs: list[dict[str, object]] = []
    if malware:
        objs.append({"type": "malware", "id": "malware--1", "name": malware})
    for i, p in enumerate(patterns):
        objs.append({"type": "indicator", "id": f"indicator--{i}", "pattern": p,
                     "pattern_type": "stix"})
        objs.append({"type": "relationship", "relationship_type": "indicates",
                     "source_ref": f"indicator--{i}", "target_ref": "malware--1"})
    return json.dumps({"type": "bundle", "id": "bundle--1", "objects": objs}).encode()


def test_bundle_collections_and_unsupported() -> None:
    data = _bundle("[domain-name:value = 'EVIL.com.']", "[x-foo:bar = 'y']",
                   "[domain-name:value = 'a' AND domain-name:value = 'b']",
                   "[ipv4-addr:value = '10.0.0.0/8']", "[domain-name:value = '1.2.3.4']")
    got = load_bundle(data, "t.stix2", "t")
    assert [(i.kind, i.value, i.collection) for i in got.indicators] == [
        ("domain", "evil.com", "Evil"), ("cidr", "10.0.0.0/8", "Evil"), ("ipv4", "1.2.3.4", "Evil")]
    assert len(got.unsupported) == 2
    assert got.collections == ["Evil"]


def test_bundle_without_malware_uses_file_stem() -> None:
    got = load_bundle(_bundle("[app:id = 'com.x']", malware=None), "x.stix2", "x")
    assert got.indicators[0].collection == "x"


@pytest.mark.parametrize("data", [b"", b"{", b"[]", b'{"objects": 3}', b"\xff\xfe", b"[" * 100_000])
def test_bad_bundles_raise_input_error(data: bytes) -> None:
    with pytest.raises(InputError):
        load_bundle(data, "bad", "bad")


def test_csv_form() -> None:
    got = load_csv(b'domain_name,ip_address\n"a.com","1.2.3.4"\n"b.com",""\n', "n.csv", "Pegasus")
    assert [(i.kind, i.value) for i in got.indicators] == [
        ("domain", "a.com"), ("ipv4", "1.2.3.4"), ("domain", "b.com")]
    with pytest.raises(InputError):
        load_csv(b"x,y\n1,2\n", "n.csv", "P")


_TYPES = st.sampled_from(["domain-name:value", "file:hashes.'SHA-256'", "app:id", "file:path",
                          "android-property:name", "process:name", "url:value"])
_VALUES = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)


def _lit(v: str) -> str:
    return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(_TYPES, _VALUES), min_size=1, max_size=4))
def test_generated_or_patterns_agree(comps: list[tuple[str, str]]) -> None:
    pattern = "[" + " OR ".join(f"{t} = {_lit(v)}" for t, v in comps) + "]"
    fast = fast_comparisons(pattern)
    assert fast == comps
    assert _norm(slow_comparisons(pattern)) == _norm(comps)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_random_patterns_only_value_error(text: str) -> None:
    start = time.monotonic()
    with contextlib.suppress(UnsupportedPattern):
        comparisons(text)
    assert time.monotonic() - start < 120  # a hang guard, not a speed test


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400), st.integers(0, 2000))
def test_mutated_bundles_only_spywall_errors(noise: bytes, at: int) -> None:
    base = _bundle("[domain-name:value = 'a.com' OR app:id = 'x']", "[file:path = '/x']")
    at = at % len(base)
    data = base[:at] + noise + base[at + len(noise) // 2:]
    with contextlib.suppress(SpywallError):
        load_bundle(data, "m", "m")


def test_slow_parser_budget_per_file(monkeypatch: pytest.MonkeyPatch) -> None:
    import spywall.iocs.stix as stix

    monkeypatch.setattr(stix, "MAX_SLOW", 1)
    data = _bundle("[domain-name:value = 'a.com'] OR [domain-name:value = 'b.com']",
                   "[domain-name:value = 'c.com'] OR [domain-name:value = 'd.com']",
                   "[domain-name:value = 'e.com']")
    got = load_bundle(data, "s", "s")
    assert sorted(i.value for i in got.indicators) == ["a.com", "b.com", "e.com"]
    assert len(got.unsupported) == 1
    assert "complex patterns" in got.unsupported[0]


@pytest.mark.parametrize("encode", [
    lambda text: text.encode("utf-16"),          # json accepts UTF-16/32, msgspec does not
    lambda text: b"\xef\xbb\xbf" + text.encode(),  # a UTF-8 byte-order mark
    lambda text: text.replace('"t"', "NaN").encode(),  # a NaN value somewhere in the bundle
])
def test_bundles_msgspec_refuses_still_load(encode: Callable[[str], bytes]) -> None:
    text = _bundle("[domain-name:value = 'evil.com']").decode()
    text = text.replace('"objects"', '"x_note": "t", "objects"')
    got = load_bundle(encode(text), "t.stix2", "t")
    assert [(i.kind, i.value) for i in got.indicators] == [("domain", "evil.com")]


def test_fast_path_does_not_import_the_pattern_parser() -> None:
    code = ("import sys; from spywall.iocs import IocIndex; IocIndex.load(); "
            "print('stix2patterns' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=6)
_FIELD = st.sampled_from(["type", "id", "name", "pattern", "pattern_type",
                          "relationship_type", "source_ref", "target_ref", "objects"])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.dictionaries(_FIELD, _JSON | st.sampled_from(
    ["indicator", "malware", "relationship", "indicates", "stix", "malware--1"])),
    max_size=6))
def test_objects_with_any_field_values_load_as_the_json_reading_does(
        odd: list[dict[str, object]]) -> None:
    """Every field the loader reads may hold any JSON value (a list as ``type`` once
    crashed it): the good indicator still loads, and the decoding that skips unread
    fields gives what reading the whole document gives (forced by a byte-order mark)."""
    doc = json.loads(_bundle("[domain-name:value = 'evil.com']"))
    doc["objects"] += odd
    text = json.dumps(doc)
    fast = load_bundle(text.encode(), "t.stix2", "t")
    whole = load_bundle(b"\xef\xbb\xbf" + text.encode(), "t.stix2", "t")
    assert ("domain", "evil.com") in [(i.kind, i.value) for i in fast.indicators]
    assert [(i.kind, i.value, i.collection) for i in fast.indicators] == \
        [(i.kind, i.value, i.collection) for i in whole.indicators]
    assert fast.unsupported == whole.unsupported
    assert fast.collections == whole.collections
