"""`gnomon send` against an in-process fake collector."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import grpc
import pytest
from gnomon_sdk.testing import FakeCollector

from gnomon.cli import send_cmd

KEY = "wk_send"


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="gnomon")
    send_cmd.register(parser.add_subparsers(required=True))
    args = parser.parse_args(["send", *argv])
    code: int = args.handler(args)
    return code


def test_send_delivers_every_event(capsys: pytest.CaptureFixture[str]) -> None:
    with FakeCollector([KEY]) as fake:
        code = run("--write-key", KEY, "--endpoint", fake.endpoint, "--events", "2500", "--seed", "9", "--pages", "50")
        assert code == 0
        assert len(fake.accepted_ids) == 2500
        assert all(c.compressed for c in fake.calls)
    out = capsys.readouterr()
    assert "accepted" in out.out
    assert "2500" in out.out
    assert "seed 9" in out.err


def test_send_paced_and_spooled_with_write_key_from_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GNOMON_WRITE_KEY", KEY)
    with FakeCollector([KEY]) as fake:
        started = time.monotonic()
        code = run(
            "--endpoint", fake.endpoint, "--events", "300", "--rate", "1000", "--spool", str(tmp_path), "--quiet"
        )
        assert time.monotonic() - started >= 0.25
        assert code == 0
        assert len(fake.accepted_ids) == 300
    assert not list(tmp_path.glob("seg-*.log"))
    capsys.readouterr()


def test_send_reports_rejections_and_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    with FakeCollector([KEY]) as fake:
        fake.fail_next(grpc.StatusCode.INVALID_ARGUMENT, details="batch too large")
        code = run("--write-key", KEY, "--endpoint", fake.endpoint, "--events", "50", "--days", "4", "--quiet")
    assert code == 1
    out = capsys.readouterr()
    assert "failed: INVALID_ARGUMENT" in out.out
    assert "72 h" in out.err
    assert run("--events", "5", "--write-key", KEY, "--pages", "3") == 2
