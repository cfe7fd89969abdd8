"""``python -m spywall.samples.demo DIR``: write the crafted and benign samples to DIR.

Crafted samples go to DIR/crafted, benign controls to DIR/benign; a MANIFEST.tsv lists
each file with the detector ids it must trigger. ``make demo`` then scans DIR.
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


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m spywall.samples.demo DIR", file=sys.stderr)
        return 2
    root = Path(argv[0])
    n = write_samples(root)
    print(f"wrote {n} samples to {root} (see {root / 'MANIFEST.tsv'})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
