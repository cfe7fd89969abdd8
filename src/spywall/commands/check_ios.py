"""``spywall check-ios BACKUP``: check an iPhone backup (or a filesystem dump) for spyware
traces."""

from __future__ import annotations

import argparse
import os
import sys

from spywall.commands.common import add_evidence_log_argument, add_ioc_arguments
from spywall.commands.device_common import (
    add_allow_incomplete_argument,
    add_jobs_argument,
    add_module_argument,
    add_output_argument,
    jobs,
    load_index,
    module_progress,
    refuse_empty_result,
    refuse_output_inside,
    settled_heap,
    write_outputs,
)
from spywall.ios.check import DUMP_MODULES, MODULES, check_path, is_dump, pick
from spywall.limits import Limits
from spywall.report import Report

HELP = ("check an iTunes/Finder backup (or a filesystem dump) of an iPhone against spyware "
        "indicators")
PASSWORD_ENV = "SPYWALL_BACKUP_PASSWORD"  # noqa: S105 (a variable name, not a secret)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_evidence_log_argument(p)
    p.add_argument("backup", metavar="BACKUP",
                   help="backup folder (the one named by the UDID), or the folder of a "
                        "full filesystem dump (holding private/var/...)")
    add_ioc_arguments(p)
    p.add_argument("--password", "-p", default=None,
                   help=f"password of an encrypted backup (or set {PASSWORD_ENV}; "
                        "asked on a terminal when needed)")
    add_output_argument(p)
    add_module_argument(p)
    add_jobs_argument(p)
    add_allow_incomplete_argument(p)
    p.add_argument("--no-attachments", action="store_true",
                   help="do not scan message attachments for exploit payloads (indicator "
                        "checks only, like MVT)")


def _is_encrypted(path: str) -> bool:
    import plistlib

    try:
        with open(os.path.join(path, "Manifest.plist"), "rb") as fh:
            return bool(plistlib.load(fh).get("IsEncrypted"))
    except (OSError, ValueError, AttributeError):
        return False


def _password(args: argparse.Namespace) -> str | None:
    if args.password is not None:
        return str(args.password)
    env = os.environ.get(PASSWORD_ENV)
    if env is not None:
        return env
    if _is_encrypted(args.backup) and sys.stdin.isatty():
        import getpass  # (only for a prompt)

        return getpass.getpass("Backup password: ")
    return None


def run(args: argparse.Namespace) -> Report:
    refuse_output_inside(args.output, args.backup)
    dump = is_dump(args.backup)
    total = len(pick(DUMP_MODULES if dump else MODULES, args.module))
    index = load_index(args)
    password = None if dump else _password(args)
    label = "checking dump" if dump else "checking backup"
    with settled_heap():
        with module_progress(args, total, label) as done:
            outcome = check_path(args.backup, index, index.sources, password,
                                 timeline=args.output is not None,
                                 scan_attachments=not args.no_attachments, on_done=done,
                                 jobs=jobs(args), render=args.output is not None,
                                 only=args.module,
                                 limits=Limits(allow_incomplete=args.allow_incomplete))
        refuse_empty_result(outcome.report, args.backup)
        write_outputs(args, outcome.report, outcome.ctx)
    return outcome.report
