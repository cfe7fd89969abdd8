"""Fuzz check-sysdiagnose: the streaming tar reader on raw bytes, and the whole check on
a generated sysdiagnose archive with one of its files replaced, or the archive's
decompressed tar cut and mutated.

The first byte picks what the rest of the input becomes: the content of one file the
modules read, the tar stream itself (gzip-compressed again), or a raw archive. Nothing
may escape but ``SpywallError`` (InputError when the input is no archive at all).
"""

import contextlib
import gzip
import io
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from spywall.errors import SpywallError
    from spywall.iocs import Indicator, IocIndex
    from spywall.ios import tarstream
    from spywall.ios.sysdiagnose_check import check_sysdiagnose
    from spywall.limits import Limits
    from spywall.samples import ios_sysdiagnose as gen

TMP = tempfile.TemporaryDirectory(prefix="fuzz-sysdiagnose-")
PATH = Path(TMP.name, gen.ARCHIVE)
FILES = gen.files()
TARGETS = sorted(FILES)
INDEX = IocIndex()
INDEX.add([Indicator("process", "bundpwrd", "process:name", "Fuzz", "fuzz")])
LIMITS = Limits(max_ratio=200, seconds=5)
CAPS = tarstream.Caps(max_members=1000, max_bytes=8 << 20, max_member=1 << 20, seconds=5)


def TestOneInput(data: bytes) -> None:
    if not data:
        return
    with contextlib.suppress(SpywallError):
        for _ in tarstream.members(io.BytesIO(data[1:]), CAPS, lambda n: len(n) % 2 == 0):
            pass
    pick, body = data[0] % (len(TARGETS) + 2), data[1:]
    if pick < len(TARGETS):
        files = dict(FILES)
        files[TARGETS[pick]] = body
        raw = gen.archive(extra={f"{gen.NAME}/{k}": v for k, v in files.items()
                                 if k == TARGETS[pick]})
    elif pick == len(TARGETS):
        raw = gzip.compress(body, 1)
    else:
        raw = body
    PATH.write_bytes(raw)
    with contextlib.suppress(SpywallError):
        check_sysdiagnose(PATH, INDEX, limits=LIMITS)


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
