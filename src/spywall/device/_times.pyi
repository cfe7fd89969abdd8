from collections.abc import Callable, Sequence

APPLE_EPOCH: int
TS_MIN: int
TS_MAX: int

def iso_apple_column(values: Sequence[object], fallback: Callable[[object], str | None],
                     mvt: bool = False) -> list[str | None]: ...
def mvt_column(stamps: Sequence[str | None], fallback: Callable[[str], str],
               ) -> list[str | None]: ...
