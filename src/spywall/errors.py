"""Typed exceptions. They are mapped to exit codes once, in the CLI face.

- ``InputError``: the user asked for something impossible (missing path, bad option,
  wrong password). Exit status 2.
- ``FormatError``: one input is malformed. Becomes an error entry in the report for that
  input; the run goes on.
- ``LimitExceeded``: one input hit a budget (size, depth, count, decompression, time).
  Becomes an error entry; the run goes on.
"""

from __future__ import annotations


class SpywallError(Exception):
    """Base class of every error spywall raises on purpose."""

    code = "error"


class InputError(SpywallError):
    """A usage or I/O problem that stops the command (exit status 2)."""

    code = "input"


class FormatError(SpywallError):
    """Malformed input inside one file, stream or record."""

    code = "malformed"


class TruncatedError(FormatError):
    """The data ended before a structure it declares."""

    code = "truncated"


class UnsupportedError(FormatError):
    """A recognised format (or variant) that spywall does not examine."""

    code = "unsupported"


class LimitExceeded(SpywallError):
    """A budget was exhausted: bytes, decompression, depth, element count or time."""

    code = "limit"
