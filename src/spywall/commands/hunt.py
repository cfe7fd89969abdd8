"""``spywall hunt``: re-examine stored attachments and captures with today's detectors,
on Ray or a local process pool, and join what is found to the platform (malicious
deliveries, then campaigns, targets, notifications and the evidence log).

Each object is examined in a supervised scan worker (``--payload-timeout``,
``--payload-max-memory``); one that could not be examined completely (a limit, a lost
worker, a task whose process died) is counted and named, never clean.

Exit status: 0 nothing found and every object examined completely; 1 an object with an
exploit or an indicator, a stored event found to be a violation, or an object not
examined completely (fail closed); 2 usage or input error.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from spywall.commands.platform import payload_limits, payload_options
from spywall.errors import InputError

HELP = "retro-hunt: re-examine stored objects with today's detectors (Ray or local pool)"
OWN_OPTIONS = True


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", required=True, metavar="DIR|URL",
                   help="the object store: a folder, or an fsspec URL")
    p.add_argument("--since", default=None, metavar="DATE",
                   help="only objects changed at or after this date (YYYY-MM-DD)")
    p.add_argument("--detectors", default=None, metavar="ID,ID...",
                   help="only these detectors' exploit findings count (default: every one)")
    p.add_argument("--iocs", action="append", default=[], metavar="PATH",
                   help="STIX 2 indicators to match too (repeatable): payload hashes, and "
                        "addresses and names in captures; matches are reported, and only "
                        "exploits join the platform as malicious deliveries")
    p.add_argument("--ray", default=None, metavar="auto|ADDRESS",
                   help="run on Ray: 'auto' starts a local instance, or a cluster address "
                        "(default: a local process pool)")
    p.add_argument("--shared-store", action="store_true",
                   help="with --ray and a folder store: every node mounts the folder, so "
                        "tasks may run anywhere (default: on this machine's node)")
    p.add_argument("--task-files", type=int, default=64, metavar="N",
                   help="objects per task at most (default 64; larger on a big cluster, "
                        "where the scheduler's tasks per second bound the rate)")
    p.add_argument("--task-mb", type=int, default=64, metavar="MB",
                   help="megabytes per task at most (default 64)")
    p.add_argument("--jobs", "-j", type=int, default=os.cpu_count() or 1,
                   help="processes of the local pool")
    p.add_argument("--manifest", type=Path, default=None, metavar="FILE",
                   help="record finished tasks here; a rerun does only what is left")
    payload_options(p, "is reported not examined completely (exit 1)")
    p.add_argument("--max-tasks", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--db", metavar="URL", default=None)
    p.add_argument("--format", "-f", choices=["json", "table"], default=None)
    p.add_argument("--quiet", "-q", action="store_true")


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"--since: not a date: {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def run(args: argparse.Namespace) -> int:
    from spywall.platform import hunt
    from spywall.platform.service import open_db

    engine = open_db(args.db)
    if "://" not in args.store and not Path(args.store).is_dir():
        raise InputError(f"--store {args.store}: not a folder")
    scan = hunt.Scan(payload_limits(args))
    runner = hunt.pool_runner(max(1, args.jobs), scan)
    if args.ray is not None:
        try:
            import ray  # noqa: F401
        except ImportError:   # the same tasks, the same results, in a local pool
            if not args.quiet:
                print("spywall hunt: Ray is not installed (pip install 'spywall[ray]'); "
                      "running in a local process pool", file=sys.stderr)
        else:
            runner = hunt.ray_runner(args.ray, shared_store=args.shared_store, scan=scan)
    show = not args.quiet and sys.stderr.isatty()

    def progress(result: hunt.HuntResult, total: int) -> None:
        if show:
            print(f"\r{result.tasks + result.lost_tasks}/{total} tasks, "
                  f"{result.objects:,} objects, {result.malicious_objects} with exploits, "
                  f"{result.incomplete_objects} incomplete", end="", file=sys.stderr)

    detectors = tuple(d.strip() for d in (args.detectors or "").split(",") if d.strip())
    for path in args.iocs:
        if path == "-":
            raise InputError("hunt --iocs -: the hunt's tasks read the indicator files "
                             "themselves; give a file")
        if not Path(path).exists():
            raise InputError(f"--iocs {path}: no such file or folder")
    result = hunt.hunt(engine, args.store, _since(args.since), runner, args.manifest,
                       args.max_tasks, progress, detectors=detectors,
                       iocs=tuple(str(Path(p).resolve()) for p in args.iocs),
                       task_files=max(1, args.task_files),
                       task_bytes=max(1, args.task_mb) << 20)
    if show:
        print(file=sys.stderr)
    fmt = args.format or ("table" if sys.stdout.isatty() else "json")
    if fmt == "json":
        sys.stdout.write(msgspec.json.encode(result).decode() + "\n")
    else:
        from spywall.platform.render import not_examined, summary

        data = msgspec.to_builtins(result)
        summary(data, sys.stdout)
        not_examined(data, result.incomplete_objects, sys.stdout)
    found = (result.malicious_objects or result.indicator_objects
             or result.history_violations or result.incomplete_objects)
    return 1 if found else 0
