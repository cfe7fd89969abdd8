"""Run the real CLI on a hostile input in a subprocess with time and memory ceilings."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

# Ceilings for one case. Time is generous (the machine running the tests may be loaded;
# a hang is what it catches, not slowness). Memory is the address space of the whole
# process (interpreter, qpdf, numpy and the input itself): the per-input peak-memory
# ceiling documented in the README.
TIME_CEILING = 90.0
MEMORY_CEILING = 1536 << 20


@dataclass
class Run:
    code: int
    report: dict[str, Any] | None
    stderr: str
    rules: list[str] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CEILING, MEMORY_CEILING))


def run_cli(*argv: str, timeout: float = TIME_CEILING, stdin: int | None = None) -> Run:
    """``spywall ARGV -f json -q``; raises ``subprocess.TimeoutExpired`` on a hang.
    ``stdin``: a descriptor for standard input (default: none, /dev/null)."""
    env = dict(os.environ)
    src = os.path.join(os.path.dirname(__file__), "..", "..", "src")
    env["PYTHONPATH"] = os.path.abspath(src) + os.pathsep + env.get("PYTHONPATH", "")
    env["OPENBLAS_NUM_THREADS"] = "1"  # each BLAS thread reserves address space
    proc = subprocess.run(
        [sys.executable, "-m", "spywall", *argv, "-f", "json", "-q"],
        capture_output=True, timeout=timeout, preexec_fn=_limit_memory, env=env,
        stdin=subprocess.DEVNULL if stdin is None else stdin, check=False)
    report = json.loads(proc.stdout) if proc.stdout.strip() else None
    run = Run(proc.returncode, report, proc.stderr.decode("utf-8", "replace"))
    for s in (report or {}).get("subjects", []):
        run.rules += [f["rule"] for f in s["findings"]]
        run.errors += [(e["code"], e["message"]) for e in s["errors"]]
    return run


def assert_sound(run: Run) -> None:
    """No traceback, a report, and no sign that the memory ceiling was reached."""
    assert "Traceback" not in run.stderr, run.stderr[-2000:]
    assert run.report is not None, run.stderr[-2000:]
    text = json.dumps(run.report)
    assert "out of memory" not in text, run.errors
    assert "bad_alloc" not in text, run.errors
