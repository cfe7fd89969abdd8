"""Adversarial suite: the scan workers' memory ceiling, and workers that die.

Every file is scanned in a worker process under ``RLIMIT_DATA`` (``spywall.workers``):
an input that allocates past the ceiling, or whose worker dies, is reported as not
examined completely (exit 1), and every other input keeps its findings.
"""

from __future__ import annotations

import mmap
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
import shapes
from hostile_run import run_cli

from spywall import engine, workers
from spywall.limits import Limits

WEBP = "webp-huffman-overflow"
INCOMPLETE = "incomplete-examination"


def _by_path(report: dict[str, object]) -> dict[str, dict[str, object]]:
    return {s["path"]: s for s in report["subjects"]}  # type: ignore[attr-defined, index]


def _rules(subject: dict[str, object]) -> set[str]:
    return {f["rule"] for f in subject["findings"]}  # type: ignore[attr-defined, index]


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_an_input_past_the_memory_ceiling_is_incomplete(tmp_path: Path, jobs: str) -> None:
    big = tmp_path / "a.zip"
    big.write_bytes(shapes.zip_then_big_member(shapes.webp_exploit()))
    after = tmp_path / "b.webp"
    after.write_bytes(shapes.webp_exploit())
    run = run_cli("scan", "-j", jobs, "--max-memory", "256", str(big), str(after))
    assert "Traceback" not in run.stderr, run.stderr[-2000:]
    assert run.code == 1
    subjects = _by_path(run.report)  # type: ignore[arg-type]
    capped = subjects[str(big)]
    assert _rules(capped) == {WEBP, INCOMPLETE}  # the member before the allocation too
    (limit,) = [e for e in capped["errors"] if e["code"] == "limit"]  # type: ignore[attr-defined]
    assert limit["message"] == (
        "out of memory while parsing: the memory ceiling of 256 MiB (--max-memory) was reached"
    )
    assert limit["path"] == str(big)  # (met reading the member: its name is not known)
    assert _rules(subjects[str(after)]) == {WEBP}  # the worker went on to the next input
    # with the default ceiling (from the caps) the member is examined whole
    whole = run_cli("scan", "-j", jobs, str(big))
    assert whole.code == 1
    assert whole.rules == [WEBP]
    assert [code for code, _ in whole.errors] == ["malformed"]  # the exploit's own tree


def _abort_on(name: str, real: object) -> object:
    def scan_path(path: str, limits: Limits, cache: object = None) -> engine.Subject:
        if path.endswith(name):
            import faulthandler

            faulthandler.disable()  # pytest's handler would print the worker's stack
            os.abort()  # as a C library does when an allocation fails under the ceiling
        return real(path, limits, cache)  # type: ignore[operator, no-any-return]

    return scan_path


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_worker_that_dies_costs_only_its_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, forked: None, jobs: int
) -> None:
    files = []  # enough that each worker is handed several at once (workers.BATCH_FILES)
    for i in range(40):
        name = f"{i:02d}-crash.webp" if i in (1, 13, 14, 30) else f"{i:02d}.webp"
        (tmp_path / name).write_bytes(shapes.webp_exploit())
        files.append(str(tmp_path / name))
    monkeypatch.setattr(engine, "scan_path", _abort_on("crash.webp", engine.scan_path))
    subjects = engine.scan_paths([str(tmp_path)], Limits(), jobs=jobs)
    assert [s.path for s in subjects] == files
    for s in subjects:
        rules = {f.rule for f in s.findings}
        if "crash" in s.path:
            assert rules == {INCOMPLETE}
            assert [(e.code, e.message) for e in s.errors] == [
                ("limit", "its scan worker died (SIGABRT): the input was not examined completely")
            ]
        else:
            assert rules == {WEBP}


def _bus_on(name: str, real: object) -> object:
    def scan_path(path: str, limits: Limits, cache: object = None) -> engine.Subject:
        if path.endswith(name) and limits.map_inputs:
            import faulthandler

            faulthandler.disable()
            os.kill(os.getpid(), signal.SIGBUS)
        return real(path, limits, cache)  # type: ignore[operator, no-any-return]

    return scan_path


def test_a_worker_killed_by_sigbus_does_not_lose_the_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, forked: None
) -> None:
    files = []
    for i in range(6):
        f = tmp_path / f"{i}.webp"
        f.write_bytes(shapes.webp_exploit())
        files.append(str(f))
    crash = tmp_path / "crash.bin"
    crash.write_bytes(shapes.webp_exploit())
    monkeypatch.setattr(engine, "scan_path", _bus_on("crash.bin", engine.scan_path))
    subjects = engine.scan_paths([*files, str(crash)], Limits(), jobs=2)
    assert [s.path for s in subjects] == sorted([*files, str(crash)])
    # every input is reported, the one the dead worker held included (read, not mapped)
    assert all({f.rule for f in s.findings} == {WEBP} for s in subjects)
    assert subjects[-1].errors[0].code == "truncated"
    assert all(e.code != "truncated" for s in subjects[:-1] for e in s.errors)


def _truncate_after_mapping(real: object) -> object:
    """``read_input`` that truncates a mapped input (to its first 64 KiB) once it is
    mapped and before any parser reads it: what another process may do at any moment."""

    def read_input(path: str, limits: Limits, started: float | None = None) -> bytes:
        data = real(path, limits, started)  # type: ignore[operator]
        if isinstance(data, mmap.mmap):
            import faulthandler

            faulthandler.disable()  # pytest's handler would print the worker's stack
            os.truncate(path, 64 << 10)
        return data  # type: ignore[no-any-return]

    return read_input


@pytest.mark.parametrize("jobs", [1, 2])
def test_an_input_truncated_while_mapped_is_scanned_again_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, forked: None, jobs: int
) -> None:
    exploit = shapes.webp_exploit()
    cut = tmp_path / "a.webp"  # mapped (over MAP_MIN_BYTES), then truncated under its map
    cut.write_bytes(exploit + bytes(64 << 10) + b"\x01" * (2 << 20))
    other = tmp_path / "b.webp"
    other.write_bytes(exploit)
    monkeypatch.setattr(engine, "read_input", _truncate_after_mapping(engine.read_input))
    subjects = engine.scan_paths([str(cut), str(other)], Limits(), jobs=jobs)
    assert [s.path for s in subjects] == [str(cut), str(other)]
    assert all(WEBP in {f.rule for f in s.findings} for s in subjects)
    # the truncated input was read again, as it is now: 64 KiB, the exploit then zeros
    assert subjects[0].size == 64 << 10
    assert (subjects[0].errors[0].code, subjects[0].errors[0].message) == (
        "truncated",
        workers.TRUNCATED,
    )


def test_qpdf_stuck_past_the_hard_limit_is_stopped_and_the_pdf_read_raw(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, forked: None,
    never_returns: Callable[..., None]
) -> None:
    import pikepdf

    from spywall.formats.pdf import QPDF_STOPPED

    pdf = tmp_path / "a.pdf"
    pdf.write_bytes(shapes.pdf_with_jbig2())
    other = tmp_path / "b.webp"
    other.write_bytes(shapes.webp_exploit())
    monkeypatch.setattr(pikepdf, "open", never_returns)  # in the workers, forked after
    subjects = engine.scan_paths([str(pdf), str(other)], Limits(seconds=1), jobs=1)
    stopped, after = subjects
    # the worker was killed in qpdf; a fresh one read the PDF from its raw bytes
    assert {f.rule for f in stopped.findings} == {"jbig2-symbol-overflow", INCOMPLETE}
    assert ("limit", f"PDF document: {QPDF_STOPPED}; its streams were found by reading the "
            "raw bytes instead") in {(e.code, e.message) for e in stopped.errors}
    assert {f.rule for f in after.findings} == {WEBP}


def test_a_stuck_worker_outside_qpdf_is_stopped_and_fails_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, forked: None,
    never_returns: Callable[..., None]
) -> None:
    stuck = tmp_path / "a.webp"
    other = tmp_path / "b.webp"
    for f in (stuck, other):
        f.write_bytes(shapes.webp_exploit())
    real = engine.scan_path

    def scan_path(path: str, limits: Limits, cache: object = None) -> engine.Subject:
        if path == str(stuck):
            never_returns()
        return real(path, limits, cache)  # type: ignore[arg-type]

    monkeypatch.setattr(engine, "scan_path", scan_path)
    first, second = engine.scan_paths([str(stuck), str(other)], Limits(seconds=1), jobs=1)
    assert {f.rule for f in first.findings} == {INCOMPLETE}
    hard = 1 * engine.HARD_LIMIT_FACTOR + 1 + workers.KILL_GRACE
    assert [(e.code, e.message) for e in first.errors] == [
        ("limit", f"hard time limit: its scan worker was stopped after {hard:g}s")
    ]
    assert {f.rule for f in second.findings} == {WEBP}


def test_an_input_read_whole_past_the_ceiling_is_incomplete(tmp_path: Path) -> None:
    big = tmp_path / "a.pdf"  # a PDF is read whole, not mapped
    with big.open("wb") as fh:
        fh.write(shapes.pdf_with_jbig2())
        fh.write(b"%" + b"x" * (300 << 20) + b"\n")
    run = run_cli("scan", "-j", "1", "--max-memory", "256", str(big))
    assert "Traceback" not in run.stderr, run.stderr[-2000:]
    assert run.code == 1
    assert run.rules == [INCOMPLETE]
    assert run.errors == [
        (
            "limit",
            "out of memory while reading the input: the memory ceiling of 256 MiB "
            "(--max-memory) was reached",
        )
    ]
