"""The writer's tree arithmetic over stored complete subtrees (RFC 9162 section 2.1).

The log stores the hash of every complete (perfect, aligned) subtree: node ``(level, i)``
covers leaves ``[i * 2^level, (i + 1) * 2^level)``; level 0 are the leaf hashes. A node
is written once, when its last leaf is appended, and never changes. Every hash a proof
needs is either such a node or the hash of a range ``[lo, n)`` at the right edge of the
tree, which folds the perfect subtrees (the *peaks*) that the binary representation of
``n - lo`` gives. So an inclusion or consistency proof on a tree of ``n`` leaves reads at
most ``2 * log2(n)`` stored nodes and computes at most as many hashes.

Proofs are computed in two passes over the same recursion (RFC 9162 ``PATH`` and
``SUBPROOF``): the first records which nodes it needs, they are fetched together,
and the second computes the hashes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from spywall.evidence.canonical import EMPTY_ROOT, HASH_SIZE, node_hash

Key = tuple[int, int]          # (level, index) of a complete subtree
Getter = Callable[[Key], bytes]
Fetch = Callable[[Iterable[Key]], Mapping[Key, bytes]]


class ProofError(ValueError):
    """Sizes or indices that no proof exists for."""


def peaks(size: int) -> list[Key]:
    """The complete subtrees that make up ``[0, size)``, left to right (largest first)."""
    out: list[Key] = []
    start = 0
    for level in reversed(range(size.bit_length())):
        if size >> level & 1:
            out.append((level, start >> level))
            start += 1 << level
    return out


def root_of_peaks(hashes: Sequence[bytes]) -> bytes:
    """The tree head of the peaks' hashes (left to right)."""
    if not hashes:
        return EMPTY_ROOT
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def extend(size: int, peak_hashes: Sequence[bytes], leaves: Sequence[bytes]
           ) -> tuple[list[tuple[int, int, bytes]], list[bytes]]:
    """Append ``leaves`` (leaf hashes) to a tree of ``size`` leaves whose peaks have
    ``peak_hashes``: the new complete nodes of level >= 1 as ``(level, index, hash)``,
    and the new peaks' hashes."""
    levels = [lv for lv, _ in peaks(size)]
    if len(levels) != len(peak_hashes):
        raise ProofError(f"{len(peak_hashes)} peak hashes for a tree of {size}")
    stack = list(zip(levels, peak_hashes, strict=True))
    nodes: list[tuple[int, int, bytes]] = []
    for offset, leaf in enumerate(leaves):
        index = size + offset
        level, h = 0, leaf
        while stack and stack[-1][0] == level:
            _, left = stack.pop()
            h = node_hash(left, h)
            level += 1
            nodes.append((level, index >> level, h))
        stack.append((level, h))
    return nodes, [h for _, h in stack]


def _largest_power_below(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


class _Tree:
    """The recursions of RFC 9162 over a node getter, with each range hashed once."""

    def __init__(self, get: Getter) -> None:
        self.get = get
        self.memo: dict[tuple[int, int], bytes] = {}

    def hash(self, lo: int, hi: int) -> bytes:
        n = hi - lo
        if n & (n - 1) == 0 and lo % n == 0:
            return self.get((n.bit_length() - 1, lo // n))
        got = self.memo.get((lo, hi))
        if got is None:
            k = _largest_power_below(n)
            got = node_hash(self.hash(lo, lo + k), self.hash(lo + k, hi))
            self.memo[(lo, hi)] = got
        return got

    def path(self, m: int, lo: int, hi: int) -> list[bytes]:
        """RFC 9162 2.1.3.1 PATH(m, D[lo:hi])."""
        n = hi - lo
        if n == 1:
            return []
        k = _largest_power_below(n)
        if m < k:
            return [*self.path(m, lo, lo + k), self.hash(lo + k, hi)]
        return [*self.path(m - k, lo + k, hi), self.hash(lo, lo + k)]

    def subproof(self, m: int, lo: int, hi: int, whole: bool) -> list[bytes]:
        """RFC 9162 2.1.4.1 SUBPROOF(m, D[lo:hi], b)."""
        n = hi - lo
        if m == n:
            return [] if whole else [self.hash(lo, hi)]
        k = _largest_power_below(n)
        if m <= k:
            return [*self.subproof(m, lo, lo + k, whole), self.hash(lo + k, hi)]
        return [*self.subproof(m - k, lo + k, hi, False), self.hash(lo, lo + k)]


def _two_pass(run: Callable[[_Tree], list[list[bytes]]], fetch: Fetch
              ) -> list[list[bytes]]:
    wanted: set[Key] = set()

    def record(key: Key) -> bytes:
        wanted.add(key)
        return bytes(HASH_SIZE)

    run(_Tree(record))
    got = fetch(sorted(wanted))
    missing = wanted - set(got)
    if missing:
        raise ProofError(f"{len(missing)} tree node(s) missing from the store, e.g. "
                         f"{min(missing)}")
    return run(_Tree(lambda key: got[key]))


def inclusion_proof(index: int, size: int, fetch: Fetch) -> list[bytes]:
    """The RFC 9162 inclusion proof of leaf ``index`` in the tree of ``size`` leaves."""
    return inclusion_proofs([index], size, fetch)[0]


def inclusion_proofs(indices: Sequence[int], size: int, fetch: Fetch) -> list[list[bytes]]:
    """Inclusion proofs of several leaves of one tree: one fetch, and the hashes of the
    right edge computed once for all."""
    for index in indices:
        if not 0 <= index < size:
            raise ProofError(f"leaf {index} is not in a tree of {size}")
    return _two_pass(lambda t: [t.path(i, 0, size) for i in indices], fetch)


def consistency_proof(old: int, new: int, fetch: Fetch) -> list[bytes]:
    """The RFC 9162 consistency proof from the tree of ``old`` leaves to ``new``."""
    if not 0 <= old <= new:
        raise ProofError(f"no consistency proof from {old} to {new}")
    if old in (0, new):
        return []
    return _two_pass(lambda t: [t.subproof(old, 0, new, True)], fetch)[0]


def root(size: int, fetch: Fetch) -> bytes:
    """The tree head of the first ``size`` leaves."""
    keys = peaks(size)
    got = fetch(keys)
    return root_of_peaks([got[k] for k in keys])
