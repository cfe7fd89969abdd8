"""Fuzz the evidence verifier: a valid bundle (built once, at start) with one of its
files replaced by the input, and the input as a single-entry file. The verifier must
answer (0, 1 or 2) and never raise."""

import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from spywall.evidence import bundle, log, store, verify
    from spywall.evidence.keys import Signer

TMP = Path(tempfile.mkdtemp(prefix="fuzz-evidence-"))
KEY = Signer.generate("fuzz.example/log")


def _build() -> list[str]:
    engine = store.open_engine(f"sqlite:///{TMP / 'log.db'}")
    store.create(engine)
    for n in (3, 4):
        with engine.begin() as conn:
            log.append(conn, [{"kind": "notification", "ts": "2026-01-01T00:00:00Z",
                               "target": f"t{i}", "campaign": "c", "status": "sent"}
                              for i in range(n)])
            log.checkpoint(conn, KEY)
    bundle.export(engine, TMP / "b", KEY, pdf=False)
    bundle.export_entry(engine, 2, TMP / "entry.json", KEY)
    engine.dispose()
    return sorted(p.name for p in (TMP / "b").iterdir())


FILES = _build()
ENTRY = (TMP / "entry.json").read_bytes()


def TestOneInput(data: bytes) -> None:
    if not data:
        return
    name = FILES[data[0] % len(FILES)]
    path = TMP / "b" / name
    original = path.read_bytes()
    path.write_bytes(data[1:])
    try:
        result = verify.verify_bundle(TMP / "b", KEY.vkey())
        assert result.status in (verify.CHANGED, verify.INTACT)
        assert result.status == verify.CHANGED or data[1:] == original
    finally:
        path.write_bytes(original)
    single = TMP / "single.json"
    single.write_bytes(data[1:] if data[0] & 1 else ENTRY[: len(data)] + data)
    assert verify.verify_entry(single, KEY.vkey()).status in (0, 1, 2)


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
