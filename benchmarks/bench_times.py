"""CPU time of the Apple-epoch time conversions of a large iOS check: 200,000 values (sms.db
message dates in nanoseconds and Safari visit times in fractional seconds, as iOS stores
them) and 100,000 read times (half of them unread, 0), per value in Python
(``iso_apple``, then ``mvt_times``'s Python passes for the read times) and as columns
(``iso_apple_times``, ``mvt_apple_times``: compiled code when ``device._times`` is built);
then the 200,000 ISO times in MVT's form (``mvt_times``: whole-text passes, compiled).

    .venv/bin/python benchmarks/bench_times.py [--values N] [--repeat R]
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable

from spywall.device import timeline
from spywall.device.base import _times, iso_apple, iso_apple_times
from spywall.device.timeline import mvt_apple_times, mvt_times


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--values", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    rnd = random.Random(11)
    half = args.values // 2
    start = 700_000_000  # 2023-03-08, Apple time
    dates = [(start + 60 * i) * 10**9 + rnd.randrange(10**9) for i in range(half)]
    visits = [start + 600 * i + rnd.random() for i in range(args.values - half)]
    column: list[object] = [*dates, *visits]
    reads: list[object] = [d + 5 * 10**9 if i % 2 else 0 for i, d in enumerate(dates)]
    assert iso_apple_times(column) == [iso_apple(v) for v in column]  # type: ignore[arg-type]
    print(f"compiled helper: {'built' if _times is not None else 'absent (Python path)'}")
    old = best(lambda: list(map(iso_apple, column)), args.repeat)
    new = best(lambda: iso_apple_times(column), args.repeat)
    print(f"{len(column)} times: per value {old * 1e3:.1f} ms CPU, column {new * 1e3:.1f} ms "
          f"({old / new:.1f}x)")
    old = best(lambda: timeline._mvt_passes([iso_apple(t) if t else None  # type: ignore[arg-type]
                                             for t in reads]), args.repeat)
    new = best(lambda: mvt_apple_times(reads), args.repeat)
    print(f"{len(reads)} read times in MVT's form: per value {old * 1e3:.1f} ms CPU, "
          f"column {new * 1e3:.1f} ms ({old / new:.1f}x)")
    stamps = iso_apple_times(column)
    old = best(lambda: timeline._mvt_passes(stamps), args.repeat)
    new = best(lambda: mvt_times(stamps), args.repeat)
    print(f"{len(stamps)} ISO times to MVT's form (mvt_times): whole-text passes "
          f"{old * 1e3:.1f} ms CPU, compiled {new * 1e3:.1f} ms ({old / new:.1f}x)")


if __name__ == "__main__":
    main()
