"""Shared pytest configuration."""

from __future__ import annotations

import os
import tempfile

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Tests never read what ``spywall iocs update`` stored for the user (indicator sets,
    the list of iOS releases): the update folder is a fresh empty one."""
    os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="spywall-test-data-")


def pytest_make_parametrize_id(config: pytest.Config, val: object, argname: str) -> str | None:
    """Byte-string parameters are named by their argument, not their content.

    Generated samples carry timestamps (a font's head table, a PDF's /ID), so an id made
    from the bytes differs between two collections; pytest-xdist's workers then disagree
    on the test list. pytest numbers repeated ids (``data0``, ``data1``...), in order.
    """
    if isinstance(val, bytes | bytearray):
        return argname
    return None
