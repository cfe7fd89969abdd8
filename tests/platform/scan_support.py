"""Hostile payloads for the tests of supervised scan workers (the gate's and the
hunt's): a real memory bomb, and a patched engine that hangs or crashes its worker (the
patch reaches the workers only through ``fork``)."""

from __future__ import annotations

import faulthandler
import io
import os
import zipfile
from collections.abc import Callable
from typing import Any

from spywall.limits import MiB
from spywall.samples.containers import png


def zip_of_zeros(mib: int = 240) -> bytes:
    """A zip (written by ``zipfile``) of a PNG and ``mib`` MiB of zeros deflated at level 1
    (a ratio of ~230:1, within every cap): only memory can stop its examination."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("photo.png", png())
        with zf.open("zeros.bin", "w", force_zip64=True) as member:
            block = bytes(MiB)
            for _ in range(mib):
                member.write(block)
    return out.getvalue()


def hostile_scan_bytes(real: Callable[..., Any], never_returns: Callable[..., None]
                       ) -> Callable[..., Any]:
    """``scan_bytes`` that hangs outside qpdf on ``STUCK...`` and aborts the worker (as
    a C library does when an allocation fails under the ceiling) on ``CRASH...``."""
    def scan_bytes(data: bytes, *args: Any, **kwargs: Any) -> Any:
        if data.startswith(b"STUCK"):
            never_returns()
        if data.startswith(b"CRASH"):
            faulthandler.disable()      # pytest's handler would print the worker's stack
            os.abort()
        return real(data, *args, **kwargs)

    return scan_bytes
