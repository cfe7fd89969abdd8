"""Adversarial suite: indicator files built to cost gigabytes or minutes in the STIX
loader (many tiny values, huge ids, patterns and values, floods of unsupported objects).
Each CLI case runs under the ceilings of ``hostile_run``; the assertions name the cap that
stopped the work, so they fail on code without it whatever the speed of the machine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hostile_run import assert_sound, run_cli

from spywall.errors import InputError
from spywall.iocs import stix


def _indicator(
    i: int, pattern: str, ident: str | None = None, pattern_type: str = "stix"
) -> dict[str, str]:
    return {
        "type": "indicator",
        "id": ident or f"indicator--{i}",
        "pattern": pattern,
        "pattern_type": pattern_type,
    }


def _write(path: Path, objects: list[dict[str, str]]) -> Path:
    path.write_text(json.dumps({"type": "bundle", "id": "bundle--1", "objects": objects}))
    return path


def test_millions_of_tiny_values_are_refused_before_decoding(tmp_path: Path) -> None:
    path = tmp_path / "tiny.json"
    # 40 million of these were 2.8 GB as Python objects; the cap is checked first
    path.write_bytes(b'{"objects": [' + b"{}," * (stix.MAX_VALUES + 10) + b"{}]}")
    run = run_cli("iocs", "stats", "--iocs", str(path))
    assert "Traceback" not in run.stderr
    assert run.code == 2
    assert f"over the cap of {stix.MAX_VALUES}: not decoded" in run.stderr


def test_a_flood_of_unsupported_objects_is_counted_not_listed(tmp_path: Path) -> None:
    n = stix.MAX_UNSUPPORTED_LISTED * 20
    huge_id = "indicator--" + "x" * 1_000_000
    objects = [_indicator(0, "[domain-name:value = 'a.example']", huge_id, "yara")]
    objects += [
        _indicator(i, "rule x { condition: true }", pattern_type="y" * 5000) for i in range(1, n)
    ]
    path = _write(tmp_path / "flood.json", objects)
    run = run_cli("iocs", "stats", "--iocs", str(path))
    assert_sound(run)
    assert run.report["device"]["unsupported_patterns"] == n  # type: ignore[index]
    loaded = stix.load_bundle(path.read_bytes(), "flood.json", "x")
    assert loaded.unsupported_total == n
    assert len(loaded.unsupported) == stix.MAX_UNSUPPORTED_LISTED
    first = loaded.unsupported[0]
    assert first.startswith("indicator--xxx")
    assert f"({len(huge_id)} characters): pattern_type yara" in first
    assert len(first) < 300
    assert all(len(m) < 300 for m in loaded.unsupported)


def test_huge_patterns_and_values_are_not_parsed(tmp_path: Path) -> None:
    long_value = "a" * (stix.MAX_VALUE_CHARS + 1) + ".example"
    huge = "[" + " OR ".join(["domain-name:value = 'b.example'"] * 40_000) + "]"
    assert len(huge) > stix.MAX_PATTERN_CHARS
    objects = [
        _indicator(0, f"[domain-name:value = '{long_value}']"),
        _indicator(1, huge),
        _indicator(2, "[domain-name:value = 'c.example']"),
    ]
    path = _write(tmp_path / "huge.json", objects)
    run = run_cli("iocs", "stats", "--iocs", str(path))
    assert_sound(run)
    assert run.report["device"]["indicators"] == 1  # type: ignore[index]
    messages = [e["message"] for e in run.report["errors"]]  # type: ignore[index]
    assert any(f"longer than any look-up ({stix.MAX_VALUE_CHARS})" in m for m in messages)
    assert any(f"over the cap of {stix.MAX_PATTERN_CHARS}: not parsed" in m for m in messages)


def test_deep_json_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_bytes(b'{"objects": ' + b"[" * 1_000_000 + b"]" * 1_000_000 + b"}")
    run = run_cli("iocs", "stats", "--iocs", str(path))
    assert "Traceback" not in run.stderr
    assert run.code == 2
    assert "deep.json" in run.stderr


def test_the_indicator_count_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stix, "MAX_INDICATORS", 50)
    pattern = "[" + " OR ".join(f"domain-name:value = 'a{i}.example'" for i in range(20)) + "]"
    data = json.dumps({"objects": [_indicator(i, pattern) for i in range(3)]}).encode()
    with pytest.raises(InputError, match="more than 50 indicators"):
        stix.load_bundle(data, "many.json", "x")
    two = json.dumps({"objects": [_indicator(i, pattern) for i in range(2)]}).encode()
    assert len(stix.load_bundle(two, "two.json", "x").indicators) == 40
