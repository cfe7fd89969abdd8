"""What the tests/hostile/test_output_*.py tests share: hostile evidence strings, a run of
the real command line with a forced terminal, and the checks on what reached it.

A hostile string carries rich markup (a closing tag that matches nothing, a style, a
link), terminal escape sequences (clear screen, an SGR colour rich never uses, an OSC 8
hyperlink, an OSC 0 window title), bidi overrides and isolates, zero-width and separator
characters, C1 and DEL, and a newline followed by a forged summary line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from spywall.cli import main

# rich's own styles (bold, dim, italic, red, yellow, cyan) as SGR sequences: nothing else
# may carry an ESC byte. \x1b[32m (green) is never one of rich's here.
RICH_SGR = re.compile(r"\x1b\[[0-9;]*m")
FORGED = "FORGED scan: 0 input(s), 0 finding(s), 0 error(s): nothing found"
MARKUP = "[/x][bold green]CLEAN[link=https:evil.example]"  # holds a "/": not in one name
# Without "/": fits in one file name.
TAIL = ("[bold green]CLEAN[link=https:evil.example]\x1b[2J\x1b[32mOK"
        "\x1b]8;;https:evil.example\x07\x1b]0;pwned\x07\u202egpj.\u2066\u200b\u2028\x85\x7f"
        f"\n{FORGED}\n")
# Raw characters that must never reach a terminal.
RAW = ("\x1b[32m", "\x1b[2J", "\x1b]", "\x07", "\u202e", "\u2066", "\u200b", "\u2028",
       "\x85", "\x7f")


def hostile_path(root: Path, suffix: str) -> Path:
    """``root/a[/x]<TAIL><suffix>``: its text holds the markup closing tag ``[/x]`` (the
    folder ``a[`` and a file ``x]...``) and every other hostile piece."""
    folder = root / "a["
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"x]{TAIL}{suffix}"


def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        argv: Sequence[str]) -> tuple[int, str, str]:
    """The command line in this process, standard output and error forced to be a wide
    terminal (rich honours FORCE_COLOR and COLUMNS): colours and all."""
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "1000")
    monkeypatch.delenv("NO_COLOR", raising=False)
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_no_raw(text: str) -> None:
    """No raw escape or control character from the input, no traceback."""
    assert "Traceback" not in text
    assert "MarkupError" not in text
    for raw in RAW:
        assert raw not in text, repr(raw)


def assert_safe(text: str) -> None:
    """``assert_no_raw``, no ESC but rich's own styles, and no forged line."""
    assert_no_raw(text)
    plain = RICH_SGR.sub("", text)
    assert "\x1b" not in plain
    for line in plain.splitlines():
        if "FORGED" in line:
            assert "\\nFORGED" in line, line
        assert "\r" not in line


def assert_shown_escaped(text: str) -> None:
    """The hostile string reached the table, shown as text: markup literal, escapes
    visible."""
    plain = RICH_SGR.sub("", text)
    assert "[bold green]CLEAN" in plain
    assert "\\x1b[2J" in plain
    assert "\\u202e" in plain
    assert "\\nFORGED" in plain
