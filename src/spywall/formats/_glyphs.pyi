from typing import Any

def candidates(
    g: memoryview, offs: Any, num: int, base: int, max_components: int
) -> list[tuple[int, int, int]]: ...
