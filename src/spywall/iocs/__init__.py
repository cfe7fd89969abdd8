"""Indicators of compromise: STIX 2.1 loading and constant-cost matching.

``IocIndex.load(paths)`` reads STIX bundles (files or folders; ``()`` = the bundled public
sets) and answers ``match(kind, value)`` for every kind in ``KINDS`` plus ``host``.
"""

from spywall.iocs.index import IocIndex, bundled_dir
from spywall.iocs.model import KINDS, Indicator

__all__ = ["KINDS", "Indicator", "IocIndex", "bundled_dir"]
