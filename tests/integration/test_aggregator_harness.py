"""Shared harness of the aggregator integration tests (and checks of the harness itself).

`AggEnv` is one isolated deployment: embedded (a temporary GNOMON_DATA_DIR) or real engines (Pulsar topics with a
random suffix, a fresh Cassandra keyspace). Tests publish `gnomon.v1.LoggedBatch` records straight to the event
log (what the collector writes), run the aggregator as a separate process (`python -m gnomon.cli.aggregator_cmd`,
optionally with the GNOMON_AGGREGATOR_CRASH_AT test hook), and compare the rollup store with
`aggregator.ground_truth` (DuckDB SQL over the same events, sharing no code with the aggregator).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from aggregator.cubes import DEFAULT_CUBES
from aggregator.decode import decode_batches
from aggregator.derive import derive
from aggregator.ground_truth import as_dict, ground_truth
from aggregator.loop_days import day_bounds
from gnomon.control import ControlStore, open_control_store
from gnomon.eventlog import EventLog, Stream
from gnomon.rollups import Grain, RollupRow, RollupStore, open_rollup_store, sketch_estimate
from gnomon.scratch import drop_scratch_deployment
from gnomon.settings import CommonSettings
from gnomon.v1 import event_pb2
from tests.conftest import RealEngines

REPO = Path(__file__).resolve().parents[2]
AGGREGATOR = [sys.executable, "-m", "gnomon.cli.aggregator_cmd"]
KEY_EVENTS = frozenset({"purchase"})
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko)"
    " Version/17.5 Mobile/15E148 Safari/604.1"
)
BOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
MERCHANTS = {"shop-utc": ("UTC", "EUR"), "shop-kol": ("Asia/Kolkata", "INR"), "shop-ny": ("America/New_York", "USD")}
# 2026-03-08 is the US spring-forward day (New York has a 23-hour day); Kolkata hours start at hh:30 UTC.
START = datetime(2026, 3, 7, 20, 0, tzinfo=UTC)


@dataclass
class RunResult:
    returncode: int
    stdout: str
    stderr: str


@dataclass
class AggEnv:
    """One isolated deployment (see the module docstring). Close with `close()`."""

    mode: str
    common: CommonSettings
    env: dict[str, str]
    log: EventLog
    control: ControlStore
    cleanup: list[Any] = field(default_factory=list)
    published: list[bytes] = field(default_factory=list)
    topic_suffix: str = ""

    def add_merchants(self, merchants: dict[str, tuple[str, str]] = MERCHANTS) -> None:
        for merchant_id, (zone, currency) in merchants.items():
            self.control.create_merchant(merchant_id, zone, currency, merchant_id)

    def publish(self, payloads: Sequence[bytes]) -> None:
        """Publish LoggedBatch payloads in order (keyed by merchant) and wait until every one is durable."""
        futures = [
            self.log.publish(Stream.EVENTS, event_pb2.LoggedBatch.FromString(p).merchant_id, p) for p in payloads
        ]
        for future in futures:
            future.result(timeout=60)
        self.published.extend(payloads)

    def run(
        self, *args: str, crash_at: str | None = None, timeout: float = 300, extra_env: dict[str, str] | None = None
    ) -> RunResult:
        """Run the aggregator process (default `--once`) until it exits; kill its whole process group after
        (Dask workers orphaned by a SIGKILL included)."""
        env = {**self.env, **(extra_env or {})}
        if crash_at:
            env["GNOMON_AGGREGATOR_CRASH_AT"] = crash_at
        argv = [*AGGREGATOR, *(args or ("--once",))]
        proc = subprocess.Popen(
            argv, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        try:
            out, err = proc.communicate(timeout=timeout)
        finally:
            kill_group(proc)
        return RunResult(proc.returncode, out, err)

    def start(self, *args: str) -> subprocess.Popen[str]:
        """Start a long-running aggregator process (no --once); the caller stops or kills it (`kill_group`)."""
        return subprocess.Popen(
            [*AGGREGATOR, *args],
            env=self.env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    def store(self) -> RollupStore:
        store = open_rollup_store(self.common)
        self.cleanup.append(store.close)
        return store

    def close(self) -> None:
        for fn in reversed(self.cleanup):
            try:
                fn()
            except Exception as exc:  # cleanup must go on
                print(f"cleanup failed: {exc}")


def kill_group(proc: subprocess.Popen[str]) -> None:
    """SIGKILL the process group of `proc` (started with start_new_session) and reap `proc`."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def _embedded(tmp: Path) -> AggEnv:
    env = {
        **os.environ,
        "GNOMON_ENGINES": "embedded",
        "GNOMON_DATA_DIR": str(tmp),
        "GNOMON_DASK_WORKERS": "2",
        "GNOMON_AGGREGATOR_FLUSH_MS": "300",
        "GNOMON_OTEL_EXPORTER": "none",
    }
    env.pop("GNOMON_DASK_SCHEDULER", None)
    common = CommonSettings.from_env(env)
    from gnomon.eventlog import open_event_log

    log = open_event_log(common, producer_name="test")
    control = open_control_store(common)
    agg = AggEnv("embedded", common, env, log, control)
    agg.cleanup += [log.close, control.close]
    return agg


def _real(engines: RealEngines) -> AggEnv:
    from gnomon.eventlog.pulsar_log import PulsarEventLog

    token = uuid.uuid4().hex[:10]
    suffix, keyspace = f"-agg-{token}", f"gnomon_agg_{token}"
    env = {
        **os.environ,
        "GNOMON_ENGINES": "real",
        "GNOMON_CQL_KEYSPACE": keyspace,
        "GNOMON_CQL_REPLICATION_FACTOR": "1",
        "GNOMON_AGGREGATOR_TOPIC_SUFFIX": suffix,
        "GNOMON_DASK_WORKERS": "2",
        "GNOMON_AGGREGATOR_FLUSH_MS": "300",
        "GNOMON_OTEL_EXPORTER": "none",
    }
    env.pop("GNOMON_DASK_SCHEDULER", None)
    common = CommonSettings.from_env(env)
    log = PulsarEventLog(common.pulsar, producer_name=f"test{suffix}", topic_suffix=suffix)
    control = open_control_store(common)
    agg = AggEnv("real", common, env, log, control, topic_suffix=suffix)
    agg.cleanup += [partial(drop_scratch_deployment, common, suffix), log.close, control.close]
    return agg


@pytest.fixture(name="agg_env", params=["embedded", pytest.param("real", marks=pytest.mark.engines)])
def agg_env_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AggEnv]:
    """An isolated deployment per test, embedded and real (import `agg_env_fixture` to use `agg_env`)."""
    agg = _embedded(tmp_path) if request.param == "embedded" else _real(request.getfixturevalue("real_engines"))
    try:
        yield agg
    finally:
        agg.close()


# ---- events ---------------------------------------------------------------------------------------------------


def event(
    event_id: str,
    at: datetime,
    *,
    name: str = "page_view",
    client: str = "c1",
    page: str = "/",
    ua: str = CHROME,
    revenue: int = 0,
    currency: str = "",
    source: str = "",
) -> event_pb2.Event:
    e = event_pb2.Event(event_id=event_id, name=name, client_id=client, user_agent=ua, ip="203.0.113.0")
    e.event_time.FromDatetime(at)
    e.page.url = f"https://shop.example{page}"
    if source:
        e.utm.source, e.utm.medium = source, "cpc"
    if revenue or currency:
        e.revenue.micros, e.revenue.currency = revenue, currency
    return e


def logged(merchant_id: str, events: Sequence[event_pb2.Event], received: datetime) -> bytes:
    b = event_pb2.LoggedBatch(merchant_id=merchant_id, collector_id="test")
    b.received_time.FromDatetime(received)
    b.events.extend(events)
    return b.SerializeToString()


def traffic(
    merchant_id: str, currency: str, *, n: int, start: datetime, span: timedelta, seed: int, prefix: str = "e"
) -> list[event_pb2.Event]:
    """`n` deterministic events spread over [start, start + span): page views, purchases (some in a foreign
    currency), a bot, several clients, pages and sources."""
    out = []
    step = span / n
    for i in range(n):
        k = (i * 7919 + seed) % 1000
        at = start + step * i + timedelta(microseconds=k)
        kind = k % 10
        name = "purchase" if kind == 0 else ("first_visit" if kind == 1 else "page_view")
        out.append(
            event(
                f"{prefix}{seed}-{i}",
                at,
                name=name,
                client=f"c{k % 17}",
                page=f"/p/{k % 5}",
                ua=BOT if k % 50 == 3 else (IPHONE if k % 3 else CHROME),
                revenue=1_000_000 + k if kind == 0 else 0,
                currency=(currency if k % 4 else "JPY") if kind == 0 else "",
                source="google" if k % 6 == 0 else "",
            )
        )
    return out


def batches(
    merchant_id: str, events: Sequence[event_pb2.Event], size: int, *, received: datetime | None = None
) -> list[bytes]:
    """Events in batches of `size`; each batch is received a few seconds after its newest event."""
    out = []
    for i in range(0, len(events), size):
        chunk = events[i : i + size]
        newest = max(e.event_time.ToDatetime(tzinfo=UTC) for e in chunk)
        out.append(logged(merchant_id, chunk, received or newest + timedelta(seconds=5)))
    return out


def standard_dataset() -> list[bytes]:
    """~1,500 events of three merchants over two local days, with duplicates in a batch and across batches and an
    unknown merchant; batches interleaved across merchants."""
    per_merchant: list[list[bytes]] = []
    for seed, (merchant_id, (_, currency)) in enumerate(MERCHANTS.items()):
        events = traffic(merchant_id, currency, n=500, start=START, span=timedelta(hours=30), seed=seed)
        events.insert(10, events[3])  # the same event twice in one batch
        parts = batches(merchant_id, events, 60)
        parts.append(logged(merchant_id, events[100:140], received=START + timedelta(hours=31)))  # re-sent
        per_merchant.append(parts)
    per_merchant.append(
        batches("shop-unknown", traffic("x", "EUR", n=20, start=START, span=timedelta(hours=1), seed=9), 10)
    )
    out: list[bytes] = []
    for i in range(max(len(p) for p in per_merchant)):
        out.extend(p[i] for p in per_merchant if i < len(p))
    return out


# ---- comparing with the ground truth ----------------------------------------------------------------------------

Snapshot = dict[tuple[str, str, str, int, tuple[str, ...]], tuple[tuple[int, ...], bytes, bytes, bool]]


def days_of(payloads: Sequence[bytes], zone: str, merchant_id: str) -> list[date]:
    frame = decode_batches(list(payloads))
    frame = frame[frame["merchant_id"] == merchant_id]
    times = pd.to_datetime(frame["event_time_us"], unit="us", utc=True).dt.tz_convert(zone)
    return sorted(set(times.dt.date))


def snapshot(store: RollupStore, merchant_id: str, zone: str, days: Sequence[date], version: int = 1) -> Snapshot:
    """Every stored row of the merchant's days (all cubes, both grains), without computed_at."""
    out: Snapshot = {}
    for day in days:
        start, end = day_bounds(day, zone)
        for cube in DEFAULT_CUBES:
            for grain in (Grain.HOUR, Grain.DAY):
                for row in store.read(merchant_id, cube.name, grain, start, end, version):
                    out[_key(row)] = _value(row)
    return out


def _key(row: RollupRow) -> tuple[str, str, str, int, tuple[str, ...]]:
    k = row.key
    return (k.merchant_id, k.cube, k.grain.value, int(k.window_start.timestamp() * 1_000_000), k.dims)


def _value(row: RollupRow) -> tuple[tuple[int, ...], bytes, bytes, bool]:
    m = row.metrics
    counters = (
        m.events, m.pageviews, m.sessions, m.engaged_sessions, m.bounces, m.session_duration_ms, m.revenue_micros,
        m.key_events,
    )  # fmt: skip
    return counters, m.users, m.new_users, row.provisional


def expected_truth(payloads: Sequence[bytes], merchant_id: str, zone: str, currency: str) -> dict[Any, dict[str, int]]:
    """Ground truth of one merchant: every distinct (event_id) of the payloads, the copy received last."""
    frame = decode_batches(list(payloads))
    frame = frame[frame["merchant_id"] == merchant_id]
    frame = frame.sort_values("received_time_us", kind="stable").drop_duplicates("event_id", keep="last")
    return as_dict(
        ground_truth(derive(frame.reset_index(drop=True)), zone=zone, key_events=KEY_EVENTS, currency=currency,
                     cubes=DEFAULT_CUBES)
    )  # fmt: skip


def assert_matches_truth(store: RollupStore, payloads: Sequence[bytes], *, final: bool = True) -> int:
    """Every merchant's stored rows equal the ground truth (counters exactly, users within HLL error; no extra or
    missing row; `final`: no row provisional). Returns the number of rows compared."""
    compared = 0
    for merchant_id, (zone, currency) in MERCHANTS.items():
        truth = expected_truth(payloads, merchant_id, zone, currency)
        if not truth:
            continue
        stored = snapshot(store, merchant_id, zone, days_of(payloads, zone, merchant_id))
        got = {(k[1], k[2], k[3], k[4]): v for k, v in stored.items()}
        assert set(got) == set(truth), (
            f"{merchant_id}: missing {sorted(set(truth) - set(got))[:5]}, extra {sorted(set(got) - set(truth))[:5]}"
        )
        for key, want in truth.items():
            counters, users, new_users, provisional = got[key]
            names = ("events", "pageviews", "sessions", "engaged_sessions", "bounces", "session_duration_ms",
                     "revenue_micros", "key_events")  # fmt: skip
            assert dict(zip(names, counters, strict=True)) == {n: want[n] for n in names}, (merchant_id, key)
            assert abs(sketch_estimate(users) - want["users"]) <= max(1.0, 0.03 * want["users"]), (merchant_id, key)
            assert abs(sketch_estimate(new_users) - want["new_users"]) <= max(1.0, 0.03 * want["new_users"])
            if final:
                assert not provisional, (merchant_id, key)
        compared += len(truth)
    return compared


def full_snapshot(store: RollupStore, payloads: Sequence[bytes]) -> Snapshot:
    out: Snapshot = {}
    for merchant_id, (zone, _) in MERCHANTS.items():
        out.update(snapshot(store, merchant_id, zone, days_of(payloads, zone, merchant_id)))
    return out


# ---- checks of the harness itself ------------------------------------------------------------------------------


def test_standard_dataset_has_duplicates_bots_and_an_unknown_merchant() -> None:
    frame = decode_batches(standard_dataset())
    assert frame.duplicated(["merchant_id", "event_id"]).sum() == 3 * 41
    assert (frame["merchant_id"] == "shop-unknown").sum() == 20
    assert frame["user_agent"].eq(BOT).any()
    assert set(days_of(standard_dataset(), "America/New_York", "shop-ny")) == {date(2026, 3, 7), date(2026, 3, 8)}


def test_ground_truth_of_the_dataset_counts_distinct_non_bot_events() -> None:
    payloads = standard_dataset()
    truth = expected_truth(payloads, "shop-utc", "UTC", "EUR")
    total_events = sum(v["events"] for (cube, grain, _, _), v in truth.items() if cube == "total" and grain == "day")
    frame = decode_batches(payloads)
    mine = frame[frame["merchant_id"] == "shop-utc"].drop_duplicates("event_id")
    assert total_events == int((mine["user_agent"] != BOT).sum())
