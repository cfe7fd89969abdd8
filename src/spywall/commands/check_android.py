"""``spywall check-android CAPTURE``: check an Android bugreport or androidqf capture."""

from __future__ import annotations

import argparse
import os

import msgspec

from spywall.commands.common import add_evidence_log_argument, add_ioc_arguments
from spywall.commands.device_common import (
    add_allow_incomplete_argument,
    add_module_argument,
    add_output_argument,
    load_index,
    module_progress,
    refuse_empty_result,
    refuse_output_inside,
    settled_heap,
    write_outputs,
)
from spywall.errors import InputError
from spywall.report import Report

HELP = "check an Android bugreport or androidqf capture (folder or zip) against spyware indicators"
PASSWORD_ENV = "SPYWALL_BACKUP_PASSWORD"  # noqa: S105 (a variable name, not a secret)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_evidence_log_argument(p)
    p.add_argument("capture", metavar="PATH",
                   help="bugreport zip or folder, androidqf folder or zip, a dumpstate text, "
                        "an adb backup (.ab), an Android file system dump or a Chromium "
                        "History database")
    add_ioc_arguments(p)
    add_module_argument(p)
    p.add_argument("--password", "-p", default=None,
                   help="password of an encrypted Android backup (backup.ab in an androidqf "
                        f"capture, or an adb backup file); or set {PASSWORD_ENV}")
    p.add_argument("--age-key", metavar="FILE", default=None,
                   help="age identity file (AGE-SECRET-KEY-1...) for an androidqf capture "
                        "encrypted with age (<UUID>.zip.age)")
    add_output_argument(p)
    add_allow_incomplete_argument(p)


def _password(args: argparse.Namespace) -> str | None:
    if args.password is not None:
        return str(args.password)
    return os.environ.get(PASSWORD_ENV)


def _age_keys(args: argparse.Namespace) -> list[str] | None:
    if args.age_key is None:
        return None
    from spywall.android.age_capture import identities

    try:
        with open(args.age_key, encoding="utf-8") as fh:
            return identities(fh.read(1 << 20))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{args.age_key}: cannot read the age key file: {exc}") from exc


def run(args: argparse.Namespace) -> Report:
    from spywall.android.check import DEVICE_LIMITS, MODULES, check_capture

    refuse_output_inside(args.output, args.capture)
    names = {m.name for m in MODULES}
    unknown = sorted(set(args.module) - names)
    if unknown:
        raise InputError(f"unknown module(s) {', '.join(unknown)}; modules: "
                         f"{', '.join(m.name for m in MODULES)}")
    modules = [m for m in MODULES if not args.module or m.name in args.module]
    index = load_index(args)
    with settled_heap():
        with module_progress(args, len(modules), "checking capture") as done:
            outcome = check_capture(args.capture, index, index.sources, modules=modules,
                                    on_done=done, password=_password(args),
                                    age_keys=_age_keys(args),
                                    limits=msgspec.structs.replace(
                                        DEVICE_LIMITS, allow_incomplete=args.allow_incomplete))
        refuse_empty_result(outcome.report, args.capture)
        write_outputs(args, outcome.report, outcome.ctx)
    return outcome.report
