"""``spywall explain [RULE]``: what a rule id in a report means, how sure it is, what to do
next and where to read more (from ``spywall.rulebook``, the same data the findings carry).
Without RULE: every rule id with its title."""

from __future__ import annotations

import argparse
import difflib
import json
import sys

import msgspec

from spywall.errors import InputError
from spywall.render.escape import visible
from spywall.rulebook import explain, explanation_text, rulebook

HELP = "explain a rule id: what it means, how sure, what to do next, where to read more"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("rule", nargs="?", metavar="RULE",
                   help="a rule id from a report (e.g. webp-huffman-overflow); none: list them all")
    p.set_defaults(raw_output=True)


def run(args: argparse.Namespace) -> None:
    if args.format not in (None, "json", "table"):
        raise InputError(f"explain prints text or JSON (-f {args.format} is not available)")
    as_json = args.format == "json"
    if args.rule is None:
        rules = sorted(rulebook().values(), key=lambda r: r.id)
        if as_json:
            json.dump([msgspec.to_builtins(r) for r in rules], sys.stdout, indent=2)
            sys.stdout.write("\n")
        else:
            sys.stdout.writelines(f"{r.id}  {r.title}\n" for r in rules)
        return
    info = explain(args.rule)
    if info is None:
        close = difflib.get_close_matches(args.rule, rulebook(), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else "; 'spywall explain' lists them"
        raise InputError(f"no rule {visible(args.rule)!r}{hint}")
    if as_json:
        sys.stdout.write(json.dumps({**msgspec.to_builtins(info), "read_more": info.read_more()},
                                    indent=2) + "\n")
    else:
        sys.stdout.write(explanation_text(info))
