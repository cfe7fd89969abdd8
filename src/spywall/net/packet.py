"""The unit the capture layer hands to protocol analyzers.

A ``Datagram`` is one UDP payload, or for TCP the next in-order bytes of one direction of a
stream (after reassembly). It is the only per-packet object the decode hot path creates.
"""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from spywall.report import Location


class Datagram(msgspec.Struct):
    """One transport payload with where and when it was seen.

    ``frame`` is the 1-based frame number as Wireshark counts it; for a reassembled IPv4
    datagram it is the frame that completed it. ``ts`` is seconds since the epoch.
    ``start`` tells framers of TCP bytes to forget what they held for that direction: a new
    connection on the same addresses and ports, or a gap reassembly had to skip.
    """

    frame: int
    ts: float
    src: str
    dst: str
    sport: int
    dport: int
    transport: str
    payload: bytes
    start: bool = False   # TCP: these bytes begin the stream (or follow a skipped gap)


def iso(ts: float) -> str:
    """A capture timestamp as ISO-8601 UTC (microseconds)."""
    try:
        return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        return f"{ts:.6f}"


def location(d: Datagram, protocol: str | None = None) -> Location:
    """The report location of a datagram (``protocol`` defaults to its transport; no ports
    for a bare IP packet)."""
    ports = d.transport != "ip"
    return Location(frame=d.frame, timestamp=iso(d.ts), src=d.src, dst=d.dst,
                    sport=d.sport if ports else None, dport=d.dport if ports else None,
                    protocol=protocol or d.transport)
