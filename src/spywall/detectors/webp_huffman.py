"""webp-huffman-overflow: a VP8L prefix code whose tables overflow libwebp's fixed block
(BLASTPASS, CVE-2023-4863 / CVE-2023-41064).

Condition: in any lossless bit stream of a WebP file (a ``VP8L`` chunk, in a simple or
extended file or inside an ``ANMF`` animation frame, or an ``ALPH`` chunk compressed
losslessly), for any group of five prefix codes of the main image or of any sub-image
(entropy image, predictor or colour transform image, colour-indexing palette), the number
of table entries that libwebp's ``BuildHuffmanTable`` writes for one code (a 256-entry
root table plus the second-level tables that the canonical codes longer than 8 bits open,
sized as libwebp sizes them) is larger than that code's share of the fixed block: 630 for
red, blue and alpha, 410 for distance, 654 + the colour cache's extra entries for green;
or the group's total is larger than the whole block, kTableSize = 2954 + {0, 2, 4, 8, 16,
32, 64, 128, 258, 514, 1026, 2050}[colour cache bits]. A complete (valid) code never
exceeds its share, so only a crafted, incomplete tree can: vulnerable libwebp (before
1.3.2, and Apple ImageIO before iOS 16.6.1) writes those tables before it checks the tree
and rejects it. The build is simulated from the code lengths only; no pixel data of the
main image is decoded.
"""

from __future__ import annotations

from collections.abc import Iterator

from spywall.detectors.base import Detector, DetectorInfo, Hit
from spywall.formats.base import Parsed
from spywall.formats.vp8l import Bitstream, GroupBuild, ImageCodes
from spywall.formats.webp import WebP
from spywall.report import FindingKind, Severity


def _message(s: Bitstream, img: ImageCodes, g: GroupBuild) -> str:
    where = "the main image" if img.role == "main image" else f"the {img.role} (a sub-image)"
    frame = f", animation frame {s.frame}" if s.frame is not None else ""
    over = "; ".join(f"{c.code} code builds {c.size} table entries against a budget of "
                     f"{c.budget}" for c in g.over) or "no single code over its budget"
    total = (f"; the group's tables take {g.total} of the {g.block}-entry block"
             if g.total > g.block else "")
    unused = ("" if g.referenced else " (the entropy image does not use this group: "
              "libwebp 1.1+ reads it without building tables)")
    return (f"group {g.index} of {where} in the {s.source} bit stream at offset {s.offset}"
            f"{frame}: {over}{total}{unused}")


def _hit(s: Bitstream, img: ImageCodes, g: GroupBuild) -> Hit:
    worst = max(g.codes, key=lambda c: c.size - c.budget)
    return Hit(
        message=_message(s, img, g),
        offset=g.offset,
        detail={
            "source": s.source, "stream_offset": s.offset, "frame": s.frame,
            "image": img.role, "group": g.index, "groups": img.groups,
            "code": worst.code, "built": worst.size, "budget": worst.budget,
            "tree_valid": worst.valid, "group_total": g.total, "block": g.block,
            "cache_bits": img.cache_bits, "referenced": g.referenced,
            "past_allocation": img.past_allocation,
            "transforms": ",".join(s.transforms) or None,
        },
    )


def detect(parsed: Parsed) -> Iterator[Hit]:
    """Yield one hit per group whose simulated tables exceed a code's share or the block.

    libwebp stops at the first rejected tree, and only a rejected (incomplete) tree can
    exceed its share, so there is at most one such group per bit stream.
    """
    webp = parsed.structure
    if not isinstance(webp, WebP):
        return
    for s in webp.streams:
        for img in s.images:
            for g in img.notable:
                yield _hit(s, img, g)


DETECTOR = Detector(
    info=DetectorInfo(
        id="webp-huffman-overflow",
        title="WebP lossless Huffman table overflow (BLASTPASS)",
        formats=("webp",),
        severity=Severity.CRITICAL,
        kind=FindingKind.EXPLOIT,
        cves=("CVE-2023-4863", "CVE-2023-41064"),
        references=(
            "https://citizenlab.ca/2023/09/blastpass-nso-group-iphone-zero-click-zero-day-exploit-captured-in-the-wild/",
            "https://nvd.nist.gov/vuln/detail/CVE-2023-4863",
            "https://nvd.nist.gov/vuln/detail/CVE-2023-41064",
            "https://www.rfc-editor.org/rfc/rfc9649",
        ),
        description=__doc__ or "",
    ),
    detect=detect,
)
