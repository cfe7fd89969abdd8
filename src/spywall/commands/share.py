"""``spywall share ...``: indicators to and from other platforms over TAXII 2.1.

- ``publish``: the registry's current STIX 2.1 export into the local ``registry``
  collection (served by ``spywall serve`` under ``/taxii/``);
- ``push URL``: a local collection to a remote TAXII 2.1 collection;
- ``pull URL``: a remote collection into the local ``shared`` collection;
- ``review --reason WHY``: what was pulled, merged into the registry (recorded with who
  and why);
- ``grant KEY-NAME COLLECTION [--read] [--write]``: a key's rights on a collection.

``URL`` is a collection's address (``https://host/api-root/collections/ID/``). A remote
spywall takes ``--key``; other servers ``--user`` and ``--password`` (HTTP Basic).
Exit status: 0 done, 2 usage, input or network error.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import msgspec

from spywall.errors import InputError

HELP = "share indicators with other platforms over TAXII 2.1"
OWN_OPTIONS = True


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", metavar="URL", default=None,
                   help="database URL (default: $SPYWALL_DB, else sqlite:///spywall.db)")
    p.add_argument("--format", "-f", choices=["json", "table"], default="json")
    p.add_argument("--quiet", "-q", action="store_true")


def _remote_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("url", metavar="URL", help="the remote collection's URL")
    p.add_argument("--user", default=None)
    p.add_argument("--password", default=None)
    p.add_argument("--key", default=None, help="a spywall API key (remote spywall)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    _common(sub.add_parser("publish", help="the registry into the local registry collection"))
    push = sub.add_parser("push", help="a local collection to a remote TAXII collection")
    _remote_args(push)
    push.add_argument("--collection", choices=["registry", "shared"], default="registry")
    _common(push)
    pull = sub.add_parser("pull", help="a remote TAXII collection into local 'shared'")
    _remote_args(pull)
    pull.add_argument("--added-after", default=None, metavar="TIMESTAMP")
    _common(pull)
    review = sub.add_parser("review", help="merge what was pulled into the registry")
    review.add_argument("--reason", required=True)
    review.add_argument("--actor", default="cli")
    _common(review)
    grant = sub.add_parser("grant", help="a key's rights on a collection")
    grant.add_argument("key_name")
    grant.add_argument("collection", choices=["registry", "shared"])
    grant.add_argument("--read", action="store_true")
    grant.add_argument("--write", action="store_true")
    _common(grant)


def _emit(data: dict[str, Any]) -> None:
    sys.stdout.write(msgspec.json.encode(data).decode() + "\n")


def run(args: argparse.Namespace) -> int:
    from spywall.platform import taxii_client as client
    from spywall.platform import taxii_store as store
    from spywall.platform.service import open_db

    engine = open_db(args.db)
    if args.action == "publish":
        with engine.begin() as conn:
            status = store.publish_registry(conn)
        _emit({"objects": status["success_count"]})
    elif args.action == "push":
        _emit(client.push(engine, args.collection,
                          client.remote(args.url, args.user, args.password, args.key)))
    elif args.action == "pull":
        _emit(client.pull(engine, client.remote(args.url, args.user, args.password, args.key),
                          args.added_after))
    elif args.action == "review":
        _emit(client.review(engine, args.actor, args.reason))
    else:
        try:
            with engine.begin() as conn:
                store.grant(conn, args.key_name, args.collection, args.read, args.write)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        _emit({"key": args.key_name, "collection": args.collection, "read": args.read,
               "write": args.write})
    return 0
