"""heif-overlay-alpha-depth: an overlay input whose colour is deeper than its alpha
(CVE-2026-32882).

Condition: an item of type ``iovl`` (overlay), and among its inputs (the ``to`` items of
its ``dimg`` references) an image whose colour depth is larger than the depth of an
alpha plane attached to it (an item with an ``auxl`` reference to that input and an
``auxC`` alpha type). Depth: the largest ``pixi`` channel depth, else the ``av1C`` or
``hvcC`` codec configuration's bit depth. A compositor that sizes the alpha buffer from
one depth and reads it with the other overruns it. Items of unknown depth are not judged.
"""

from __future__ import annotations

from collections.abc import Iterator

from spywall.detectors.base import Detector, DetectorInfo, Hit
from spywall.formats.base import Parsed
from spywall.formats.heif import HeifFile
from spywall.report import FindingKind, Severity


def detect(parsed: Parsed) -> Iterator[Hit]:
    heif = parsed.structure
    if not isinstance(heif, HeifFile):
        return
    alphas: dict[int, list[int]] = {}
    for ref in heif.refs("auxl"):
        if heif.is_alpha(ref.from_id):
            for target in ref.to_ids:
                alphas.setdefault(target, []).append(ref.from_id)
    for ref in heif.refs("dimg"):
        if heif.items.get(ref.from_id) != "iovl":
            continue
        for child in dict.fromkeys(ref.to_ids):
            colour = heif.depth(child)
            for alpha in alphas.get(child, ()):
                depth = heif.depth(alpha)
                if colour is not None and depth is not None and colour > depth:
                    pixi = heif.prop(alpha, "pixi")
                    yield Hit(
                        message=(f"overlay item {ref.from_id}: input {child} has {colour}-bit "
                                 f"colour and a {depth}-bit alpha plane (item {alpha})"),
                        offset=pixi.offset if pixi is not None else None,
                        detail={"overlay": ref.from_id, "input": child, "alpha": alpha,
                                "colour_bits": colour, "alpha_bits": depth},
                    )


DETECTOR = Detector(
    info=DetectorInfo(
        id="heif-overlay-alpha-depth",
        title="HEIF overlay input whose colour depth exceeds its alpha depth",
        formats=("heif", "avif"),
        severity=Severity.HIGH,
        kind=FindingKind.EXPLOIT,
        cves=("CVE-2026-32882",),
        references=("https://nvd.nist.gov/vuln/detail/CVE-2026-32882",),
        description=__doc__ or "",
    ),
    detect=detect,
)
