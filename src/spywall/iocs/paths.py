"""Where ``spywall iocs update`` stores what it fetches (light: no network library is
imported to know it)."""

from __future__ import annotations

import os
from pathlib import Path


def default_dest() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "spywall" / "iocs"
