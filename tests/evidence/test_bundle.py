"""Export and verify: an intact bundle verifies (0); any single-bit change, deletion,
insertion, truncation, reordering, removed or added file fails (1), naming what failed;
a folder that is not a bundle is 2. The report lists violations by party and order."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pikepdf
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spywall import cli
from spywall.evidence import bundle, store, verify
from spywall.evidence.canonical import canonical
from spywall.evidence.keys import Signer

from .conftest import ORIGIN, sample_log


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Signer, Signer]:
    base = tmp_path_factory.mktemp("bundle")
    old, new = Signer.generate(ORIGIN), Signer.generate(ORIGIN)
    engine = store.open_engine(f"sqlite:///{base / 'log.db'}")
    store.create(engine)
    sample_log(engine, old, new)
    bundle.export(engine, base / "b", new)
    bundle.export_entry(engine, 4, base / "entry.json", new)
    engine.dispose()
    return base, old, new


def copy(src: Path, tmp: Path) -> Path:
    dst = tmp / uuid.uuid4().hex
    shutil.copytree(src, dst)
    return dst


def test_intact_bundle_verifies(built: tuple[Path, Signer, Signer]) -> None:
    base, old, new = built
    for key in (None, old.vkey(), new.vkey()):
        res = verify.verify_bundle(base / "b", key)
        assert res.status == verify.INTACT, res.problems
    res = verify.verify_bundle(base / "b")
    assert res.entries == 19
    assert res.tree_size == 19
    assert res.checkpoints == 2
    lines = (base / "b" / "entries.jsonl").read_bytes().splitlines()
    kinds = [json.loads(x)["entry"]["kind"] for x in lines]
    assert kinds.count("key-rotation") == 1
    assert kinds.count("violation") == 16


def test_unrelated_key_fails(built: tuple[Path, Signer, Signer]) -> None:
    other = Signer.generate(ORIGIN)
    res = verify.verify_bundle(built[0] / "b", other.vkey())
    assert res.status == verify.CHANGED
    assert "trusted key" in res.first


def test_party_and_since_selection(built: tuple[Path, Signer, Signer], tmp_path: Path) -> None:
    base, _, new = built
    engine = store.open_engine(f"sqlite:///{base / 'log.db'}")
    bundle.export(engine, tmp_path / "y", new, party="affiliate-y", pdf=False)
    bundle.export(engine, tmp_path / "s", new, since="2026-06-10")
    engine.dispose()
    for name in ("y", "s"):
        assert verify.verify_bundle(tmp_path / name).status == verify.INTACT
    y = [json.loads(x)["entry"] for x in (tmp_path / "y" / "entries.jsonl").open()]
    assert {e.get("party") for e in y if e["kind"] == "violation"} == {"affiliate-y"}
    assert any(e["kind"] == "key-rotation" for e in y)     # always included
    s = [json.loads(x)["entry"] for x in (tmp_path / "s" / "entries.jsonl").open()]
    assert all(e["ts"] >= "2026-06-10" for e in s if e["kind"] != "key-rotation")
    assert not (tmp_path / "y" / "report.pdf").exists()


def test_report_by_party_and_order(built: tuple[Path, Signer, Signer]) -> None:
    html = (built[0] / "b" / "report.html").read_text()
    assert "Party affiliate-y" in html
    assert "Party vendor-x" in html
    assert "N.D. Cal. 4:19-cv-07123 (order of 2025-10-17)" in html
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<td>ev-3</td>" in html
    assert "<td>party-identifier</td>" in html
    with pikepdf.open(built[0] / "b" / "report.pdf") as pdf:
        text = b"".join(p.Contents.read_bytes() for p in pdf.pages)
    assert b"Party vendor-x" in text
    assert b"ev-14" in text


def test_single_entry_file(built: tuple[Path, Signer, Signer], tmp_path: Path) -> None:
    base, _, new = built
    path = base / "entry.json"
    assert verify.verify_path(path, new.vkey()).status == verify.INTACT
    assert verify.verify_path(path, Signer.generate(ORIGIN).vkey()).status == verify.CHANGED
    doc = json.loads(path.read_bytes())
    doc["entry"]["event"] = "ev-999"
    bad = tmp_path / "bad.json"
    bad.write_bytes(canonical(doc))
    res = verify.verify_path(bad, new.vkey())
    assert res.status == verify.CHANGED
    assert "entry 4" in res.first
    (tmp_path / "t.json").write_bytes(path.read_bytes()[:-9])
    assert verify.verify_path(tmp_path / "t.json", new.vkey()).status == verify.CHANGED
    (tmp_path / "x.txt").write_text("hello")
    assert verify.verify_path(tmp_path / "x.txt").status == verify.NOT_A_BUNDLE


def test_not_a_bundle(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    for p in ("empty", "other", "missing"):
        assert verify.verify_path(tmp_path / p).status == verify.NOT_A_BUNDLE


def test_named_failures(built: tuple[Path, Signer, Signer], tmp_path: Path) -> None:
    b = copy(built[0] / "b", tmp_path)
    lines = (b / "entries.jsonl").read_bytes().splitlines(keepends=True)
    doc = json.loads(lines[5])
    doc["entry"]["verdict"] = "allow"
    lines[5] = canonical(doc) + b"\n"
    (b / "entries.jsonl").write_bytes(b"".join(lines))
    res = verify.verify_bundle(b)
    assert res.status == verify.CHANGED
    assert res.first.startswith(f"entry {doc['index']} ")
    c = copy(built[0] / "b", tmp_path)
    lines = (c / "entries.jsonl").read_bytes().splitlines(keepends=True)
    lines[2], lines[3] = lines[3], lines[2]
    (c / "entries.jsonl").write_bytes(b"".join(lines))
    assert "out of order" in verify.verify_bundle(c).first


MUTATIONS = ("flip", "delete", "insert", "truncate", "remove", "add", "swap")


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                    HealthCheck.function_scoped_fixture])
@given(st.sampled_from(MUTATIONS), st.data())
def test_any_change_fails(built: tuple[Path, Signer, Signer], tmp_path: Path, how: str,
                          data: st.DataObject) -> None:
    b = copy(built[0] / "b", tmp_path)
    files = sorted(p.name for p in b.iterdir())
    name = data.draw(st.sampled_from(files))
    path = b / name
    raw = bytearray(path.read_bytes())
    if how == "flip":
        bit = data.draw(st.integers(0, len(raw) * 8 - 1))
        raw[bit // 8] ^= 1 << (bit % 8)
    elif how == "delete":
        at = data.draw(st.integers(0, len(raw) - 1))
        del raw[at:at + data.draw(st.integers(1, 64))]
    elif how == "insert":
        at = data.draw(st.integers(0, len(raw)))
        raw[at:at] = data.draw(st.binary(min_size=1, max_size=16))
    elif how == "truncate":
        del raw[data.draw(st.integers(0, len(raw) - 1)):]
    elif how == "remove":
        path.unlink()
    elif how == "add":
        (b / data.draw(st.sampled_from(["extra.json", "entries.jsonl.bak", "z"]))).write_text("{}")
    elif how == "swap":
        path = b / data.draw(st.sampled_from(["entries.jsonl", "consistency.jsonl"]))
        lines = path.read_bytes().splitlines(keepends=True)
        i = data.draw(st.integers(0, len(lines) - 2))
        lines[i], lines[i + 1] = lines[i + 1], lines[i]
        raw = bytearray(b"".join(lines))
    if how not in ("remove", "add"):
        path.write_bytes(bytes(raw))
    res = verify.verify_bundle(b)
    assert res.status == verify.CHANGED, (how, name)
    assert res.first
    shutil.rmtree(b)


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    keyfile = tmp_path / "log.key"
    assert cli.main(["evidence", "keygen", ORIGIN, "--out", str(keyfile), "-f", "json"]) == 0
    vkey = json.loads(capsys.readouterr().out)["device"]["vkey"]
    engine = store.open_engine(db)
    store.create(engine)
    engine.dispose()
    entries = tmp_path / "e.jsonl"
    entries.write_text("\n".join(json.dumps(
        {"kind": "gate.denial", "ts": "2026-06-01T00:00:00Z", "event": f"e{i}",
         "verdict": "deny", "reasons": ["barred ip"], "rule": "party-identifier",
         "party": "vendor-x"}) for i in range(5)))
    common = ["--db", db, "--log-key", str(keyfile), "-f", "json"]
    assert cli.main(["evidence", "append", str(entries), *common]) == 0
    assert cli.main(["evidence", "checkpoint", *common]) == 0
    assert cli.main(["evidence", "audit", "--db", db, "-f", "json"]) == 0
    assert cli.main(["evidence", "export", str(tmp_path / "out"), *common]) == 0
    capsys.readouterr()
    assert cli.main(["evidence", "verify", str(tmp_path / "out"), "--key", vkey,
                     "-f", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["device"]["entries"] == 5
    (tmp_path / "out" / "report.html").write_text("forged")
    assert cli.main(["evidence", "verify", str(tmp_path / "out"), "-f", "json"]) == 1
    assert "report.html" in capsys.readouterr().out
    assert cli.main(["evidence", "verify", str(tmp_path), "-f", "json"]) == 2
    # rotate the key, then export one entry signed by the new key; --key as a file
    new_key = tmp_path / "new.key"
    capsys.readouterr()
    assert cli.main(["evidence", "keygen", ORIGIN, "--out", str(new_key), "-f", "json"]) == 0
    new_vkey = json.loads(capsys.readouterr().out)["device"]["vkey"]
    assert cli.main(["evidence", "rotate-key", "--new-key", str(new_key), *common]) == 0
    assert cli.main(["evidence", "checkpoint", *common]) == 2          # old key refused
    new_common = ["--db", db, "--log-key", str(new_key), "-f", "json"]
    assert cli.main(["evidence", "entry", "2", str(tmp_path / "e2.json"), *new_common]) == 0
    (tmp_path / "vkey").write_text(new_vkey + "\n")
    capsys.readouterr()
    assert cli.main(["evidence", "verify", str(tmp_path / "e2.json"), "--key",
                     str(tmp_path / "vkey"), "-f", "json"]) == 0
    assert cli.main(["evidence", "export", str(tmp_path / "out2"), *new_common]) == 0
    assert cli.main(["evidence", "verify", str(tmp_path / "out2"), "--key", vkey,
                     "-f", "json"]) == 0
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"kind": "nonsense", "ts": "2026-06-01T00:00:00Z"}\n')
    assert cli.main(["evidence", "append", str(bad), *common]) == 2


def test_report_lists_a_bounded_number_of_other_entries(
        built: tuple[Path, Signer, Signer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, _, new = built
    monkeypatch.setattr(bundle, "MAX_REPORT_OTHERS", 1)
    engine = store.open_engine(f"sqlite:///{base / 'log.db'}")
    done = bundle.export(engine, tmp_path / "c", new, pdf=False)
    engine.dispose()
    assert (done.entries, done.violations) == (19, 16)
    html = (tmp_path / "c" / "report.html").read_text()
    assert "2 more entries are in entries.jsonl" in html
    assert "Entries in this bundle: 19." in html
    assert verify.verify_bundle(tmp_path / "c").entries == 19
