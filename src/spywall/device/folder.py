"""The results folder as a whole: what a previous run left in it, and ``command.log``.

- A re-run into the same folder must not leave the files of the earlier run beside the
  new ones (a ``<module>_detected.json`` that this run did not write would still be read
  as a detection). ``info.json`` lists the files a run wrote (``files``); the next run
  removes those of them it does not write again. Only names listed there, only plain
  file names inside the folder, and only when that ``info.json`` was written by spywall:
  nothing else in the folder is touched.
- ``command.log``: what MVT's log file holds, in spywall's words: the command, the tool,
  the target, each module's outcome, and each alert.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from spywall.report import Report

INFO = "info.json"
MAX_INFO = 64 * 1024 * 1024


def previous_files(out: Path) -> list[str]:
    """The file names the last spywall run listed in ``out/info.json`` (none when there
    is no such file, it is not spywall's, or it cannot be read)."""
    info = out / INFO
    try:
        if not info.is_file() or info.is_symlink() or info.stat().st_size > MAX_INFO:
            return []
        doc = json.loads(info.read_bytes())
    except (OSError, ValueError, RecursionError):
        return []
    if not isinstance(doc, dict) or doc.get("tool") != "spywall":
        return []
    names = doc.get("files")
    if not isinstance(names, list):
        return []
    return [n for n in names if isinstance(n, str) and n and "/" not in n and "\\" not in n
            and n not in (".", "..")]


def remove_stale(out: Path, before: Iterable[str], written: Iterable[str]) -> list[str]:
    """Remove the files of the previous run (``before``) that this run did not write."""
    keep = set(written)
    gone: list[str] = []
    for name in before:
        target = out / name
        if name in keep or not target.is_file() or target.is_symlink():
            continue
        try:
            target.unlink()
        except OSError:
            continue
        gone.append(name)
    return gone


def command_log(report: Report, alerts: Sequence[Mapping[str, object]],
                removed: Sequence[str]) -> str:
    """The text of ``command.log`` (see the module docstring)."""
    target = report.subjects[0].path if report.subjects else ""
    lines = [f"{report.started.isoformat()} {report.tool} {report.tool_version} "
             f"{report.command} {target}"]
    lines += [f"indicators: {s.path} ({s.indicators} indicators)" for s in report.ioc_sources]
    for m in report.modules:
        extra = f": {m.message}" if m.message else ""
        lines.append(f"module {m.name}: {m.status}, {m.records} record(s){extra}")
    for a in alerts:
        lines.append(f"{a['level']} alert from {a['module']}: {a['message']}")
    for e in report.errors:
        lines.append(f"error ({e.code}) {e.path}: {e.message}")
    for s in report.subjects:
        lines += [f"error ({e.code}) {e.path}: {e.message}" for e in s.errors]
    if removed:
        lines.append(f"removed {len(removed)} file(s) of the previous run: "
                     f"{', '.join(sorted(removed))}")
    finished = report.finished.isoformat() if report.finished else ""
    lines.append(f"{finished} finished: {len(alerts)} alert(s)")
    return "\n".join(line.replace("\n", " ").replace("\r", " ") for line in lines) + "\n"
