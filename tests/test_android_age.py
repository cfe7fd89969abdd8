"""androidqf captures encrypted with age (<UUID>.zip.age): encrypted by the age tool (the
reference Go implementation, an independent encoder), opened by check-android."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from spywall.android.age_capture import MAGIC, decrypt, identities
from spywall.cli import main
from spywall.errors import InputError, LimitExceeded
from spywall.report import load_report
from spywall.samples import android as gen

pytestmark = pytest.mark.skipif(shutil.which("age") is None or shutil.which("age-keygen")
                                is None, reason="the age tool is not installed")
UUID = "6f1c2f0e-0000-4000-8000-000000000001"


def _keys(tmp: Path) -> tuple[Path, str]:
    key = tmp / "privatekey.txt"
    subprocess.run(["age-keygen", "-o", str(key)], check=True, capture_output=True,
                   timeout=60)
    public = next(line.split(": ", 1)[1] for line in key.read_text().splitlines()
                  if line.startswith("# public key: "))
    return key, public


def _encrypted_capture(tmp: Path, recipient: str) -> Path:
    (tmp / "qf.zip").write_bytes(gen.androidqf_zip(True))
    out = tmp / f"{UUID}.zip.age"
    subprocess.run(["age", "-r", recipient, "-o", str(out), str(tmp / "qf.zip")],
                   check=True, capture_output=True, timeout=60)
    (tmp / "qf.zip").unlink()
    return out


def test_encrypted_capture_with_its_key(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    key, public = _keys(tmp_path)
    enc = _encrypted_capture(tmp_path, public)
    assert enc.read_bytes().startswith(MAGIC)
    assert main(["check-android", str(enc), "--age-key", str(key), "-f", "json", "-q"]) == 1
    rep = load_report(capsys.readouterr().out)
    assert rep.subjects[0].format == "androidqf"
    assert {f.indicator.collection for f in rep.all_findings() if f.indicator} >= {
        "NoviSpy", "Predator", "RCSLab"}
    assert sorted(p.name for p in tmp_path.iterdir()) == [enc.name, "privatekey.txt"]


def test_encrypted_capture_without_or_with_another_key(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    _, public = _keys(tmp_path)
    enc = _encrypted_capture(tmp_path, public)
    assert main(["check-android", str(enc), "-f", "json", "-q"]) == 2
    assert "--age-key" in capsys.readouterr().err
    other = tmp_path / "other"
    other.mkdir()
    wrong, _ = _keys(other)
    assert main(["check-android", str(enc), "--age-key", str(wrong), "-f", "json", "-q"]) == 2
    assert "cannot decrypt the capture" in capsys.readouterr().err


def test_passphrase_and_hostile_work_factor(tmp_path: Path) -> None:
    (tmp_path / "x").write_bytes(b"PK\x05\x06" + bytes(18))
    with pytest.raises(InputError, match="passphrase"):
        decrypt(MAGIC + b"-> scrypt c2FsdA 18\nAAAA\n--- AAAA\n", [], None)
    with pytest.raises(LimitExceeded):
        decrypt(MAGIC + b"-> scrypt c2FsdA 40\nAAAA\n--- AAAA\n", [], "pw")
    with pytest.raises(InputError):
        identities("# no key here\n")
    assert json.dumps(identities("# c\nAGE-SECRET-KEY-1" + "Q" * 58 + "\n"))
