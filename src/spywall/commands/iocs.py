"""``spywall iocs list|stats|update``: the indicator sets spywall matches against.

``list`` names every loaded file with its sha256, indicator count and collections, and
counts indicators per kind and per collection; ``stats`` adds the load time and the
counts per collection and kind; ``update``
downloads the sets named in the public index and Apple's list of iOS releases (the only
command that uses the network). Each shows the newest iOS release spywall knows and the
date of that list (``ios_releases``).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

from spywall.commands.common import add_ioc_arguments, finish, log, new_report
from spywall.commands.stdin import load_iocs
from spywall.iocs import IocIndex
from spywall.iocs.update import INDEX_URL, default_dest, update
from spywall.ios import releases
from spywall.report import ErrorEntry, Report, Scalar

HELP = "list, count or update the spyware indicator sets (STIX 2.1)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", nargs="?", choices=sorted(ACTIONS), default="list",
                   help="list (default): sources; stats: counts per kind and collection; "
                        "update: download the sets of the public index")
    add_ioc_arguments(p)
    p.add_argument("--dest", metavar="DIR", default=None,
                   help=f"update: where to store the sets (default {default_dest()})")
    p.add_argument("--index-url", default=INDEX_URL, help="update: the indicators.yaml to use")


def _load(args: argparse.Namespace, report: Report) -> tuple[IocIndex, float]:
    start = time.perf_counter()
    index = load_iocs(args.iocs)
    took = time.perf_counter() - start
    report.ioc_sources = list(index.sources)
    # "indicators": distinct (value, collection) pairs, what is matched against;
    # "indicator_entries": what the files hold (the report header of a check counts these)
    report.device = {"indicators": len(index),
                     "indicator_entries": sum(src.indicators for src in index.sources),
                     "sources": len(index.sources),
                     "unsupported_patterns": index.unsupported_total,
                     # the list behind check-ios's ios-outdated, and how old it is
                     "ios_releases": releases.for_sources(index.sources).summary()}
    report.errors += [ErrorEntry(path=u.partition(":")[0], code="unsupported", message=u)
                      for u in index.unsupported[:200]]
    return index, took


def _counts(index: IocIndex, matrix: bool) -> dict[str, Scalar]:
    """Indicators per kind and per collection (and per collection x kind if ``matrix``)."""
    by_kind: dict[str, int] = {}
    by_collection: dict[str, int] = {}
    out: dict[str, Scalar] = {}
    for (collection, kind), n in sorted(index.counts().items()):
        by_kind[kind] = by_kind.get(kind, 0) + n
        by_collection[collection] = by_collection.get(collection, 0) + n
        if matrix:
            out[f"collection.{collection}.{kind}"] = n
    return {**{f"kind.{k}": n for k, n in sorted(by_kind.items())},
            **{f"collection.{c}": n for c, n in sorted(by_collection.items())}, **out}


def _list(args: argparse.Namespace, report: Report) -> None:
    index, _ = _load(args, report)
    report.device.update(_counts(index, matrix=False))


def _stats(args: argparse.Namespace, report: Report) -> None:
    index, took = _load(args, report)
    report.device["load_seconds"] = round(took, 4)
    report.device.update(_counts(index, matrix=True))


def _update(args: argparse.Namespace, report: Report) -> None:
    dest = Path(args.dest) if args.dest else default_dest()
    if not args.quiet:
        log(f"downloading the indicator sets listed in {args.index_url} into {dest}")
    result = update(dest, index_url=args.index_url)
    report.errors += [ErrorEntry(path=url, code="io", message=msg) for url, msg in result.failed]
    report.device = {"dest": str(result.dest), "downloaded": len(result.downloaded),
                     "failed": len(result.failed)}
    if result.downloaded:
        index = IocIndex.load([result.dest])
        report.ioc_sources = list(index.sources)
        report.device["indicators"] = len(index)
    report.device["ios_releases"] = releases.current(result.dest).summary()
    if not args.quiet:
        log(f"use them with: --iocs {result.dest}")


ACTIONS: dict[str, Callable[[argparse.Namespace, Report], None]] = {
    "list": _list, "stats": _stats, "update": _update,
}


def run(args: argparse.Namespace) -> Report:
    report = new_report(f"iocs {args.action}")
    ACTIONS[args.action](args, report)
    return finish(report)
