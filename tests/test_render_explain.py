"""``spywall explain``: every rule id the code can report has an explanation that tells
what, how sure, what next and where to read more."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import spywall
from spywall.cli import main
from spywall.rulebook import explanation_text, rulebook

Cap = pytest.CaptureFixture[str]
SRC = Path(spywall.__file__).parent
# Rule ids written in the code where findings are made: the first argument of a
# heuristic, an _indicators call or a RULE constant, a rule=/Rule(/Rule id literal.
LITERALS = re.compile(
    r"""(?:heuristic\(\s*|_indicators\(\s*|\bRULE\s*=\s*|_RULE\s*=\s*|rule=|Rule\(\s*|"""
    r"""id=)(f?)"([a-z0-9]+(?:-[a-z0-9{}_.'()\[\]]+)+)\"""")


def _rules_in_source() -> set[str]:
    found: set[str] = set()
    for path in SRC.rglob("*.py"):
        if "samples" in path.parts:
            continue
        for fmt, rule in LITERALS.findall(path.read_text()):
            if not fmt:
                found.add(rule)
    return found


def _rules_reported_on_samples(tmp_path: Path) -> set[str]:
    from spywall.android.check import check_capture
    from spywall.iocs import IocIndex
    from spywall.ios.check import check_backup
    from spywall.samples import all_samples
    from spywall.samples.android import androidqf_files, write_tree
    from spywall.samples.captures import capture_samples
    from spywall.samples.ios import write_backup

    rules = {r for s in all_samples() for r in s.expected}
    rules |= {r for s in capture_samples() for r in s.expected}
    index = IocIndex.load()
    ios = check_backup(write_backup(tmp_path / "b"), index, index.sources).report
    out = check_capture(write_tree(androidqf_files(True), tmp_path / "a"), index,
                        index.sources).report
    return rules | {f.rule for f in ios.all_findings()} | {f.rule for f in out.all_findings()}


def test_every_rule_id_in_the_code_is_explained() -> None:
    in_code = _rules_in_source()
    assert {"ios-outdated", "triangulation-backupagent-network", "ioc-tls-sni",
            "incomplete-examination"} <= in_code  # the oracle finds what it must
    missing = in_code - set(rulebook())
    assert not missing, f"no explanation for {sorted(missing)}"


def test_every_rule_reported_on_the_samples_is_explained(tmp_path: Path) -> None:
    reported = _rules_reported_on_samples(tmp_path)
    assert len(reported) > 30
    missing = reported - set(rulebook())
    assert not missing, f"no explanation for {sorted(missing)}"


def test_every_explanation_tells_the_story() -> None:
    for info in rulebook().values():
        text = explanation_text(info)
        for part in ("What it means:", "How sure:", "What to do next:", "Read more:"):
            assert part in text, (info.id, part)
        assert len(info.description) > 20, info.id
        assert "https://www.accessnow.org/help/" in text
        assert all(len(line) <= 78 or line.startswith("  http") or " " not in line.strip()
                   for line in text.splitlines()), info.id


def test_explain_command(capsys: Cap) -> None:
    assert main(["explain", "webp-huffman-overflow"]) == 0
    out = capsys.readouterr().out
    assert "CVE-2023-4863" in out
    assert "Lockdown Mode" in out
    assert main(["explain", "webp-huffman-overflow", "-f", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["id"] == "webp-huffman-overflow"
    assert "https://nvd.nist.gov/vuln/detail/CVE-2023-4863" in doc["read_more"]
    assert main(["explain"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == len(rulebook())
    assert main(["explain", "webp-hufman\x1b[2J"]) == 2
    err = capsys.readouterr().err
    assert "webp-huffman-overflow" in err  # a close match is suggested
    assert "\x1b" not in err
    assert main(["explain", "ios-outdated", "-f", "sarif"]) == 2


def test_sarif_rules_carry_the_explanation(tmp_path: Path, capsys: Cap) -> None:
    from spywall.samples.containers import jpeg, zip_of

    bad = tmp_path / "bad.jpg"
    bad.write_bytes(jpeg() + zip_of({"stage.so": b"\x7fELF" + bytes(40)}))
    assert main(["scan", str(bad), "-f", "sarif", "-q"]) == 1
    (rule,) = json.loads(capsys.readouterr().out)["runs"][0]["tool"]["driver"]["rules"]
    assert rule["id"] == "appended-archive"
    assert "What to do next:" in rule["help"]["text"]
    assert rule["fullDescription"]["text"].startswith("appended-archive:")
