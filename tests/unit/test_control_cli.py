"""`gnomon merchant ...` / `gnomon key ...` against the embedded control store in a temporary data dir."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from gnomon.cli import admin_cmd
from gnomon.control import SqliteControlStore
from gnomon.control.port import hash_secret


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="gnomon")
    admin_cmd.register(parser.add_subparsers(required=True))
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GNOMON_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("GNOMON_ENGINES", "embedded")
    return tmp_path


def test_merchant_and_key_flow(capsys: pytest.CaptureFixture[str], data_dir: Path) -> None:
    assert (
        run(
            ["merchant", "create", "--name", "Acme", "--time-zone", "Asia/Kolkata", "--currency", "INR", "--id", "acme"]
        )
        == 0
    )
    assert "acme" in capsys.readouterr().out
    assert run(["merchant", "list", "--json"]) == 0
    [m] = json.loads(capsys.readouterr().out)
    assert (m["merchant_id"], m["time_zone"], m["currency"]) == ("acme", "Asia/Kolkata", "INR")

    assert run(["key", "create", "--merchant", "acme", "--kind", "write", "--label", "web", "--json"]) == 0
    out = capsys.readouterr()
    created = json.loads(out.out)
    assert created["secret"].startswith("gn_w_")
    assert "cannot show it again" in out.err
    store = SqliteControlStore(data_dir / "control.sqlite3")
    try:
        assert store.resolve(created["secret"]) is not None
    finally:
        store.close()
    raw = b"".join(p.read_bytes() for p in data_dir.glob("control.sqlite3*"))
    assert created["secret"].encode() not in raw
    assert hash_secret(created["secret"]) in raw

    assert run(["key", "list", "--merchant", "acme"]) == 0
    table = capsys.readouterr().out
    assert created["key_id"] in table
    assert created["secret"] not in table
    assert run(["key", "revoke", created["key_id"], "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["revoked_at"]


def test_plain_key_create_prints_secret_once(capsys: pytest.CaptureFixture[str]) -> None:
    run(["merchant", "create", "--name", "A", "--time-zone", "UTC", "--currency", "EUR", "--id", "aaa"])
    capsys.readouterr()
    assert run(["key", "create", "--merchant", "aaa", "--kind", "read"]) == 0
    out = capsys.readouterr()
    assert out.out.count("gn_r_") == 1
    assert "WARNING" in out.err


@pytest.mark.parametrize(
    ("argv", "code", "mentions"),
    [
        (["merchant", "create", "--name", "A", "--time-zone", "Mars/Base", "--currency", "EUR"], 2, "IANA"),
        (["merchant", "create", "--name", "A", "--time-zone", "UTC", "--currency", "euro"], 2, "ISO 4217"),
        (["key", "create", "--merchant", "nobody", "--kind", "write"], 1, "does not exist"),
        (["key", "list", "--merchant", "nobody"], 1, "does not exist"),
        (["key", "revoke", "0000000000000000"], 1, "does not exist"),
    ],
)
def test_errors(capsys: pytest.CaptureFixture[str], argv: list[str], code: int, mentions: str) -> None:
    assert run(argv) == code
    assert mentions in capsys.readouterr().err


def test_duplicate_merchant(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["merchant", "create", "--name", "A", "--time-zone", "UTC", "--currency", "EUR", "--id", "dup"]
    assert run(argv) == 0
    assert run(argv) == 2
    assert "already exists" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["merchant", "--help"], ["key", "--help"], ["key", "create", "--help"]])
def test_help_is_explanatory(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        run(argv)
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert "gnomon" in text
    assert len(text.splitlines()) > 5
