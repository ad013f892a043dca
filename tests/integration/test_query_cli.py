"""`gnomon query ...` against a running query service: tables a terminal user can read, errors in words."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from gnomon.cli import query_cmd
from gnomon.control import KeyKind, SqliteControlStore
from gnomon.rollups import Grain, day_window
from gnomon.rollups.sqlite_store import SqliteRollupStore
from gnomon.rollups.sqlite_versions import SqliteVersionRegistry
from gnomon.settings import CommonSettings
from gnomon.telemetry import TelemetrySettings, setup_telemetry
from query_svc.server import QueryDeps
from query_svc.settings import QuerySettings
from query_svc.testing import rollup_row, running_query_server

ZONE = "Europe/Berlin"
NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)


@pytest.fixture
def endpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    monkeypatch.setenv("COLUMNS", "200")
    control = SqliteControlStore(tmp_path / "control.sqlite3")
    merchant = control.create_merchant("Shop", ZONE, "EUR").merchant_id
    token = control.create_key(merchant, KeyKind.READ).secret
    store = SqliteRollupStore(tmp_path / "rollups.sqlite3", synchronous="OFF")
    registry = SqliteVersionRegistry(tmp_path / "rollups.sqlite3", synchronous="OFF")
    rows = []
    for i in range(7):
        start = day_window(date(2026, 2, 22) + timedelta(days=i), ZONE)[0]
        rows.append(rollup_row(merchant, "total", Grain.DAY, start, users=[f"u{i}", "u"], sessions=10 + i,
                               pageviews=30, revenue_micros=12_340_000))  # fmt: skip
        for page in ("/home", "/blog/a", "/blog/b"):
            rows.append(rollup_row(merchant, "page", Grain.DAY, start, (page,), pageviews=len(page) + i, sessions=2))
    store.write(rows)
    telemetry = setup_telemetry(TelemetrySettings())
    settings = QuerySettings(common=CommonSettings.from_env({"GNOMON_DATA_DIR": str(tmp_path)}), port=0)
    deps = QueryDeps(store=store, registry=registry, control=control, telemetry=telemetry, clock=lambda: NOW)
    with running_query_server(settings, deps) as running:
        yield f"127.0.0.1:{running.port}", token
    telemetry.shutdown()
    registry.close()
    store.close()
    control.close()


def gnomon_query(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="gnomon")
    query_cmd.register(parser.add_subparsers())
    args = parser.parse_args(["query", *argv])
    code: int = args.handler(args)
    return code


def test_breakdown_table(endpoint: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    address, token = endpoint
    code = gnomon_query(
        "--token", token, "--endpoint", address, "breakdown", "pagePath", "--from", "2026-02-22", "--to",
        "2026-02-28", "--metrics", "screenPageViews,sessions", "--filter", "pagePath^=/blog", "--limit", "1",
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "Breakdown by pagePath" in out
    assert "/blog/a" in out or "/blog/b" in out
    assert "/home" not in out
    assert "1 of 2 rows" in out
    assert "screenPageViews" in out


def test_timeseries_totals_and_json(endpoint: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    address, token = endpoint
    common = ("--token", token, "--endpoint", address)
    assert (
        gnomon_query(*common, "timeseries", "--from", "2026-02-22", "--to", "2026-02-28", "--metrics", "sessions") == 0
    )
    out = capsys.readouterr().out
    assert "20260222" in out
    assert "20260228" in out
    assert "Total" in out
    assert "Europe/Berlin" in out
    assert gnomon_query(*common, "totals", "--from", "2026-02-22", "--to", "2026-02-28", "--compare", "previous",
                        "--metrics", "sessions,totalRevenue,totalUsers") == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "91" in out  # 10 + 11 + ... + 16 sessions
    assert "86.38" in out  # 7 x 12.34 EUR
    assert "new" in out  # nothing in the previous period
    assert gnomon_query("--json", *common, "totals", "--from", "2026-02-22", "--to", "2026-02-22", "--metrics",
                        "sessions") == 0  # fmt: skip
    answer = json.loads(capsys.readouterr().out)
    assert answer["totals"]["metricValues"] == [{"intValue": "10"}]


def test_metadata_and_errors(endpoint: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    address, token = endpoint
    assert gnomon_query("--token", token, "--endpoint", address, "metadata") == 0
    out = capsys.readouterr().out
    assert "screenPageViews" in out
    assert "sessionDefaultChannelGroup" in out
    assert gnomon_query("--token", token, "--endpoint", address, "totals", "--metrics", "pageviews") == 1
    out = capsys.readouterr().out
    assert "INVALID_ARGUMENT" in out
    assert "screenPageViews" in out
    assert gnomon_query("--token", "gn_r_not_a_real_token_at_all", "--endpoint", address, "totals") == 1
    assert "UNAUTHENTICATED" in capsys.readouterr().out
    assert gnomon_query("--token", token, "--endpoint", address, "realtime") == 1  # no event store configured
    assert "UNAVAILABLE" in capsys.readouterr().out
