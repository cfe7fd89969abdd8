"""Modules over a bugreport: the dumpstate text (system properties, package manager and
accessibility dumps), tombstones and the FS/ file tree. For an androidqf capture they read
its nested ``bugreport.zip`` (or, for the dumpsys sections, its ``dumpsys.txt``); a
capture with neither skips them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar

from spywall.android.capture import DUMPSTATE_NAME, Capture, nested
from spywall.android.common import (
    Ctx,
    Result,
    iso_any,
    ok,
    package_checks,
    property_checks,
    skipped,
)
from spywall.android.dumpstate import (
    accessibility,
    decode,
    packages,
    system_properties,
)
from spywall.android.tombstones import read_tombstones
from spywall.device.base import FnModule
from spywall.errors import FormatError
from spywall.report import Severity

T = TypeVar("T")
MAX_FS_ENTRIES = 200_000


def bugreport(cap: Capture) -> Capture | None:
    """The capture that holds the bugreport: this one, or androidqf's bugreport.zip."""
    if cap.kind in ("bugreport", "dumpstate"):
        return cap
    if cap.kind != "androidqf":
        return None
    if "bugreport" not in cap.cache:
        try:
            cap.cache["bugreport"] = nested(cap, "bugreport.zip")
        except FormatError as exc:
            cap.cache["bugreport"] = exc
    got = cap.cache["bugreport"]
    if isinstance(got, FormatError):
        raise got
    return got if isinstance(got, Capture) else None


def _text_rank(name: str) -> tuple[int, str]:
    """Which dumpstate text of a bugreport without main_entry.txt is the main one: AOSP's
    bugreport-*.txt, a vendor's dumpState_*.log, then the others (AOSP's side files
    dumpstate_log.txt and dumpstate_board.txt last)."""
    low = name.lower()
    rank = (0 if low.startswith("bugreport-") else 1 if low.startswith("dumpstate_")
            and low.endswith(".log") else 3 if low in _SIDE_FILES else 2)
    return rank, name


_SIDE_FILES = frozenset({"dumpstate_log.txt", "dumpstate_board.txt"})


def dumpstate_text(br: Capture) -> tuple[str, str] | None:
    """(member name, text) of the dumpstate text of a bugreport."""
    if "text" not in br.cache:
        name: str | None = None
        if br.kind == "dumpstate":
            name = br.members()[0]
        else:
            entry = br.read("main_entry.txt", 4096)
            if entry is not None and br.has(entry.decode("utf-8", "replace").strip()):
                name = entry.decode("utf-8", "replace").strip()
            else:
                texts = [n for n in br.members() if DUMPSTATE_NAME.fullmatch(n)]
                name = min(texts, key=_text_rank) if texts else None
        data = br.read(name) if name else None
        br.cache["text"] = None if data is None or name is None else (
            name, decode(data))
    got = br.cache["text"]
    return got if isinstance(got, tuple) else None


def _texts(ctx: Ctx) -> Iterator[tuple[Capture, str, str]]:
    """(capture, member, text) of the dumpstate text of the bugreport, then, for an
    androidqf capture, of its ``dumpsys.txt`` (the same ``DUMP OF SERVICE`` sections, no
    properties), as far as the capture has them; dumpsys.txt is read only when asked."""
    cap = ctx.evidence
    br = bugreport(cap)
    found = dumpstate_text(br) if br is not None else None
    if found is not None and br is not None:
        yield br, found[0], found[1]
    if cap.kind == "androidqf" and cap.has("dumpsys.txt"):
        if "dumpsys" not in cap.cache:
            cap.cache["dumpsys"] = decode(cap.read("dumpsys.txt") or b"")
        text = cap.cache["dumpsys"]
        if isinstance(text, str):
            yield cap, "dumpsys.txt", text


def section_of(ctx: Ctx, parse: Callable[[str], T | None],
             what: str) -> tuple[str, T] | str:
    """(where, parsed section) of the first text that has the section (the bugreport's,
    else androidqf's dumpsys.txt: a bugreport cut short, or taken while a service did
    not answer, still leaves the section to dumpsys.txt), or why it is skipped."""
    seen = False
    for src, name, text in _texts(ctx):
        seen = True
        parsed = parse(text)
        if parsed is not None:
            return src.where(name), parsed
    return f"no {what} section" if seen else "no bugreport dumpstate text or dumpsys.txt"


def dumpstate_getprop(ctx: Ctx) -> Result:
    got = section_of(ctx, system_properties, "SYSTEM PROPERTIES")
    if isinstance(got, str):
        return skipped(got)
    ctx.evidence.cache.setdefault("props", got[1])
    return ok(property_checks(ctx, "dumpstate_getprop", got[1], got[0]))


def dumpstate_packages(ctx: Ctx) -> Result:
    got = section_of(ctx, packages, "'DUMP OF SERVICE package'")
    if isinstance(got, str):
        return skipped(got)
    where, pkgs = got
    for p in pkgs:
        ctx.evidence.budget.charge_elements()
        rec = ctx.record("dumpstate_packages", iso_any(p.fields.get("firstInstallTime")),
                         f"package {p.name}",
                         {"package_name": p.name, "uid": p.fields.get("userId"),
                          "version_name": p.fields.get("versionName"),
                          "version_code": p.fields.get("versionCode"),
                          "first_install_time": p.fields.get("firstInstallTime"),
                          "last_update_time": p.fields.get("lastUpdateTime"),
                          "installer": p.installer, "system": p.system,
                          "code_path": p.fields.get("codePath")})
        package_checks(ctx, rec, p.name, p.installer, p.system, where)
    return ok(len(pkgs))


def dumpsys_accessibility(ctx: Ctx) -> Result:
    got = section_of(ctx, accessibility, "'DUMP OF SERVICE accessibility'")
    if isinstance(got, str):
        return skipped(got)
    where, dump = got
    comps = dump.services
    for comp, enabled in comps.items():
        rec = ctx.record("dumpsys_accessibility", None, f"accessibility service {comp}",
                         {"package_name": comp.partition("/")[0], "service": comp,
                          "enabled": enabled})
        hits = ctx.check("app_id", comp.partition("/")[0], rec=rec, path=where,
                         what="accessibility service" + (" (enabled)" if enabled else ""))
        # MVT raises a service that matched no indicator: medium when on or bound, or
        # when the dump does not state whether it is on (low when off)
        if enabled is not False and not hits:
            state = ("is enabled" if enabled else
                     "is installed (the dump does not say whether it is enabled)")
            ctx.heuristic("android-accessibility-enabled", "Accessibility service enabled",
                          f"the accessibility service {comp} {state}: it can read the "
                          "screen and act for the user, as stalkerware and banking trojans "
                          "do; check that you turned it on", rec=rec, path=where,
                          severity=Severity.MEDIUM, detail={"service": comp})
    for user, stated, unnamed in dump.unnamed:
        rec = ctx.record("dumpsys_accessibility", None, f"accessibility services of user "
                         f"{user}", {"user_id": user, "installed_service_count": stated,
                                     "unnamed_service_count": unnamed})
        which = ("does not list their component names" if unnamed == stated else
                 f"lists the component names of only {stated - unnamed} of them "
                 f"({unnamed} unnamed)")
        ctx.heuristic("android-accessibility-unnamed-services",
                      "Accessibility services the dump does not name",
                      f"the accessibility dump states {stated} installed service(s) for "
                      f"user {user} but {which}: those services cannot be checked; list "
                      "them in Settings > Accessibility (low, as MVT)", rec=rec,
                      path=where, severity=Severity.LOW,
                      detail={"user": user, "installed_service_count": stated,
                              "unnamed_service_count": unnamed})
    return ok(len(comps))


def tombstones(ctx: Ctx) -> Result:
    br = bugreport(ctx.evidence)
    return skipped("no bugreport") if br is None else read_tombstones(ctx, br)


def fs_files(ctx: Ctx) -> Result:
    br = bugreport(ctx.evidence)
    if br is None:
        return skipped("no bugreport")
    names = [n for n in br.members() if n.startswith("FS/")][:MAX_FS_ENTRIES]
    if not names:
        return skipped("no FS/ folder in the bugreport")
    for name in names:
        path = name[2:]
        rec = ctx.record("bugreport_files", None, f"file {path}", {"path": path})
        ctx.check("file_path", path, rec=rec, path=br.where(name), what="file in the bugreport")
        ctx.check("file_name", path.rpartition("/")[2], rec=rec, path=br.where(name),
                  what="file name in the bugreport")
    return ok(len(names))


BUGREPORT_MODULES: tuple[FnModule[Capture], ...] = (
    FnModule("dumpstate_getprop", "bugreport SYSTEM PROPERTIES: property names",
             dumpstate_getprop),
    FnModule("dumpstate_packages", "bugreport package manager dump: app ids, installers",
             dumpstate_packages),
    FnModule("dumpsys_accessibility", "accessibility services (installed and enabled)",
             dumpsys_accessibility),
    FnModule("tombstones", "bugreport tombstones (text and protobuf): crashed process "
             "names; crashes of root, system or shell processes", tombstones),
    FnModule("bugreport_files", "bugreport FS/ tree: file paths and names", fs_files),
)
