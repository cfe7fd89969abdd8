"""``-`` means standard input wherever a command reads a file (#18).

Standard input is read bounded like a file: a capture is streamed through a reader that
ends the data at a byte cap (the rest becomes a ``limit`` entry, so the capture is marked
incomplete), and an indicator bundle is spooled, in chunks, to a private temporary file
under the indicator loader's own size cap and loaded as that file. Nothing is held whole
in memory that a file of the same size would not be; a terminal on standard input is
refused rather than waited on.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from spywall.errors import InputError

if TYPE_CHECKING:
    from spywall.iocs import IocIndex

STDIN = "-"
CHUNK = 1 << 20


def stdin_stream(what: str) -> BinaryIO:
    """Standard input as bytes; ``InputError`` if it is a terminal (nothing piped in)."""
    stream = sys.stdin.buffer if sys.stdin is not None else None
    if stream is None or stream.isatty():
        raise InputError(f"{what}: standard input is a terminal; pipe the data in")
    return stream


def read_once(paths: Sequence[str], what: str) -> None:
    """``InputError`` if ``-`` is named more than once: standard input is read once."""
    if list(paths).count(STDIN) > 1:
        raise InputError(f"{what} is named twice: standard input can be read only once")


class CappedStream:
    """The first ``cap`` bytes of ``raw``, then end of data; ``over`` tells whether more
    followed. Reads return what the pipe has (``read1``), so a live capture piped in
    (``tcpdump -w - | spywall pcap -``) is examined as it arrives."""

    __slots__ = ("cap", "over", "raw", "seen")

    def __init__(self, raw: BinaryIO, cap: int) -> None:
        self.raw, self.cap, self.seen, self.over = raw, cap, 0, False

    def read(self, n: int = -1) -> bytes:
        left = self.cap - self.seen
        if left <= 0:
            if not self.over and self._read(1):
                self.over = True
            return b""
        chunk = self._read(min(CHUNK if n < 0 else n, left))
        self.seen += len(chunk)
        return chunk

    def _read(self, n: int) -> bytes:
        read1 = getattr(self.raw, "read1", None)
        return bytes(read1(n) if read1 is not None else self.raw.read(n))


def _spool(dest: Path, cap: int) -> None:
    """Standard input to ``dest``, in chunks, refused past ``cap`` bytes."""
    stream = stdin_stream("--iocs -")
    total = 0
    with dest.open("wb") as out:
        while chunk := stream.read(CHUNK):
            total += len(chunk)
            if total > cap:
                raise InputError(f"--iocs -: more than {cap} bytes on standard input (the "
                                 "cap of an indicator file)")
            out.write(chunk)
    if total == 0:
        raise InputError("--iocs -: standard input is empty (expected a STIX 2 bundle)")


def load_iocs(paths: Sequence[str]) -> IocIndex:
    """``IocIndex.load(paths)``, where ``-`` is a STIX 2 bundle (or an indicator CSV) on
    standard input, named ``-`` in the report's indicator sources."""
    from spywall.iocs import IocIndex
    from spywall.iocs.index import MAX_IOC_FILE

    if STDIN not in paths:
        return IocIndex.load(paths)
    read_once(paths, "--iocs -")
    with tempfile.TemporaryDirectory(prefix="spywall-iocs-") as tmp:
        raw = Path(tmp) / "stdin"
        _spool(raw, MAX_IOC_FILE)
        with raw.open("rb") as fh:
            head = fh.read(64).lstrip()
        # the loader tells a bundle from a CSV list by the suffix
        spooled = raw.rename(Path(tmp) / ("stdin.json" if head[:1] in (b"{", b"[")
                                          else "stdin.csv"))
        try:
            index = IocIndex.load([str(spooled) if p == STDIN else p for p in paths])
        except InputError as exc:
            raise InputError(str(exc).replace(str(spooled), "--iocs -")
                             .replace(spooled.name, "--iocs -")) from None
    for source in index.sources:
        if source.path == str(spooled):
            source.path = STDIN
    index.unsupported = [u.replace(f"{spooled.name}: ", "--iocs -: ", 1)
                         for u in index.unsupported]
    return index
