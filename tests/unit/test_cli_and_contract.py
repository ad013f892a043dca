"""The console entry point answers --help for every command, and the generated contract is in sync."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from gnomon.cli.main import build_parser
from gnomon.tools import protogen


def test_generated_code_matches_proto() -> None:
    assert protogen.stale_files() == [], "run `make proto` and commit gnomon/v1"


def test_help_of_every_command() -> None:
    out = subprocess.run([sys.executable, "-m", "gnomon.cli.main", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "COMMAND" in out.stdout
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    commands = list(subparsers.choices)
    assert "engines" in commands
    for name in commands:
        with pytest.raises(SystemExit) as exit_info:
            build_parser().parse_args([name, "--help"])
        assert exit_info.value.code == 0


def test_engines_help_explains_actions(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["engines", "--help"])
    text = capsys.readouterr().out
    for action in ("up", "down", "status", "logs", "fetch"):
        assert f"gnomon engines {action}" in text
