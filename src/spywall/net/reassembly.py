"""Bounded reassembly: IP fragments into datagrams, TCP segments into in-order bytes.

Every piece of state is capped (fragments per datagram, datagrams in flight, bytes held in
total, age in capture time; TCP streams, bytes held out of order per stream and in all), so
memory stays flat however large or hostile the capture is. When a cap is hit the state it
protects is dropped and the caller is told (an error entry), and the capture goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

import msgspec

MAX_FRAGMENTS = 64            # fragments of one datagram
MAX_IN_FLIGHT = 1024          # datagrams being reassembled at once
MAX_FRAG_BYTES = 16 << 20     # bytes held in all of them
FRAG_TIMEOUT = 30.0           # seconds of capture time (Linux ipfrag_time)
MAX_DATAGRAM = 65535

MAX_STREAMS = 4096
MAX_STREAM_PENDING = 256 << 10   # out-of-order bytes held for one direction
MAX_TCP_PENDING = 32 << 20       # out-of-order bytes held for every stream
MAX_SEGMENTS_PENDING = 512

Problem = Callable[[str, str, str], None]   # (code or rule, message, kind: error|finding)


class _Frags(msgspec.Struct):
    first_ts: float
    parts: list[tuple[int, bytes]] = msgspec.field(default_factory=list)
    total: int | None = None
    held: int = 0
    overlap: bool = False


class Fragments:
    """IPv4 (and IPv6) fragment sets keyed by (src, dst, proto, id)."""

    def __init__(self) -> None:
        self.sets: dict[Hashable, _Frags] = {}
        self.held = 0
        self.expired = 0

    def _drop(self, key: Hashable) -> None:
        st = self.sets.pop(key, None)
        if st is not None:
            self.held -= st.held

    def _expire(self, now: float) -> None:
        for key in [k for k, s in self.sets.items() if now - s.first_ts > FRAG_TIMEOUT]:
            self._drop(key)
            self.expired += 1

    def add(self, key: Hashable, offset: int, more: bool, data: bytes, ts: float,
            problem: Problem) -> bytes | None:
        """Add one fragment; the whole payload when this one completes the set."""
        end = offset + len(data)
        if end > MAX_DATAGRAM:
            problem("malformed", f"fragment ends at byte {end}, past the 65535-byte maximum",
                    "error")
            self._drop(key)
            return None
        st = self.sets.get(key)
        if st is not None and ts - st.first_ts > FRAG_TIMEOUT:
            self._drop(key)            # a stale set: the IP id has come round again
            self.expired += 1
            st = None
        if st is None:
            if len(self.sets) >= MAX_IN_FLIGHT:
                self._expire(ts)
                if len(self.sets) >= MAX_IN_FLIGHT:
                    oldest = next(iter(self.sets))
                    self._drop(oldest)
                    problem("limit", f"over {MAX_IN_FLIGHT} fragmented datagrams in flight; "
                                     "the oldest was dropped", "error")
            st = self.sets[key] = _Frags(ts)
        if len(st.parts) >= MAX_FRAGMENTS:
            problem("limit", f"datagram in over {MAX_FRAGMENTS} fragments; dropped", "error")
            self._drop(key)
            return None
        if self.held + len(data) > MAX_FRAG_BYTES:
            self._expire(ts)
            if self.held + len(data) > MAX_FRAG_BYTES:
                problem("limit", f"over {MAX_FRAG_BYTES} bytes held in fragments; "
                                 "this set was dropped", "error")
                self._drop(key)
                return None
        if not more:
            if st.total is not None and st.total != end:
                problem("ip-fragment-overlap", f"two last fragments end at {st.total} and "
                                               f"{end}", "finding")
                st.overlap = True
            st.total = end
        for poff, pdata in st.parts:
            lo, hi = max(poff, offset), min(poff + len(pdata), end)
            if lo < hi and pdata[lo - poff:hi - poff] != data[lo - offset:hi - offset]:
                if not st.overlap:
                    problem("ip-fragment-overlap",
                            f"fragment at {offset}-{end} overwrites bytes {lo}-{hi} of an "
                            "earlier fragment with different data", "finding")
                st.overlap = True
        st.parts.append((offset, data))
        st.held += len(data)
        self.held += len(data)
        return self._complete(key, st)

    def _complete(self, key: Hashable, st: _Frags) -> bytes | None:
        if st.total is None:
            return None
        reach = 0
        for off, data in sorted(st.parts, key=lambda p: p[0]):
            if off > reach:
                return None
            reach = max(reach, off + len(data))
        if reach < st.total:
            return None
        out = bytearray(st.total)
        for off, data in reversed(st.parts):   # the first copy of a byte wins
            out[off:off + len(data)] = data[:max(0, st.total - off)]
        self._drop(key)
        return bytes(out)


class _Stream(msgspec.Struct):
    next_seq: int
    fresh: bool = True   # the next bytes delivered begin the stream (or follow a gap)
    pending: dict[int, bytes] = msgspec.field(default_factory=dict)
    held: int = 0


def _rel(a: int, b: int) -> int:
    """a - b in 32-bit sequence space, as a signed number."""
    d = (a - b) & 0xFFFFFFFF
    return d - 0x100000000 if d & 0x80000000 else d


class TcpStreams:
    """In-order bytes per direction (src, sport, dst, dport), bounded."""

    SYN, FIN, RST = 0x02, 0x01, 0x04

    def __init__(self) -> None:
        self.streams: dict[Hashable, _Stream] = {}
        self.held = 0
        self.gaps = 0
        self.problems: list[str] = []
        self.started = False   # the bytes ``segment`` last returned begin a stream

    def _drop(self, key: Hashable) -> None:
        st = self.streams.pop(key, None)
        if st is not None:
            self.held -= st.held

    def segment(self, key: Hashable, seq: int, flags: int, payload: bytes) -> bytes:
        """Feed one segment; the bytes that became contiguous (maybe empty).

        A cap that forced a gap to be skipped leaves a message in ``problems`` (the caller
        reports and clears it). ``started`` says whether the bytes begin the stream: its
        first bytes, the first after a new SYN on the same key, or after a skipped gap."""
        st = self.streams.get(key)
        if st is None:
            if flags & self.RST:
                return b""
            if len(self.streams) >= MAX_STREAMS:
                self._drop(next(iter(self.streams)))
            start = seq + 1 if flags & self.SYN else seq
            st = self.streams[key] = _Stream(start & 0xFFFFFFFF)
        elif flags & self.SYN and not payload and st.next_seq != (seq + 1) & 0xFFFFFFFF:
            self.held -= st.held           # a new connection on the same addresses and ports
            st.next_seq, st.pending, st.held, st.fresh = (seq + 1) & 0xFFFFFFFF, {}, 0, True
        out = b""
        if payload:
            out = self._data(st, seq, payload)
        self.started = bool(out) and st.fresh
        if out:
            st.fresh = False
        if flags & (self.FIN | self.RST):
            self._drop(key)
        return out

    def _data(self, st: _Stream, seq: int, payload: bytes) -> bytes:
        rel = _rel(seq, st.next_seq)
        if rel > 0:
            if (len(st.pending) >= MAX_SEGMENTS_PENDING
                    or st.held + len(payload) > MAX_STREAM_PENDING
                    or self.held + len(payload) > MAX_TCP_PENDING):
                self._skip_gap(st, seq)
                self.problems.append("TCP reassembly buffer full; skipped a gap in the stream")
                self._hold(st, seq, payload)
                return self._drain(st, b"")
            self._hold(st, seq, payload)
            return b""
        if -rel >= len(payload):
            return b""                       # a retransmission of bytes already delivered
        data = payload[-rel:] if rel else payload
        st.next_seq = (st.next_seq + len(data)) & 0xFFFFFFFF
        return self._drain(st, data) if st.pending else data

    def _hold(self, st: _Stream, seq: int, payload: bytes) -> None:
        if seq not in st.pending:
            st.pending[seq] = payload
            st.held += len(payload)
            self.held += len(payload)

    def _skip_gap(self, st: _Stream, seq: int) -> None:
        """Give up waiting for lost bytes: resume at the earliest segment seen."""
        self.gaps += 1
        st.fresh = True
        st.next_seq = min([*st.pending, seq], key=lambda s: _rel(s, st.next_seq))

    def _drain(self, st: _Stream, data: bytes) -> bytes:
        parts = [data]
        while st.pending:
            ready = [s for s in st.pending if _rel(s, st.next_seq) <= 0]
            if not ready:
                break
            for s in sorted(ready, key=lambda s: _rel(s, st.next_seq)):
                seg = st.pending.pop(s)
                st.held -= len(seg)
                self.held -= len(seg)
                skip = -_rel(s, st.next_seq)
                if skip < len(seg):
                    parts.append(seg[skip:])
                    st.next_seq = (st.next_seq + len(seg) - skip) & 0xFFFFFFFF
        return b"".join(parts)
