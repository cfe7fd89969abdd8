"""``spywall evidence ACTION``: the transparency log of what the platform saw and did.

Actions: ``keygen`` (a log or witness signing key), ``checkpoint`` (sign the log's
current tree head), ``rotate-key``, ``append`` (entries from JSON Lines), ``audit`` (the
stored log against itself), ``export DIR``
(a bundle for a court), ``entry INDEX FILE`` (one entry with its proof), ``verify PATH``
(a bundle or entry file, with nothing else), ``witness`` (cosign a checkpoint consistent
with the last one cosigned).

Exit status: 0 done / intact; 1 ``verify`` found the bundle changed, ``audit`` the log
inconsistent, or ``witness`` refused; 2 usage or input error (``verify``: not a bundle at all).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spywall.commands.common import finish, new_report
from spywall.errors import InputError
from spywall.render import RENDERERS
from spywall.report import ErrorEntry, Finding, FindingKind, Report, Severity, Subject

if TYPE_CHECKING:
    import sqlalchemy as sa

HELP = "transparency log of detections, denials and notices: export and verify evidence"


def _db(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", default=None, metavar="URL",
                   help="database URL (default: SPYWALL_DB, else sqlite:///spywall.db)")


def _log_key(p: argparse.ArgumentParser) -> None:
    p.add_argument("--log-key", default=None, metavar="PATH",
                   help="the log's signing key file (default: SPYWALL_LOG_KEY)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    k = sub.add_parser("keygen", help="write a new signing key (and print its public key)")
    k.add_argument("name", help="key name, e.g. example.org/spywall-log (the log's origin)")
    k.add_argument("--out", required=True, metavar="PATH", help="key file to create")
    k.add_argument("--witness", action="store_true", help="a witness (cosigner) key")
    c = sub.add_parser("checkpoint", help="sign a checkpoint of the log's current size")
    r = sub.add_parser("rotate-key", help="replace the log's signing key (recorded in the log)")
    r.add_argument("--new-key", required=True, metavar="PATH", help="the new key file")
    a = sub.add_parser("append", help="append entries (JSON Lines, or - for stdin)")
    a.add_argument("file", metavar="FILE")
    e = sub.add_parser("export", help="write a bundle a court can keep")
    e.add_argument("dir", metavar="DIR", help="new (or empty) folder")
    e.add_argument("--party", default=None, help="only this party's entries")
    e.add_argument("--since", default=None, metavar="DATE", help="only entries at or after")
    e.add_argument("--witness-key", action="append", default=[], metavar="VKEY",
                   help="a witness's public key whose cosignatures the verifier checks")
    e.add_argument("--no-pdf", action="store_true", help="HTML report only")
    u = sub.add_parser("audit", help="check the stored log against itself (leaves, tree "
                                     "nodes, checkpoint roots)")
    n = sub.add_parser("entry", help="write one entry with its inclusion proof")
    n.add_argument("index", type=int)
    n.add_argument("out", metavar="FILE")
    for q in (c, r, a, e, n):
        _db(q)
        _log_key(q)
    _db(u)
    v = sub.add_parser("verify", help="check a bundle or entry file: 0 intact, 1 changed, "
                                      "2 not a bundle")
    v.add_argument("path", metavar="PATH")
    v.add_argument("--key", default=None, metavar="PUBKEY",
                   help="the log's public key (vkey text or a file holding it), obtained "
                        "independently; default: the bundle's own first key")
    w = sub.add_parser("witness", help="cosign a checkpoint consistent with the last one")
    w.add_argument("--log", required=True, metavar="SOURCE",
                   help="database URL, bundle folder or checkpoint file")
    w.add_argument("--key", required=True, metavar="PATH", help="the witness's key file")
    w.add_argument("--state", required=True, metavar="DIR", help="the witness's state")
    w.add_argument("--log-vkey", default=None, metavar="VKEY",
                   help="the log's public key (default: the one recorded in the state, "
                        "else the source's, trusted on first use)")
    w.add_argument("--out", default=None, metavar="FILE", help="write the cosigned checkpoint")
    for q in (k, c, r, a, e, n, v, w, u):
        # the CLI's --format / --quiet given after the action (SUPPRESS: unset unless given)
        q.add_argument("--format", "-f", choices=sorted(RENDERERS), default=argparse.SUPPRESS)
        q.add_argument("--quiet", "-q", action="store_true", default=argparse.SUPPRESS)


def _engine(args: argparse.Namespace) -> sa.Engine:
    from spywall.evidence import store
    from spywall.platform.db import db_url

    url = store.target_url(db_url(args.db))
    engine = store.open_engine(url)
    if not store.ready(engine):
        raise InputError(f"{url}: no evidence log (run 'spywall platform init')")
    return engine


def _keygen(args: argparse.Namespace, report: Report) -> None:
    from spywall.evidence.keys import COSIGNER, NOTE_SIGNER, Signer, write_signer

    signer = Signer.generate(args.name, COSIGNER if args.witness else NOTE_SIGNER)
    try:
        write_signer(signer, Path(args.out))
    except OSError as exc:
        raise InputError(f"{args.out}: {exc.strerror}") from exc
    report.device = {"key": args.out, "vkey": signer.vkey()}


def _checkpoint(args: argparse.Namespace, report: Report) -> None:
    from spywall.evidence import log

    signer = _signer(args.log_key)
    with _engine(args).begin() as conn:
        note = log.checkpoint(conn, signer)
    report.device = {"checkpoint": note, "size": int(note.split("\n")[1])}


def _rotate(args: argparse.Namespace, report: Report) -> None:
    from spywall.evidence import log
    from spywall.evidence.keys import load_signer

    old, new = load_signer(args.log_key), load_signer(args.new_key)
    with _engine(args).begin() as conn:
        index = log.rotate_key(conn, old, new)
    report.device = {"entry": index, "old_key": old.vkey(), "new_key": new.vkey()}


def _append(args: argparse.Namespace, report: Report) -> None:
    from spywall.evidence import log

    stream = sys.stdin if args.file == "-" else None
    try:
        text = stream.read() if stream else Path(args.file).read_text(encoding="utf-8")
        entries = [json.loads(line) for line in text.splitlines() if line.strip()]
    except (OSError, ValueError) as exc:
        raise InputError(f"{args.file}: {exc}") from exc
    with _engine(args).begin() as conn:
        indices = log.append_many(conn, entries)
    report.device = {"appended": len(indices),
                     "first": indices[0] if indices else None,
                     "last": indices[-1] if indices else None}


def _export(args: argparse.Namespace, report: Report) -> None:
    from spywall.evidence import bundle

    done = bundle.export(_engine(args), Path(args.dir), _signer(args.log_key),
                         party=args.party, since=args.since,
                         witnesses=tuple(args.witness_key), pdf=not args.no_pdf)
    report.device = {"bundle": str(done.folder), "tree_size": done.tree_size,
                     "entries": done.entries, "violations": done.violations,
                     "earlier_checkpoints": done.checkpoints, "pdf": done.pdf}


def _entry(args: argparse.Namespace, report: Report) -> None:
    from spywall.evidence import bundle

    bundle.export_entry(_engine(args), args.index, Path(args.out), _signer(args.log_key))
    report.device = {"entry": args.index, "file": args.out}


def _audit(args: argparse.Namespace, report: Report) -> None:
    from spywall.evidence.audit import audit

    with _engine(args).connect() as conn:
        done = audit(conn)
    subject = Subject(path=args.db or "SPYWALL_DB", format="evidence-log")
    subject.findings = [Finding(
        rule="evidence.audit", title="evidence log inconsistent", kind=FindingKind.HEURISTIC,
        severity=Severity.CRITICAL, message=p, path=subject.path) for p in done.problems]
    report.subjects = [subject]
    report.device = {"size": done.size, "entries": done.entries, "nodes": done.nodes,
                     "checkpoints": done.checkpoints}


def _key_text(value: str | None) -> str | None:
    if value is None or "+" in value:
        return value
    try:
        return Path(value).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"--key {value}: {exc}") from exc


def _verify(args: argparse.Namespace, report: Report) -> None:
    from spywall.evidence.verify import NOT_A_BUNDLE, verify_path

    result = verify_path(Path(args.path), _key_text(args.key))
    subject = Subject(path=args.path, format="evidence-bundle")
    report.device = {"status": ["intact", "changed", "not a bundle"][result.status],
                     "entries": result.entries, "tree_size": result.tree_size,
                     "origin": result.origin, "trusted_key": result.trusted,
                     "earlier_checkpoints": result.checkpoints,
                     "witnesses": ", ".join(result.witnesses),
                     "key_from_bundle": args.key is None}
    if result.status == NOT_A_BUNDLE:
        report.errors.append(ErrorEntry(path=args.path, code="input", message=result.first))
    elif result.problems:
        subject.findings = [Finding(
            rule="evidence.verify", title="evidence bundle changed", kind=FindingKind.HEURISTIC,
            severity=Severity.CRITICAL, message=p, path=args.path) for p in result.problems]
    report.subjects = [subject]


def _witness(args: argparse.Namespace, report: Report) -> None:
    from spywall.evidence.keys import COSIGNER, load_signer
    from spywall.evidence.witness import Refused, open_source, witness

    cosigner = load_signer(args.key, COSIGNER)
    subject = Subject(path=args.log, format="checkpoint")
    report.subjects = [subject]
    try:
        done = witness(open_source(args.log), cosigner, Path(args.state), args.log_vkey)
    except Refused as exc:
        subject.findings = [Finding(
            rule="evidence.witness", title="checkpoint refused by the witness",
            kind=FindingKind.HEURISTIC, severity=Severity.CRITICAL, message=str(exc),
            path=args.log)]
        return
    if args.out:
        Path(args.out).write_text(done.note, encoding="utf-8")
    report.device = {"origin": done.origin, "size": done.size, "previous": done.previous,
                     "cosigned": done.note}


ACTIONS: dict[str, Callable[[argparse.Namespace, Report], None]] = {
    "keygen": _keygen, "checkpoint": _checkpoint, "rotate-key": _rotate, "append": _append,
    "export": _export, "entry": _entry, "verify": _verify, "witness": _witness,
    "audit": _audit,
}


def run(args: argparse.Namespace) -> Report:
    from spywall.evidence.bundle import ExportError
    from spywall.evidence.keys import KeyFileError
    from spywall.evidence.kinds import EntryError
    from spywall.evidence.log import LogError

    report = new_report("evidence")
    try:
        ACTIONS[args.action](args, report)
    except (KeyFileError, EntryError, LogError, ExportError) as exc:
        raise InputError(str(exc)) from exc
    return finish(report)


def _signer(path: str | None) -> Any:
    """The log key given (--log-key, SPYWALL_LOG_KEY), else the embedded default's
    ``./spywall-log.key`` (made the first time)."""
    import os

    from spywall.evidence.keys import KEY_ENV, default_signer, load_signer

    if path or os.environ.get(KEY_ENV):
        return load_signer(path)
    return default_signer()
