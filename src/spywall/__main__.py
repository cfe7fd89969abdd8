from spywall.cli import entry

raise SystemExit(entry())
