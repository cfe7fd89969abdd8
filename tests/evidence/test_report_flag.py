"""``--evidence-log`` on the commands that examine evidence: the report joins a
transparency log (a standalone SQLite file here), with the hashes of its inputs and its
findings, and a log that cannot be written is an error after the report is printed."""

from __future__ import annotations

import hashlib
import io
import json
from contextlib import redirect_stdout
from pathlib import Path

import sqlalchemy as sa

from spywall.cli import main
from spywall.evidence import store
from spywall.evidence.tables import log_entries
from spywall.samples.webp import chunk, plain, riff


def _run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(list(argv))
    return code, out.getvalue()


def test_scan_report_joins_the_log(tmp_path: Path) -> None:
    sample = tmp_path / "sticker.webp"
    sample.write_bytes(riff(chunk(b"VP8L", plain())))
    log_file = tmp_path / "lab.log"
    for _ in range(2):
        code, text = _run("scan", str(sample), "-f", "json", "-q", "--evidence-log",
                          str(log_file))
        assert code == 1
        assert json.loads(text)["summary"]["findings"] == 1
    engine = store.open_engine(store.target_url(str(log_file)))
    with engine.connect() as conn:
        bodies = [json.loads(r.body) for r in conn.execute(
            sa.select(log_entries).order_by(log_entries.c.idx))]
    assert [b["kind"] for b in bodies] == ["report", "report"]
    entry = bodies[0]
    assert entry["command"] == "scan"
    assert entry["inputs"][0]["sha256"] == hashlib.sha256(sample.read_bytes()).hexdigest()
    assert [f["rule"] for f in entry["findings"]] == ["webp-huffman-overflow"]


def test_a_log_that_cannot_be_written_is_an_error(tmp_path: Path) -> None:
    sample = tmp_path / "x.webp"
    sample.write_bytes(riff(chunk(b"VP8L", plain())))
    code, text = _run("scan", str(sample), "-f", "json", "-q", "--evidence-log",
                      f"sqlite:///{tmp_path}/missing/folder/log.db")
    assert code == 2
    assert json.loads(text)["summary"]["findings"] == 1, "the report is still printed"
