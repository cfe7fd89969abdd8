"""Run every iOS module over one backup and build the report."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from spywall.commands.common import finish, new_report
from spywall.device.base import CheckContext, Module, SchemaUnknown, run_modules
from spywall.errors import InputError, LimitExceeded
from spywall.iocs import IocIndex
from spywall.ios import browsers, inventory, messages, other_messengers, system
from spywall.ios.backup import Backup, open_backup
from spywall.limits import Limits
from spywall.report import IocSource, ModuleRun, Report, Subject

MODULES: tuple[Module[Backup], ...] = (
    inventory.BACKUP_INFO, inventory.MANIFEST, inventory.PROFILES,
    *messages.MODULES, *other_messengers.MODULES, *browsers.MODULES, *system.MODULES,
    inventory.WINDOW,
)


@dataclass
class Outcome:
    report: Report
    ctx: CheckContext[Backup]


def check_backup(path: str | Path, index: IocIndex, sources: Sequence[IocSource] = (),
                 password: str | None = None, limits: Limits | None = None,
                 modules: Sequence[Module[Backup]] = MODULES, timeline: bool = True,
                 scan_attachments: bool = True,
                 on_done: Callable[[ModuleRun], None] | None = None) -> Outcome:
    """Check one backup folder. ``InputError`` when it cannot be opened at all.

    ``timeline=False`` keeps only the records that carry a finding (faster; the report is
    the same, but there is no full timeline for ``--output``)."""
    report = new_report("check-ios")
    report.ioc_sources = list(sources)
    try:
        with open_backup(path, password) as backup:
            subject = Subject(path=str(backup.root), format="ios-backup",
                              sha256=backup.inputs.get(str(backup.root / "Manifest.db")),
                              objects=len(backup.entries))
            ctx = CheckContext(evidence=backup, index=index, subject=subject,
                               limits=limits or Limits(), timeline=timeline,
                               scan_attachments=scan_attachments)
            report.device = inventory.device_info(backup.info)
            report.device["encrypted"] = backup.encrypted
            report.modules = run_modules(modules, ctx, on_done)
            report.subjects = [subject]
    except (SchemaUnknown, LimitExceeded) as exc:
        raise InputError(f"{path}: Manifest.db: {exc}") from exc
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}") from exc
    return Outcome(finish(report), ctx)
