"""Modules imported on first use, so a command pays only for the parsers it runs.

``import numpy`` and ``import pikepdf`` cost about 80 ms and 40 ms. A device check that
meets no PDF and no font never needs them, and its start-up is part of what users wait
for. ``lazy_module`` returns the module object at once and runs its code when an
attribute is first read (``importlib.util.LazyLoader``). Under type checking, import
the module normally::

    if TYPE_CHECKING:
        import pikepdf
    else:
        pikepdf = lazy_module("pikepdf")
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType


def lazy_module(name: str) -> ModuleType:
    """``name``, loaded when first used (at once if it is already imported)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"no module named {name!r}", name=name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module
