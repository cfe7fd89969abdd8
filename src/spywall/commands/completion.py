"""``spywall completion bash|zsh|fish``: print a shell completion script generated from
the argument parser (``spywall.commands.shell``)."""

from __future__ import annotations

import argparse
import sys

from spywall.commands.shell import SHELLS
from spywall.errors import InputError

HELP = "print a shell completion script (bash, zsh or fish)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("shell", choices=sorted(SHELLS),
                   help="bash: eval \"$(spywall completion bash)\"; zsh: the same in "
                        ".zshrc; fish: spywall completion fish | source")


def run(args: argparse.Namespace) -> None:
    if args.format not in (None,):
        raise InputError("completion prints a shell script (-f is not available)")
    from spywall.cli import build_parser

    sys.stdout.write(SHELLS[args.shell](build_parser()))
