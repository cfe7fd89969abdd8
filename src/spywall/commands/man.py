"""``spywall man``: print the spywall(1) manual page (roff), generated from the argument
parser; ``spywall man | man -l -`` reads it."""

from __future__ import annotations

import argparse
import sys

from spywall.commands.shell import man
from spywall.errors import InputError

HELP = "print the manual page (roff; read it with: spywall man | man -l -)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    del p  # no arguments


def run(args: argparse.Namespace) -> None:
    if args.format not in (None,):
        raise InputError("man prints a roff manual page (-f is not available)")
    from spywall import cli

    sys.stdout.write(man(cli.build_parser(), (cli.__doc__ or "").split("Exit status", 1)
                         [-1].split(":", 1)[-1].strip("\n")))
