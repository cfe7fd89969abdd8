"""The Merkle tree against RFC 6962/9162 known answers and the published test vectors of
transparency-dev/merkle (proof/verify_test.go, rfc6962/rfc6962_test.go: re-created here
as tables), and properties: every proof the writer makes verifies with the independent
verifier, and corrupted ones do not."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spywall.evidence import merkle
from spywall.evidence.canonical import EMPTY_ROOT, leaf_hash, node_hash
from spywall.evidence.verify import verify_consistency, verify_inclusion

h = bytes.fromhex

# The eight leaves of the published vectors, and the roots of the trees of 1..8 of them.
LEAVES = [b"", h("00"), h("10"), h("2021"), h("3031"), h("40414243"),
          h("5051525354555657"), h("606162636465666768696a6b6c6d6e6f")]
ROOTS = [h(x) for x in (
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")]
# (leaf index, tree size, proof): the published inclusion proofs (their leaf numbers
# are 1-based; these indices are 0-based).
INCLUSION = [
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (0, 1, []),
]
CONSISTENCY = [
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]
SOME_HASH = h("abacaba000000000000000000000000000000000000000000060061e00123456")


class MemoryTree:
    """Complete subtrees in a dict, built with the writer's ``extend``."""

    def __init__(self, leaves: list[bytes]) -> None:
        self.nodes: dict[merkle.Key, bytes] = {}
        self.size = 0
        self.peaks: list[bytes] = []
        self.add([leaf_hash(x) for x in leaves])

    def add(self, hashes: list[bytes]) -> None:
        for i, x in enumerate(hashes):
            self.nodes[(0, self.size + i)] = x
        new, self.peaks = merkle.extend(self.size, self.peaks, hashes)
        self.nodes.update({(lv, i): x for lv, i, x in new})
        self.size += len(hashes)

    def fetch(self, keys: object) -> dict[merkle.Key, bytes]:
        return {k: self.nodes[k] for k in keys if k in self.nodes}  # type: ignore[attr-defined]


def mth(hashes: list[bytes]) -> bytes:
    """RFC 9162 MTH by its recursive definition (the oracle)."""
    if not hashes:
        return EMPTY_ROOT
    if len(hashes) == 1:
        return hashes[0]
    k = 1 << ((len(hashes) - 1).bit_length() - 1)
    return node_hash(mth(hashes[:k]), mth(hashes[k:]))


def test_rfc6962_known_answers() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert leaf_hash(b"").hex() == \
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    assert leaf_hash(b"L123456").hex() == \
        "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"
    assert node_hash(b"N123", b"N456").hex() == \
        "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb"
    assert node_hash(leaf_hash(b"Hello"), leaf_hash(b"World")) != \
        leaf_hash(leaf_hash(b"Hello") + leaf_hash(b"World"))


def test_roots_of_published_vectors() -> None:
    tree = MemoryTree([])
    for n, leaf in enumerate(LEAVES, 1):
        tree.add([leaf_hash(leaf)])
        assert merkle.root_of_peaks(tree.peaks) == ROOTS[n - 1]
        assert merkle.root(n, tree.fetch) == ROOTS[n - 1]
    assert merkle.root(0, tree.fetch) == EMPTY_ROOT


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_inclusion_vectors(index: int, size: int, proof: list[str]) -> None:
    tree = MemoryTree(LEAVES[:size])
    want = [h(x) for x in proof]
    assert merkle.inclusion_proof(index, size, tree.fetch) == want
    leaf, root = leaf_hash(LEAVES[index]), ROOTS[size - 1]
    assert verify_inclusion(index, size, leaf, want, root)
    # the published corruption probes (proof/verify_test.go corruptInclusionProof)
    probes = [(index - 1, size, leaf, want, root), (index + 1, size, leaf, want, root),
              (index ^ 2, size, leaf, want, root), (index, size * 2, leaf, want, root),
              (index, size // 2, leaf, want, root), (index, size, b"WrongLeaf", want, root),
              (index, size, leaf, want, EMPTY_ROOT), (index, size, leaf, want, SOME_HASH),
              (index, size, leaf, [*want, b""], root), (index, size, leaf, [*want, root], root),
              (index, size, leaf, [b"", *want], root), (index, size, leaf, [root, *want], root)]
    for i in range(len(want)):
        bad = list(want)
        bad[i] = bytes([bad[i][0] ^ 8]) + bad[i][1:]
        probes.append((index, size, leaf, bad, root))
    if want:
        probes.append((index, size, leaf, want[:-1], root))
    if len(want) > 1:
        probes.append((index, size, leaf, [want[0], SOME_HASH, *want[1:]], root))
    for p in probes:
        if p[0] < 0:
            continue
        assert not verify_inclusion(*p), p


@pytest.mark.parametrize(("size1", "size2", "proof"), CONSISTENCY)
def test_consistency_vectors(size1: int, size2: int, proof: list[str]) -> None:
    tree = MemoryTree(LEAVES[:size2])
    want = [h(x) for x in proof]
    assert merkle.consistency_proof(size1, size2, tree.fetch) == want
    r1, r2 = ROOTS[size1 - 1], ROOTS[size2 - 1]
    assert verify_consistency(size1, size2, want, r1, r2)
    if not want:
        return
    probes = [(size1 - 1, size2, want, r1, r2), (size1 + 1, size2, want, r1, r2),
              (size1 ^ 2, size2, want, r1, r2), (size1, size2 * 2, want, r1, r2),
              (size1, size2 // 2, want, r1, r2), (size1, size2, want, b"WrongRoot", r2),
              (size1, size2, want, r1, b"WrongRoot"), (size1, size2, want, r2, r1),
              (size1, size2, [], r1, r2), (size1, size2, [*want, b""], r1, r2),
              (size1, size2, [*want, r1], r1, r2), (size1, size2, [*want, r2], r1, r2),
              (size1, size2, [b"", *want], r1, r2), (size1, size2, [r1, *want], r1, r2),
              (size1, size2, [r2, *want], r1, r2), (size1, size2, [want[0], *want], r1, r2),
              (size1, size2, want[:-1], r1, r2)]
    for i in range(len(want)):
        bad = list(want)
        bad[i] = bytes([bad[i][0] ^ 16]) + bad[i][1:]
        probes.append((size1, size2, bad, r1, r2))
    for p in probes:
        assert not verify_consistency(*p), p


def test_consistency_edge_cases() -> None:
    """The published table of sizes that are (in)consistent whatever the proof."""
    r1, r2 = b"don't care 1", b"don't care 2"
    assert not verify_consistency(0, 0, [], r1, r2)
    assert not verify_consistency(1, 1, [], r1, r2)
    assert verify_consistency(0, 0, [], r1, r1)
    assert verify_consistency(0, 1, [], r1, r2)
    assert verify_consistency(1, 1, [], r2, r2)
    assert not verify_consistency(1, 0, [], r1, r2)
    assert not verify_consistency(2, 1, [], r1, r2)
    assert not verify_consistency(1, 2, [], r1, r2)
    assert not verify_consistency(0, 0, [EMPTY_ROOT], EMPTY_ROOT, EMPTY_ROOT)
    assert not verify_consistency(0, 1, [EMPTY_ROOT], EMPTY_ROOT, EMPTY_ROOT)
    assert not verify_consistency(1, 1, [EMPTY_ROOT], EMPTY_ROOT, EMPTY_ROOT)
    for index, size in ((0, 0), (0, 1), (1, 0), (2, 1)):
        assert not verify_inclusion(index, size, SOME_HASH, [], b"")
        assert not verify_inclusion(index, size, SOME_HASH, [], EMPTY_ROOT)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 300), st.data())
def test_every_proof_verifies(size: int, data: st.DataObject) -> None:
    leaves = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(size)]
    tree = MemoryTree(leaves)
    hashes = [leaf_hash(x) for x in leaves]
    assert merkle.root(size, tree.fetch) == mth(hashes)
    index = data.draw(st.integers(0, size - 1))
    proof = merkle.inclusion_proof(index, size, tree.fetch)
    assert verify_inclusion(index, size, hashes[index], proof, mth(hashes))
    assert len(proof) <= (size - 1).bit_length()
    old = data.draw(st.integers(0, size))
    cons = merkle.consistency_proof(old, size, tree.fetch)
    assert verify_consistency(old, size, cons, mth(hashes[:old]), mth(hashes))
    assert len(cons) <= 2 * max(size.bit_length(), 1)
    if cons:
        flip = data.draw(st.integers(0, len(cons) * 256 - 1))
        bad = list(cons)
        bad[flip // 256] = bytes([bad[flip // 256][0] ^ (1 << (flip % 8))]) + bad[flip // 256][1:]
        assert not verify_consistency(old, size, bad, mth(hashes[:old]), mth(hashes))


def test_all_pairs_small() -> None:
    """Every inclusion and consistency proof between any two sizes up to 40."""
    leaves = [bytes([i]) for i in range(40)]
    tree = MemoryTree(leaves)
    hashes = [leaf_hash(x) for x in leaves]
    roots = [mth(hashes[:n]) for n in range(41)]
    for n in range(1, 41):
        for m in range(n):
            assert verify_inclusion(m, n, hashes[m], merkle.inclusion_proof(m, n, tree.fetch),
                                    roots[n])
        for m in range(n + 1):
            assert verify_consistency(m, n, merkle.consistency_proof(m, n, tree.fetch),
                                      roots[m], roots[n])


def test_proof_reads_are_logarithmic() -> None:
    """Proofs on a 2^20-leaf tree read O(log n) stored nodes (the store is fake: every
    key answers; the count of keys asked for is what is measured)."""
    asked: list[int] = []

    def fetch(keys: object) -> dict[merkle.Key, bytes]:
        ks = list(keys)  # type: ignore[call-overload]
        asked.append(len(ks))
        return {k: bytes(32) for k in ks}

    for size in (1_000_003, (1 << 20) - 1, 10_000_000):
        merkle.inclusion_proof(size // 3, size, fetch)
        merkle.consistency_proof(size // 7, size, fetch)
    assert max(asked) <= 2 * 24 + 2


def test_bad_requests() -> None:
    tree = MemoryTree(LEAVES)
    with pytest.raises(merkle.ProofError):
        merkle.inclusion_proof(8, 8, tree.fetch)
    with pytest.raises(merkle.ProofError):
        merkle.consistency_proof(9, 8, tree.fetch)
    with pytest.raises(merkle.ProofError):
        merkle.inclusion_proof(3, 16, tree.fetch)   # nodes missing


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=6), kids,
                                                               max_size=4),
    max_leaves=20)


@settings(max_examples=400, deadline=None)
@given(JSON)
def test_canonical_fast_path_is_rfc8785(value: object) -> None:
    """The json.dumps fast path gives exactly the rfc8785 package's bytes."""
    import rfc8785

    from spywall.evidence.canonical import CanonicalError, canonical

    try:
        want = rfc8785.dumps(value)
    except rfc8785.CanonicalizationError:
        with pytest.raises(CanonicalError):
            canonical(value)
        return
    assert canonical(value) == want


def test_batch_proofs_equal_single_ones() -> None:
    leaves = [bytes([i % 256, i // 256]) for i in range(333)]
    tree = MemoryTree(leaves)
    indices = [0, 1, 100, 255, 256, 331, 332]
    assert merkle.inclusion_proofs(indices, 333, tree.fetch) == \
        [merkle.inclusion_proof(i, 333, tree.fetch) for i in indices]
