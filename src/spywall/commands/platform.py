"""``spywall platform ...``: the platform side from the command line (contract in
``reference/platform.md``). Every sub-command takes ``--db URL`` (else ``SPYWALL_DB``,
else ``sqlite:///spywall.db`` here) and ``--format table|json``.

Exit status: 0 nothing found, 1 something found (for ``ingest``: a violation or a
malicious delivery among the events; for the views: any row), 2 usage or input error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from spywall.errors import InputError

if TYPE_CHECKING:
    from spywall.limits import Limits
    from spywall.platform.media import PayloadScanner

HELP = "the platform side: registry, ingest, gate, campaigns, violations, notifications"
EXIT_CLEAN, EXIT_FOUND, EXIT_ERROR = 0, 1, 2
OWN_OPTIONS = True   # each sub-command takes --db, --format and --quiet itself

Handler = Callable[[argparse.Namespace], int]


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", metavar="URL", default=None,
                   help="database URL (default: $SPYWALL_DB, else sqlite:///spywall.db)")
    p.add_argument("--format", "-f", choices=["table", "json", "sarif"], default=None,
                   help="output format (default: table on a terminal, json otherwise)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress on standard error")


def payload_options(p: argparse.ArgumentParser,
                    over: str = "is held (attachment-incomplete)") -> None:
    """The limits of the payload scan workers (the gate's in ``serve``, ``ingest``,
    ``consume``; the hunt's): a payload past them ``over``."""
    from spywall.limits import MiB, memory_ceiling
    from spywall.platform.media import PLATFORM_LIMITS

    p.add_argument("--payload-timeout", type=float, default=PLATFORM_LIMITS.seconds,
                   metavar="SECONDS",
                   help="time budget of one attachment or capture in its scan worker, "
                        "which is killed at twice it plus 3 s (default %(default)g); a "
                        f"payload over it {over}")
    p.add_argument("--payload-max-memory", type=int, default=0, metavar="MIB",
                   help="memory ceiling of each payload scan worker (default "
                        f"{memory_ceiling(PLATFORM_LIMITS) // MiB}); a payload that needs "
                        f"more {over}")


def payload_limits(args: argparse.Namespace) -> Limits:
    """The limits ``payload_options`` set."""
    from spywall.limits import MiB
    from spywall.platform.media import PLATFORM_LIMITS

    if args.payload_timeout <= 0 or args.payload_max_memory < 0:
        raise InputError("--payload-timeout must be positive, --payload-max-memory not "
                         "negative")
    return msgspec.structs.replace(PLATFORM_LIMITS, seconds=args.payload_timeout,
                                   max_memory=args.payload_max_memory * MiB)


def payload_scanner(args: argparse.Namespace) -> PayloadScanner:
    """The gate's payload scanner under the limits of ``payload_options``."""
    from spywall.platform.media import PayloadScanner

    return PayloadScanner(payload_limits(args))


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    sub.add_parser("init", help="create or upgrade the schema")
    reg = sub.add_parser("registry", help="import or export the registry of barred parties")
    reg_sub = reg.add_subparsers(dest="registry_action", required=True, metavar="ACTION")
    imp = reg_sub.add_parser("import", help="merge a registry JSON or STIX 2.1 bundle")
    imp.add_argument("file", metavar="FILE", help="registry JSON or STIX bundle ('-': stdin)")
    imp.add_argument("--reason", default="registry import", help="why (kept in the record)")
    imp.add_argument("--actor", default="cli", help="who (kept in the record)")
    exp = reg_sub.add_parser("export", help="print the registry")
    exp.add_argument("--as", dest="as_", choices=["json", "stix"], default="json")
    ing = sub.add_parser("ingest", help="take events in (JSON Lines), gate and analyse them")
    ing.add_argument("file", metavar="EVENTS", help="JSON Lines file ('-': stdin)")
    ing.add_argument("--media-root", metavar="DIR", default=None,
                     help="base of relative capture/attachment paths (default: the "
                          "events file's folder)")
    payload_options(ing)
    ana = sub.add_parser("analyse", help="run the analysis again over everything stored")
    ana.add_argument("--full", action="store_true",
                     help="first rebuild the calls' state (answered, media) from every event")
    for name in ("campaigns", "violations", "notifications"):
        sub.add_parser(name, help=f"list {name}")
    send = sub.add_parser("notify", help="deliver pending notifications")
    send.add_argument("--sender", required=True, metavar="SPEC",
                      help="webhook:URL (or a URL) or file:PATH")
    bans = sub.add_parser("bans", help="list bans, or move one: approve/reject/apply/revert")
    bans.add_argument("step", nargs="?", choices=["approve", "reject", "apply", "revert"])
    bans.add_argument("ban", nargs="?", type=int)
    bans.add_argument("--reason", default="")
    bans.add_argument("--actor", default="cli")
    bans.add_argument("--status", default=None)
    bans.add_argument("--no-apply", action="store_true",
                      help="approve without applying (another person applies it)")
    keys = sub.add_parser("keys", help="API keys")
    keys_sub = keys.add_subparsers(dest="keys_action", required=True, metavar="ACTION")
    add = keys_sub.add_parser("add", help="create a key; printed once, only its hash kept")
    add.add_argument("name")
    add.add_argument("--scopes", default="analyst", help="comma list: ingest,analyst,admin")
    keys_sub.add_parser("list", help="list keys (never the keys themselves)")
    rev = keys_sub.add_parser("revoke", help="revoke a key at once (by its id, from list)")
    rev.add_argument("id")
    rev.add_argument("--reason", required=True, help="why (kept in the audit log)")
    rev.add_argument("--actor", default="cli")
    cons = sub.add_parser("consume", help="take events from a NATS JetStream stream")
    cons.add_argument("--nats", default="nats://127.0.0.1:4222", metavar="URL")
    cons.add_argument("--stream", required=True, metavar="NAME")
    cons.add_argument("--subject", default=None, metavar="SUBJECT")
    cons.add_argument("--durable", default="spywall", metavar="NAME")
    cons.add_argument("--media-root", metavar="DIR", default=None)
    cons.add_argument("--idle-exit", type=float, default=None, metavar="SECONDS",
                      help="stop after this long with no message (default: run until killed)")
    payload_options(cons)
    for parser in [sub.choices[n] for n in sub.choices if n not in ("registry", "keys")] + \
            [imp, exp, add, rev, keys_sub.choices["list"]]:
        _common(parser)


def _fmt(args: argparse.Namespace) -> str:
    fmt = args.format or ("table" if sys.stdout.isatty() else "json")
    if fmt == "sarif":
        raise InputError("--format sarif does not apply to the platform's views "
                         "(table or json)")
    return str(fmt)


def _emit(args: argparse.Namespace, name: str, data: dict[str, Any]) -> None:
    from spywall.platform import render

    if _fmt(args) == "json":
        sys.stdout.write(msgspec.json.encode(data).decode() + "\n")
    else:
        render.RENDERERS.get(name, render.summary)(data, sys.stdout)


def _log(args: argparse.Namespace, message: str) -> None:
    if not args.quiet:
        from spywall.platform.render import visible

        print(visible(message), file=sys.stderr)


def _engine(args: argparse.Namespace, create: bool = False) -> Any:
    from spywall.platform.service import open_db

    return open_db(args.db, create=create)


def _read(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None


def do_init(args: argparse.Namespace) -> int:
    from spywall.platform import db

    engine = _engine(args, create=True)
    _emit(args, "init", {"database": engine.url.render_as_string(hide_password=True),
                         "revision": db.init_schema(engine)})
    return EXIT_CLEAN


def do_registry(args: argparse.Namespace) -> int:
    engine = _engine(args)
    if args.registry_action == "import":
        from spywall.platform.service import import_file

        counts = import_file(engine, _read(args.file), args.actor, args.reason)
        _emit(args, "import", counts)
        return EXIT_CLEAN
    from spywall.platform.registry import dump_json
    from spywall.platform.registry_store import load_registry

    with engine.connect() as conn:
        registry = load_registry(conn)
    if args.as_ == "stix":
        from spywall.platform.registry_stix import to_stix

        sys.stdout.write(to_stix(registry) + "\n")
    else:
        sys.stdout.write(dump_json(registry).decode())
    return EXIT_CLEAN


def do_ingest(args: argparse.Namespace) -> int:
    from spywall.platform.intake import IngestResult, Intake, ingest_stream
    from spywall.platform.service import run_analysis

    _fmt(args)
    engine = _engine(args)
    if args.file == "-":
        base = Path(args.media_root) if args.media_root else Path.cwd()
        stream = sys.stdin.buffer
    else:
        path = Path(args.file)
        if not path.is_file():
            raise InputError(f"{args.file}: not a file")
        base = Path(args.media_root) if args.media_root else path.parent
        stream = path.open("rb")
    intake = Intake(engine, base, source="file", scanner=payload_scanner(args))
    result = IngestResult()
    show = not args.quiet and sys.stderr.isatty()
    with stream:
        try:
            ingest_stream(intake, stream, result,
                          on_batch=(lambda r: print(f"\r{r.accepted:,} events accepted",
                                                    end="", file=sys.stderr)) if show else None,
                          pipeline=True)
        finally:
            intake.close()      # the payload scanner's workers
    if show:
        print(file=sys.stderr)
    analysis = run_analysis(engine)
    for refusal in result.refusals:
        _log(args, f"line {refusal.line}: refused: {refusal.reason}")
    out = {**msgspec.structs.asdict(result),
        "refusals": [msgspec.structs.asdict(r) for r in result.refusals],
        "analysis": msgspec.structs.asdict(analysis)}
    _emit(args, "ingest", out)
    return EXIT_FOUND if (result.violations or result.malicious or analysis.violations) \
        else EXIT_CLEAN


def _view(name: str) -> Handler:
    def handler(args: argparse.Namespace) -> int:
        from spywall.platform import views

        _fmt(args)
        with _engine(args).connect() as conn:
            data = getattr(views, name)(conn)
        _emit(args, name, data)
        return EXIT_FOUND if data[name] else EXIT_CLEAN
    return handler


def do_analyse(args: argparse.Namespace) -> int:
    from spywall.platform.service import run_analysis

    result = run_analysis(_engine(args), full=args.full)
    _emit(args, "analyse", msgspec.structs.asdict(result))
    return EXIT_FOUND if result.campaigns else EXIT_CLEAN


def do_notify(args: argparse.Namespace) -> int:
    from spywall.platform.notify import deliver, sender_for

    try:
        sender = sender_for(args.sender)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    counts = deliver(_engine(args), sender)
    _emit(args, "notify", counts)
    return EXIT_CLEAN


def do_bans(args: argparse.Namespace) -> int:
    from spywall.platform import enforce, views

    engine = _engine(args)
    if args.step:
        if args.ban is None:
            raise InputError("which ban? (spywall platform bans STEP ID --reason WHY)")
        with engine.begin() as conn:
            if args.step == "approve":
                status = enforce.approve(conn, args.ban, args.actor, args.reason,
                                         apply_now=not args.no_apply)
            else:
                status = enforce.step(conn, args.ban, args.step, args.actor, args.reason)
        _emit(args, "ban", {"ban": args.ban, "status": status})
        return EXIT_CLEAN
    with engine.connect() as conn:
        data = views.bans(conn, args.status)
    _emit(args, "bans", data)
    return EXIT_FOUND if data["bans"] else EXIT_CLEAN


def do_keys(args: argparse.Namespace) -> int:
    from spywall.platform import auth

    engine = _engine(args)
    if args.keys_action == "add":
        scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
        with engine.begin() as conn:
            key = auth.create_key(conn, args.name, scopes)
        print(key)
        return EXIT_CLEAN
    if args.keys_action == "revoke":
        with engine.begin() as conn:
            auth.revoke_key(conn, args.id, args.actor, args.reason)
        print(f"revoked {args.id}", file=sys.stderr)
        return EXIT_CLEAN
    with engine.connect() as conn:
        _emit(args, "keys", {"keys": auth.list_keys(conn)})
    return EXIT_CLEAN


def do_consume(args: argparse.Namespace) -> int:
    from spywall.platform.consume import consume

    engine = _engine(args)
    base = Path(args.media_root) if args.media_root else Path.cwd()
    result = consume(engine, args.nats, args.stream, args.subject, args.durable, base,
                     args.idle_exit, log=lambda m: _log(args, m),
                     scanner=payload_scanner(args))
    _emit(args, "consume", msgspec.structs.asdict(result))
    return EXIT_FOUND if (result.violations or result.malicious) else EXIT_CLEAN


ACTIONS: dict[str, Handler] = {
    "init": do_init, "registry": do_registry, "ingest": do_ingest, "analyse": do_analyse,
    "campaigns": _view("campaigns"), "violations": _view("violations"),
    "notifications": _view("notifications"), "notify": do_notify, "bans": do_bans,
    "keys": do_keys, "consume": do_consume,
}


def run(args: argparse.Namespace) -> int:
    return ACTIONS[args.action](args)
