"""heif-multiple-alpha: one image with two or more alpha planes (CVE-2026-84383).

Condition: after resolving identity-derived items (an ``iden`` item with a ``dimg``
reference to a single input stands for that input, followed up to 16 steps), some image
has two or more distinct alpha planes: items with an ``auxl`` reference to it (or to an
``iden`` of it) and an ``auxC`` alpha type. The planes may be coded images or ``grid``
items. A decoder that keeps one alpha buffer per image and fills it once per plane
(writing a grid-sized plane into an image-sized buffer, or freeing the first) is hit.
The detail says whether an ``iden`` or a ``grid`` was involved.
"""

from __future__ import annotations

from collections.abc import Iterator

from spywall.detectors.base import Detector, DetectorInfo, Hit
from spywall.formats.base import Parsed
from spywall.formats.heif import HeifFile
from spywall.report import FindingKind, Severity

MAX_IDEN_STEPS = 16


def _canonical(item_id: int, iden: dict[int, int]) -> int:
    for _ in range(MAX_IDEN_STEPS):
        nxt = iden.get(item_id)
        if nxt is None:
            break
        item_id = nxt
    return item_id


def detect(parsed: Parsed) -> Iterator[Hit]:
    heif = parsed.structure
    if not isinstance(heif, HeifFile):
        return
    iden = {ref.from_id: ref.to_ids[0] for ref in heif.refs("dimg")
            if heif.items.get(ref.from_id) == "iden" and len(ref.to_ids) == 1}
    planes: dict[int, dict[int, int]] = {}  # image -> {alpha item: item it is attached to}
    for ref in heif.refs("auxl"):
        if not heif.is_alpha(ref.from_id):
            continue
        for target in ref.to_ids:
            planes.setdefault(_canonical(target, iden), {})[ref.from_id] = target
    for image, alphas in planes.items():
        if len(alphas) < 2:
            continue
        via_iden = any(target != image for target in alphas.values())
        via_grid = heif.items.get(image) == "grid" or any(
            heif.items.get(a) == "grid" for a in alphas)
        yield Hit(
            message=(f"image item {image} has {len(alphas)} alpha planes "
                     f"(items {', '.join(map(str, sorted(alphas)))})"),
            offset=None,
            detail={"image": image, "alpha_planes": len(alphas), "via_iden": via_iden,
                    "via_grid": via_grid},
        )


DETECTOR = Detector(
    info=DetectorInfo(
        id="heif-multiple-alpha",
        title="HEIF image with two or more alpha planes",
        formats=("heif", "avif"),
        severity=Severity.HIGH,
        kind=FindingKind.EXPLOIT,
        cves=("CVE-2026-84383",),
        references=("https://nvd.nist.gov/vuln/detail/CVE-2026-84383",),
        description=__doc__ or "",
    ),
    detect=detect,
)
