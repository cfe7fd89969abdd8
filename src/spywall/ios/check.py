"""Run every iOS module over one backup or filesystem dump and build the report."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import msgspec

from spywall.device.base import CheckContext, Module, SchemaUnknown, iso_datetime, load_plist
from spywall.device.runner import finish, new_report, run_modules
from spywall.errors import FormatError, InputError, LimitExceeded
from spywall.iocs import IocIndex
from spywall.ios import (
    analytics,
    applications,
    browsers,
    favicons,
    fs_modules,
    inventory,
    messages,
    other_messengers,
    people,
    shortcuts,
    system,
    versions,
    webkit_folders,
    whatsapp_contacts,
)
from spywall.ios.backup import open_backup
from spywall.ios.common import Evidence
from spywall.ios.fsdump import MARKERS, find_root, open_dump
from spywall.limits import Limits
from spywall.report import IocSource, ModuleRun, Report, Subject

MODULES: tuple[Module[Evidence], ...] = (
    inventory.BACKUP_INFO, inventory.MANIFEST, inventory.PROFILES, inventory.PROFILE_EVENTS,
    *messages.MODULES, *people.MODULES, *whatsapp_contacts.MODULES,
    *other_messengers.MODULES, *browsers.MODULES, *system.MODULES,
    *shortcuts.MODULES, *favicons.MODULES, *applications.MODULES, inventory.WINDOW,
)
# A dump has no Manifest.db (``filesystem`` lists its paths instead) and no Info.plist
# (``backup_info`` reads SystemVersion.plist and the app containers); the Triangulation
# window takes the files' own times; the artifact modules run unchanged.
DUMP_MODULES: tuple[Module[Evidence], ...] = (
    inventory.BACKUP_INFO, *fs_modules.MODULES, *webkit_folders.MODULES, *analytics.MODULES,
    *versions.MODULES, inventory.PROFILES, inventory.PROFILE_EVENTS,
    *messages.MODULES, *people.MODULES, *whatsapp_contacts.MODULES,
    *other_messengers.MODULES, *browsers.MODULES, *system.MODULES,
    *shortcuts.MODULES, *favicons.MODULES, *applications.MODULES, inventory.WINDOW,
)


class Outcome(msgspec.Struct):
    report: Report
    ctx: CheckContext[Evidence]


def check_backup(path: str | Path, index: IocIndex, sources: Sequence[IocSource] = (),
                 password: str | None = None, limits: Limits | None = None,
                 modules: Sequence[Module[Evidence]] = MODULES, timeline: bool = True,
                 scan_attachments: bool = True,
                 on_done: Callable[[ModuleRun], None] | None = None, jobs: int = 1,
                 render: bool = False) -> Outcome:
    """Check one backup folder. ``InputError`` when it cannot be opened at all.

    ``timeline=False`` keeps only the records that carry a finding (faster; the report is
    the same, but there is no full timeline for ``--output``). ``jobs`` and ``render``:
    see ``run_modules``."""
    report = new_report("check-ios")
    report.ioc_sources = list(sources)
    try:
        with open_backup(path, password) as backup:
            subject = Subject(path=str(backup.root), format="ios-backup",
                              sha256=backup.inputs.get(str(backup.root / "Manifest.db")),
                              objects=len(backup.entries))
            ctx: CheckContext[Evidence] = CheckContext(
                evidence=backup, index=index, subject=subject, limits=limits or Limits(),
                timeline=timeline, scan_attachments=scan_attachments)
            report.device = inventory.device_info(backup.info)
            report.device["encrypted"] = backup.encrypted
            report.modules = run_modules(modules, ctx, on_done, jobs=jobs, render=render)
            report.subjects = [subject]
    except (SchemaUnknown, LimitExceeded) as exc:
        raise InputError(f"{path}: Manifest.db: {exc}") from exc
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}") from exc
    return Outcome(finish(report), ctx)


def check_dump(path: str | Path, index: IocIndex, sources: Sequence[IocSource] = (),
               limits: Limits | None = None,
               modules: Sequence[Module[Evidence]] = DUMP_MODULES, timeline: bool = True,
               scan_attachments: bool = True,
               on_done: Callable[[ModuleRun], None] | None = None, jobs: int = 1,
               render: bool = False) -> Outcome:
    """Check one filesystem dump folder (``InputError`` when it is not one)."""
    limits = limits or Limits()
    report = new_report("check-ios")
    report.ioc_sources = list(sources)
    try:
        dump = open_dump(path, seconds=limits.seconds)
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}") from exc
    subject = Subject(path=str(dump.root), format="ios-filesystem", objects=len(dump.entries))
    ctx: CheckContext[Evidence] = CheckContext(
        evidence=dump, index=index, subject=subject, limits=limits, timeline=timeline,
        scan_attachments=scan_attachments)
    report.device = inventory.device_info(dump.info)
    report.device["filesystem_dump"] = True
    report.modules = run_modules(modules, ctx, on_done, jobs=jobs, render=render)
    report.subjects = [subject]
    return Outcome(finish(report), ctx)


MAX_LISTED = 20
MAX_CHILDREN = 10_000


def _describe(folder: Path) -> str:
    """``<folder> (<device name>, iOS <version>, last backup <date>)`` from its Info.plist,
    whatever of it can be read."""
    facts: list[str] = []
    try:
        data = (folder / "Info.plist").read_bytes() if (
            folder / "Info.plist").stat().st_size <= 4 * 1024 * 1024 else b""
        info = load_plist(data) if data else {}
    except (OSError, FormatError, LimitExceeded):
        info = {}
    d = info if isinstance(info, dict) else {}
    for key, fmt in (("Device Name", "{}"), ("Product Version", "iOS {}"),
                     ("Last Backup Date", "last backup {}")):
        v = d.get(key)
        if v is not None:
            facts.append(fmt.format(iso_datetime(v) or str(v)[:80]))
    return str(folder) + (f" ({', '.join(facts)})" if facts else "")


def backups_in(folder: Path) -> list[str]:
    """The backups directly inside ``folder`` (Finder / iTunes keep them in
    ``MobileSync/Backup/<UDID>``), each described, in name order."""
    try:
        kids = sorted(c for _, c in zip(range(MAX_CHILDREN), folder.iterdir(), strict=False)
                      if c.is_dir() and not c.is_symlink())
    except OSError:
        return []
    return [_describe(c) for c in kids if (c / "Manifest.db").is_file()]


def is_dump(path: str | Path) -> bool:
    """A folder with a dump's layout and no Manifest.db (a backup wins)."""
    p = Path(path)
    return not (p / "Manifest.db").exists() and find_root(p) is not None


def check_path(path: str | Path, index: IocIndex, sources: Sequence[IocSource] = (),
               password: str | None = None, limits: Limits | None = None,
               timeline: bool = True, scan_attachments: bool = True,
               on_done: Callable[[ModuleRun], None] | None = None, jobs: int = 1,
               render: bool = False, only: Sequence[str] = ()) -> Outcome:
    """A backup or a filesystem dump, told apart by layout. ``only``: the names of the
    modules to run (all when empty; ``InputError`` for a name neither kind knows)."""
    dump = is_dump(path)
    mods = pick(DUMP_MODULES if dump else MODULES, only)
    if dump:
        return check_dump(path, index, sources, limits, mods, timeline=timeline,
                          scan_attachments=scan_attachments, on_done=on_done, jobs=jobs,
                          render=render)
    p = Path(path)
    if p.is_dir() and not (p / "Manifest.db").exists():
        found = backups_in(p)
        if found:
            listing = "; ".join(found[:MAX_LISTED]) + ("; ..." if len(found) > MAX_LISTED
                                                        else "")
            raise InputError(f"{p} holds {len(found)} backup(s), not one: give one of "
                             f"these folders: {listing}")
        raise InputError(f"{p}: neither an iOS backup (no Manifest.db) nor a filesystem "
                         f"dump (no {' or '.join(MARKERS)})")
    return check_backup(path, index, sources, password, limits, mods, timeline=timeline,
                        scan_attachments=scan_attachments, on_done=on_done, jobs=jobs,
                        render=render)


def module_names() -> list[str]:
    """Every module name of a backup or dump check, in order."""
    return list(dict.fromkeys(m.name for m in (*MODULES, *DUMP_MODULES)))


def pick(modules: Sequence[Module[Evidence]], only: Sequence[str]) -> list[Module[Evidence]]:
    """The modules named in ``only`` (all when empty), in check order. A name no check
    knows is an ``InputError`` that lists them; a known name this kind of evidence has no
    module for selects nothing from it."""
    if not only:
        return list(modules)
    unknown = sorted(set(only) - set(module_names()))
    if unknown:
        raise InputError(f"unknown module(s) {', '.join(unknown)}; modules: "
                         f"{', '.join(module_names())}")
    return [m for m in modules if m.name in only]
