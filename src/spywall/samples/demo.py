"""``python -m spywall.samples.demo DIR``: generate everything ``make demo`` runs on.

- DIR/files/{crafted,benign}: the crafted and benign attachment samples, with a
  MANIFEST.tsv naming the detector ids each must trigger (``spywall scan``);
- DIR/captures: call captures with the 2019 zero-click pattern and clean twins
  (``spywall pcap``);
- DIR/ios-planted, DIR/ios-clean: synthetic iPhone backups (``spywall check-ios``);
- DIR/android-planted.zip, DIR/android-clean.zip: androidqf captures
  (``spywall check-android``).
All of it is built by code from public facts; nothing is downloaded.
"""

from __future__ import annotations

import sys
from pathlib import Path

from spywall.samples import all_samples


def write_samples(root: Path) -> int:
    rows = []
    for s in all_samples():
        sub = root / ("crafted" if s.expected else "benign")
        sub.mkdir(parents=True, exist_ok=True)
        (sub / s.name).write_bytes(s.data)
        rows.append(f"{sub.name}/{s.name}\t{','.join(sorted(s.expected)) or '-'}\t{s.note}")
    (root / "MANIFEST.tsv").write_text("file\texpected detectors\tnote\n" + "\n".join(rows) + "\n")
    return len(rows)


def write_evidence(root: Path) -> None:
    """Captures, iPhone backups and Android captures, each planted and clean."""
    from spywall.samples import android, captures, ios

    captures.write_all(root / "captures")
    for planted in (True, False):
        label = "planted" if planted else "clean"
        ios.write_backup(root / f"ios-{label}", ios.BackupSpec(planted=planted))
        (root / f"android-{label}.zip").write_bytes(android.androidqf_zip(planted))


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m spywall.samples.demo DIR", file=sys.stderr)
        return 2
    root = Path(argv[0])
    n = write_samples(root / "files")
    write_evidence(root)
    print(f"wrote {n} attachment samples, captures, backups and Android captures to {root}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
