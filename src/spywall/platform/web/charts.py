"""Charts as numbers for server-rendered SVG (templates draw them; no script needed).

The map is an equirectangular projection with a graticule and one circle per country at
its approximate centroid, sized by the number of targets: a symbol map, not a
choropleth (no borders are drawn; the table beside it carries the exact counts).
Centroids are rounded public figures (degrees), for the countries a calling code can name
that the project's worlds use and their neighbours; an unknown country is listed in the
table only."""

from __future__ import annotations

import math
from dataclasses import dataclass

# ISO 3166-1 alpha-2 -> (latitude, longitude), rounded approximate centroids.
CENTROIDS: dict[str, tuple[float, float]] = {
    "AE": (24, 54), "AR": (-34, -64), "AU": (-25, 134), "BH": (26, 50.5), "BR": (-10, -52),
    "CA": (60, -96), "CH": (47, 8), "CN": (35, 103), "CO": (4, -73), "DE": (51, 10),
    "DZ": (28, 3), "EG": (27, 30), "ES": (40, -4), "ET": (9, 39), "FR": (46, 2),
    "GB": (54, -2), "GH": (8, -1), "HU": (47, 19), "ID": (-2, 118), "IL": (31, 35),
    "IN": (22, 79), "IT": (42.8, 12.8), "JO": (31, 36), "JP": (36, 138), "KE": (0, 38),
    "KZ": (48, 68), "LB": (33.8, 35.8), "MA": (32, -6), "MX": (23, -102), "MY": (4, 102),
    "NG": (9, 8), "NL": (52.2, 5.5), "PK": (30, 70), "PL": (52, 19), "PS": (32, 35.2),
    "QA": (25.3, 51.2), "RU": (60, 90), "RW": (-2, 30), "SA": (24, 45), "SE": (62, 15),
    "SV": (13.8, -88.9), "TG": (8.6, 1), "TH": (15, 101), "TN": (34, 9), "TR": (39, 35),
    "UA": (49, 32), "US": (39, -98), "UZ": (41, 64), "ZA": (-29, 24),
}
MAP_W, MAP_H = 720, 360


@dataclass(frozen=True)
class Bar:
    label: str
    count: int
    y: float
    width: float


@dataclass(frozen=True)
class Dot:
    country: str
    count: int
    x: float
    y: float
    r: float


@dataclass(frozen=True)
class Mark:
    ref: str
    x: float
    y: float
    kind: str


def bars(counts: dict[str, int], width: float = 400, row: float = 22) -> list[Bar]:
    top = max(counts.values(), default=0) or 1
    return [Bar(label, n, i * row, max(1.0, width * n / top))
            for i, (label, n) in enumerate(counts.items())]


def project(lat: float, lon: float) -> tuple[float, float]:
    return (lon + 180) * MAP_W / 360, (90 - lat) * MAP_H / 180


def dots(counts: dict[str, int]) -> list[Dot]:
    out = []
    for country, n in counts.items():
        if country in CENTROIDS and n > 0:
            x, y = project(*CENTROIDS[country])
            out.append(Dot(country, n, round(x, 1), round(y, 1), round(3 + 4 * math.sqrt(n), 1)))
    return sorted(out, key=lambda d: -d.r)    # small circles drawn last, on top


def graticule(step: int = 30) -> tuple[list[float], list[float]]:
    """x of meridians and y of parallels every ``step`` degrees."""
    xs = [project(0, lon)[0] for lon in range(-180, 181, step)]
    ys = [project(lat, 0)[1] for lat in range(-90, 91, step)]
    return xs, ys


def timeline(points: list[tuple[str, int, str]], width: float = 1000, left: float = 90
             ) -> tuple[list[Mark], list[tuple[str, float]]]:
    """(ref, ts_us, lane) -> marks along a time axis, one lane (row) per sender, and
    the lanes' (label, y)."""
    if not points:
        return [], []
    lo = min(t for _, t, _ in points)
    hi = max(t for _, t, _ in points)
    span = (hi - lo) or 1
    lanes: dict[str, int] = {}
    for _, _, lane in sorted(points, key=lambda p: p[1]):
        lanes.setdefault(lane, len(lanes))
    marks = [Mark(ref, round(left + (width - left - 20) * (t - lo) / span, 1),
                  LANE_TOP + LANE * lanes[lane], lane) for ref, t, lane in points]
    return marks, [(lane, LANE_TOP + LANE * i) for lane, i in lanes.items()]


LANE, LANE_TOP = 22, 24


def iso_numeric(counts: dict[str, int]) -> dict[str, int]:
    """Counts by ISO 3166 alpha-2 -> by ISO numeric id, as world-atlas keys its countries
    (codes pycountry does not know, such as "??", are left out)."""
    import pycountry

    out: dict[str, int] = {}
    for alpha2, count in counts.items():
        country = pycountry.countries.get(alpha_2=alpha2)
        if country is not None:
            out[str(int(country.numeric))] = out.get(str(int(country.numeric)), 0) + count
    return out
