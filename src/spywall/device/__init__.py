"""Device checks (``check-ios``, ``check-android``): the module framework, evidence
databases opened read-only and immutable, and MVT-compatible result files."""

from spywall.device.base import (
    CheckContext,
    FnModule,
    Module,
    Record,
    SchemaUnknown,
    iso_apple,
    iso_datetime,
    iso_unix,
)
from spywall.device.runner import run_modules

__all__ = [
    "CheckContext", "FnModule", "Module", "Record", "SchemaUnknown", "iso_apple",
    "iso_datetime", "iso_unix", "run_modules",
]
