"""``spywall completion`` and ``spywall man``: generated from the argument parser, so
every command and option is there; the bash script is run by bash, the page by groff."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from spywall.cli import build_parser, main
from spywall.commands.shell import commands, options

Cap = pytest.CaptureFixture[str]


def _script(capsys: Cap, shell: str) -> str:
    assert main(["completion", shell]) == 0
    return capsys.readouterr().out


def _complete(script: str, *words: str) -> set[str]:
    """What bash's completion offers for the command line ``words`` (the last one being
    completed)."""
    line = " ".join(f"'{w}'" for w in words)
    code = (f"{script}\nCOMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; _spywall; "
            "printf '%s\\n' \"${COMPREPLY[@]}\"")
    proc = subprocess.run(["bash", "--norc", "-c", code], capture_output=True, text=True,
                          check=True, cwd="/")
    return set(proc.stdout.split())


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_bash_completes_commands_options_and_values(capsys: Cap) -> None:
    script = _script(capsys, "bash")
    assert set(commands(build_parser())) <= _complete(script, "spywall", "")
    assert _complete(script, "spywall", "che") == {"check-ios", "check-android",
                                                   "check-sysdiagnose"}
    assert _complete(script, "spywall", "scan", "--max-d") == {"--max-depth",
                                                                "--max-decompressed"}
    assert _complete(script, "spywall", "pcap", "-f", "") == {"json", "sarif", "table"}
    assert _complete(script, "spywall", "iocs", "st") == {"stats"}
    assert _complete(script, "spywall", "completion", "") >= {"bash", "zsh", "fish"}


def test_zsh_and_fish_cover_every_command_and_option(capsys: Cap) -> None:
    zsh = _script(capsys, "zsh")
    assert zsh.startswith("#compdef spywall")
    assert "bashcompinit" in zsh
    fish = _script(capsys, "fish")
    parser = build_parser()
    for name, sub in commands(parser).items():
        assert f"-a {name} -d" in fish
        lines = [ln + " " for ln in fish.splitlines()
                 if f"'__fish_seen_subcommand_from {name}'" in ln]
        for o in options(sub):
            for s in o.strings:
                flag = f"-l {s[2:]}" if s.startswith("--") else f"-s {s[1:]}"
                assert any(f" {flag} " in ln for ln in lines), (name, s)


@pytest.mark.skipif(shutil.which("groff") is None, reason="no groff")
def test_man_page_renders_and_documents_everything(capsys: Cap) -> None:
    assert main(["man"]) == 0
    page = capsys.readouterr().out
    proc = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-P-cbou"], input=page,
                          capture_output=True, text=True, check=True)
    assert proc.stderr == ""  # no roff warnings
    text = proc.stdout.replace("\u2010", "-").replace("\u2212", "-")
    assert "EXIT STATUS" in text
    assert "141" in text
    for name, sub in commands(build_parser()).items():
        assert f"spywall {name}" in text
        for o in options(sub):
            for s in o.strings:
                assert s in text, (name, s)


@pytest.mark.parametrize("command", [["man"], ["completion", "bash"]])
def test_refuse_formats(capsys: Cap, command: list[str]) -> None:
    assert main([*command, "-f", "json"]) == 2
    assert capsys.readouterr().out == ""


def test_program_runs_them() -> None:
    proc = subprocess.run([sys.executable, "-m", "spywall", "completion", "bash"],
                          capture_output=True, text=True, check=True)
    assert "complete -o filenames -F _spywall spywall" in proc.stdout
