"""``spywall check-sysdiagnose PATH``: check an iPhone's sysdiagnose (the ``.tar.gz``
archive, or its folder extracted), as ``mvt-ios check-sysdiagnose`` does."""

from __future__ import annotations

import argparse

from spywall.commands import device_common as device
from spywall.commands.common import add_evidence_log_argument, add_ioc_arguments
from spywall.limits import Limits
from spywall.report import Report

HELP = "check an iPhone sysdiagnose (.tar.gz archive or folder) against spyware indicators"
SECONDS = 900.0  # reading a sysdiagnose archive (hundreds of MB of gzip) end to end


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_evidence_log_argument(p)
    p.add_argument("sysdiagnose", metavar="PATH",
                   help="sysdiagnose archive (sysdiagnose_<date>_<device>_<build>.tar.gz) "
                        "or the folder it extracts to")
    add_ioc_arguments(p)
    device.add_output_argument(p)
    device.add_module_argument(p)
    device.add_allow_incomplete_argument(p)


def run(args: argparse.Namespace) -> Report:
    from spywall.ios.sysdiagnose_check import check_sysdiagnose, pick

    device.refuse_output_inside(args.output, args.sysdiagnose)
    modules = pick(args.module)
    index = device.load_index(args)
    limits = Limits(seconds=SECONDS, allow_incomplete=args.allow_incomplete)
    with device.settled_heap():
        with device.module_progress(args, len(modules), "checking sysdiagnose") as done:
            outcome = check_sysdiagnose(args.sysdiagnose, index, index.sources, limits,
                                        modules, on_done=done)
        device.refuse_empty_result(outcome.report, args.sysdiagnose)
        device.write_outputs(args, outcome.report, outcome.ctx)
    return outcome.report
