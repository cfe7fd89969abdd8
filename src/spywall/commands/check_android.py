"""``spywall check-android CAPTURE``: check an Android bugreport or androidqf capture."""

from __future__ import annotations

import argparse
from pathlib import Path

from spywall.commands.common import add_ioc_arguments, log
from spywall.errors import InputError
from spywall.report import ModuleRun, Report

HELP = "check an Android bugreport or androidqf capture (folder or zip) against spyware indicators"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("capture", metavar="PATH",
                   help="bugreport zip or folder, androidqf folder or zip, a dumpstate text "
                        "or an adb backup (.ab)")
    add_ioc_arguments(p)
    p.add_argument("--module", "-m", action="append", default=[], metavar="NAME",
                   help="run only this module (repeatable); an unknown name lists them")
    p.add_argument("--output", "-o", metavar="DIR", default=None,
                   help="also write MVT-compatible result files (alerts.json, timeline.csv, "
                        "<module>.json, info.json) to DIR")


def _inside(out: str, evidence: str) -> bool:
    ev = Path(evidence).resolve()
    return ev.is_dir() and (Path(out).resolve() == ev or ev in Path(out).resolve().parents)


def run(args: argparse.Namespace) -> Report:
    from spywall.android.check import MODULES, check_capture
    from spywall.device.output import write_mvt_outputs
    from spywall.iocs import IocIndex

    if args.output and _inside(args.output, args.capture):
        raise InputError("--output must not be inside the evidence folder")
    names = {m.name for m in MODULES}
    unknown = sorted(set(args.module) - names)
    if unknown:
        raise InputError(f"unknown module(s) {', '.join(unknown)}; modules: "
                         f"{', '.join(m.name for m in MODULES)}")
    modules = [m for m in MODULES if not args.module or m.name in args.module]
    index = IocIndex.load(args.iocs)
    if not index.sources:
        raise InputError("no indicator files loaded (check --iocs)")

    def done(m: ModuleRun) -> None:
        if not args.quiet and m.status not in ("ok", "skipped"):
            log(f"[yellow]{m.name}[/]: {m.status} {m.message}")

    outcome = check_capture(args.capture, index, index.sources, modules=modules, on_done=done)
    if args.output:
        write_mvt_outputs(outcome.report, outcome.ctx.records, args.output,
                          outcome.ctx.evidence.inputs)
        if not args.quiet:
            log(f"results written to {args.output}")
    return outcome.report
