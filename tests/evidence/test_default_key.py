"""The contract's 'spywall evidence export DIR' with the embedded defaults: no key given,
the log key is made once in ./spywall-log.key (owner-only) and the bundle verifies."""

from __future__ import annotations

import io
import os
import stat
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from spywall.cli import main
from spywall.evidence.keys import DEFAULT_KEY_FILE, KEY_ENV
from spywall.platform.world import generate


def _run(*argv: str) -> int:
    with redirect_stdout(io.StringIO()):
        return main(list(argv))


def test_export_with_the_default_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv("SPYWALL_DB", raising=False)
    monkeypatch.chdir(tmp_path)
    generate(tmp_path / "world", background_users=5)
    assert _run("platform", "init", "-q", "-f", "json") == 0
    assert _run("platform", "registry", "import", "world/registry.json", "-f", "json") == 0
    assert _run("platform", "ingest", "world/events.jsonl", "-q", "-f", "json") == 1
    assert _run("evidence", "export", "bundle") == 0
    key = tmp_path / DEFAULT_KEY_FILE
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert _run("evidence", "verify", "bundle") == 0
    first = key.read_text()
    assert _run("evidence", "export", "bundle2") == 0
    assert key.read_text() == first, "made once, then reused"
    (tmp_path / "bundle" / "entries.jsonl").write_text(
        (tmp_path / "bundle" / "entries.jsonl").read_text().replace("wis-6", "wis-7", 1))
    assert _run("evidence", "verify", "bundle") == 1
