"""Reprocessing end to end, on the embedded engines and on real Pulsar + Cassandra.

Version 1 of the derivation is deliberately wrong in these tests (tablets counted as desktops, see
`reprocess_rules`, loaded only by the processes under test); version 2 is the shipped derivation. The aggregator
writes v1; `gnomon reprocess` rebuilds one local day as v2 from the log and flips it. Inside that day the rows
queries read equal the independent ground truth (DuckDB over the raw events); outside nothing changed; rollback
restores v1 exactly. Queries issued during the whole job see all-v1 or all-v2, never a mix; a job killed with
SIGKILL resumes exactly; events ingested by the live aggregator during the job are counted once.
"""

from __future__ import annotations

import random
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from aggregator.loop_days import day_bounds
from aggregator.reprocess.state import open_job_store
from gnomon.control import KeyKind
from gnomon.eventlog import Stream, partition_for_key
from gnomon.rollups import RollupStore, VersionRegistry, open_version_registry, sketch_estimate
from gnomon.telemetry import TelemetrySettings, setup_telemetry
from gnomon.v1 import query_pb2 as q
from query_svc.server import QueryDeps
from query_svc.settings import QuerySettings
from query_svc.testing import bearer, running_query_server
from tests.integration.test_aggregator_harness import (
    MERCHANTS,
    REPO,
    START,
    AggEnv,
    RunResult,
    agg_env_fixture,  # noqa: F401 - the agg_env fixture
    batches,
    expected_truth,
    kill_group,
    snapshot,
    traffic,
)

PLUGIN = {"GNOMON_DERIVATION_PLUGINS": "tests.integration.reprocess_rules"}
IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5"
    " Mobile/15E148 Safari/604.1"
)
FIXED = date(2026, 3, 8)  # the day every test reprocesses
OTHER = date(2026, 3, 7)  # a day no test reprocesses
NAMES = ("events", "pageviews", "sessions", "engaged_sessions", "bounces", "session_duration_ms", "revenue_micros",
         "key_events")  # fmt: skip


def tablet_traffic(seed: int, *, prefix: str = "e", n: int = 400, start: datetime = START) -> list[bytes]:
    """Every merchant's events over ~30 h (local days 7 and 8 March), one in four from an iPad."""
    out: list[bytes] = []
    for i, (merchant_id, (_, currency)) in enumerate(MERCHANTS.items()):
        events = traffic(
            merchant_id, currency, n=n, start=start, span=timedelta(hours=30), seed=seed + i, prefix=prefix
        )
        for j, e in enumerate(events):
            if j % 4 == 1:
                e.user_agent = IPAD
        out.extend(batches(merchant_id, events, 50))
    return out


def gnomon(agg_env: AggEnv, *args: str, timeout: float = 300) -> RunResult:
    proc = subprocess.run(
        [sys.executable, "-m", "gnomon.cli.main", *args],
        env={**agg_env.env, **PLUGIN},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return RunResult(proc.returncode, proc.stdout, proc.stderr)


def reprocess_args(log_from: datetime, *extra: str) -> list[str]:
    return [
        "reprocess", "--from", str(FIXED), "--to", str(FIXED), "--version", "2", "--why", "tablets were desktops",
        "--who", "test", "--log-from", log_from.isoformat(),
        "--log-to", (datetime.now(UTC) + timedelta(hours=1)).isoformat(), *extra,
    ]  # fmt: skip


def day_rows(store: RollupStore, version: int, day: date) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for merchant_id, (zone, _) in MERCHANTS.items():
        out.update(snapshot(store, merchant_id, zone, [day], version))
    return out


def active_rows(store: RollupStore, registry: VersionRegistry, day: date) -> dict[Any, Any]:
    """What queries read for `day`: each merchant's rows of the version active there."""
    out: dict[Any, Any] = {}
    for merchant_id, (zone, _) in MERCHANTS.items():
        version = registry.active_version(merchant_id, day_bounds(day, zone)[0])
        out.update(snapshot(store, merchant_id, zone, [day], version))
    return out


def assert_day_matches_truth(rows: dict[Any, Any], payloads: Sequence[bytes], day: date) -> None:
    """The day's rows equal the ground truth: counters exactly, users within the sketch's error."""
    for merchant_id, (zone, currency) in MERCHANTS.items():
        start, end = day_bounds(day, zone)
        lo, hi = int(start.timestamp() * 1e6), int(end.timestamp() * 1e6)
        truth = {k: v for k, v in expected_truth(payloads, merchant_id, zone, currency).items() if lo <= k[2] < hi}
        got = {(k[1], k[2], k[3], k[4]): v for k, v in rows.items() if k[0] == merchant_id}
        assert set(got) == set(truth), (merchant_id, sorted(set(got) ^ set(truth))[:5])
        for key, want in truth.items():
            counters, users, _, provisional = got[key]
            assert dict(zip(NAMES, counters, strict=True)) == {n: want[n] for n in NAMES}, (merchant_id, key)
            assert abs(sketch_estimate(users) - want["users"]) <= max(1.0, 0.03 * want["users"]), (merchant_id, key)
            assert not provisional


def devices(rows: dict[Any, Any]) -> set[str]:
    return {k[4][0] for k in rows if k[1] == "device"}


@pytest.fixture
def registry(agg_env: AggEnv) -> Iterator[VersionRegistry]:
    reg = open_version_registry(agg_env.common)
    yield reg
    reg.close()


def ingest_v1(agg_env: AggEnv, payloads: Sequence[bytes]) -> datetime:
    """Publish and aggregate with the buggy v1; returns a publish-time lower bound for the log window."""
    agg_env.add_merchants()
    published_from = datetime.now(UTC) - timedelta(minutes=1)
    agg_env.publish(payloads)
    result = agg_env.run(extra_env=PLUGIN)
    assert result.returncode == 0, result.stderr[-3000:]
    return published_from


def test_reprocess_fixes_exactly_the_range_and_rollback_restores_v1(agg_env: AggEnv, registry: VersionRegistry) -> None:
    payloads = tablet_traffic(1)
    log_from = ingest_v1(agg_env, payloads)
    store = agg_env.store()
    v1_fixed, v1_other = day_rows(store, 1, FIXED), day_rows(store, 1, OTHER)
    assert "tablet" not in devices(v1_fixed) and "desktop" in devices(v1_fixed)  # the bug, as queries saw it
    with pytest.raises(AssertionError):
        assert_day_matches_truth(v1_fixed, payloads, FIXED)

    if agg_env.mode == "real":  # history beyond the bookies: the job must read offloaded ledgers
        assert offload_events(agg_env) > 0

    dry = gnomon(agg_env, *reprocess_args(log_from, "--dry-run"))
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "dry run: nothing written" in dry.stdout and "device" in dry.stdout
    assert day_rows(store, 2, FIXED) == {}
    assert active_rows(store, registry, FIXED) == v1_fixed

    run = gnomon(agg_env, *reprocess_args(log_from))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "what changed" in run.stdout and "tablet" in run.stdout, run.stdout
    assert "flipped" in run.stdout
    fixed = active_rows(store, registry, FIXED)
    assert "tablet" in devices(fixed)
    assert_day_matches_truth(fixed, payloads, FIXED)
    assert active_rows(store, registry, OTHER) == v1_other  # outside the range: nothing changed
    assert day_rows(store, 2, OTHER) == {}
    assert day_rows(store, 1, FIXED) == v1_fixed  # v1 is kept beside v2

    again = gnomon(agg_env, *reprocess_args(log_from))  # the same command again: the job is finished
    assert again.returncode == 0 and "already finished" in again.stdout, again.stdout + again.stderr

    job_id = job_of(run.stdout)
    assert job_id in open_job_store_ids(agg_env)
    status = gnomon(agg_env, "reprocess", "status")
    assert status.returncode == 0 and job_id in status.stdout and "flipped" in status.stdout
    rollback = gnomon(agg_env, "reprocess", "rollback", job_id)
    assert rollback.returncode == 0, rollback.stdout + rollback.stderr
    assert active_rows(store, registry, FIXED) == v1_fixed
    assert active_rows(store, registry, OTHER) == v1_other
    history = registry.history("shop-kol")
    assert [f.version for f in history] == [2, 1] and "rollback" in history[-1].why


def offload_events(agg_env: AggEnv) -> int:
    """Offload every ledger of the events partitions that hold data to Pulsar's filesystem tiered storage (the
    reads then come from the offloaded copies: Pulsar reads tiered storage first). Returns the ledgers offloaded."""
    from gnomon.eventlog.pulsar_admin import PulsarAdmin

    admin = PulsarAdmin(agg_env.common.pulsar.admin_url)
    base = f"{agg_env.common.pulsar.namespace}/{Stream.EVENTS.value}{agg_env.topic_suffix}"
    partitions = agg_env.log.partition_count(Stream.EVENTS)
    used = sorted({partition_for_key(m, partitions) for m in MERCHANTS})
    return sum(len(admin.offload_partition(f"{base}-partition-{p}", timeout_s=90).offloaded_ledgers) for p in used)


def job_of(stdout: str) -> str:
    found = re.search(r"reprocess job (rp-[0-9a-z-]+)", stdout)
    assert found, stdout
    return found.group(1)


def open_job_store_ids(agg_env: AggEnv) -> list[str]:
    jobs = open_job_store(agg_env.common)
    try:
        return jobs.jobs()
    finally:
        jobs.close()


@contextmanager
def query_server(agg_env: AggEnv, registry: VersionRegistry) -> Iterator[Any]:
    settings = QuerySettings(common=agg_env.common, port=0)
    deps = QueryDeps(agg_env.store(), registry, agg_env.control, setup_telemetry(TelemetrySettings()))
    with running_query_server(settings, deps) as server:
        yield server


def test_queries_during_the_job_see_all_v1_or_all_v2(agg_env: AggEnv, registry: VersionRegistry) -> None:
    payloads = tablet_traffic(2)
    log_from = ingest_v1(agg_env, payloads)
    token = agg_env.control.create_key("shop-ny", KeyKind.READ, "test").secret
    request = q.BreakdownRequest(
        merchant_id="shop-ny",
        date_range=q.DateRange(start_date=str(FIXED), end_date=str(FIXED)),
        dimensions=["deviceCategory"],
        metrics=["eventCount", "screenPageViews", "sessions", "totalUsers"],
        order_bys=[q.OrderBy(dimension_name="deviceCategory")],
    )
    with query_server(agg_env, registry) as server:

        def answer() -> list[tuple[str, ...]]:
            reply = server.stub.Breakdown(request, metadata=bearer(token), timeout=30)
            return [(*r.dimension_values, *(str(v) for v in r.metric_values)) for r in reply.rows]

        v1 = answer()
        answers: list[tuple[float, list[tuple[str, ...]]]] = []  # (when the query was sent, its answer)
        errors: list[BaseException] = []
        stop = threading.Event()

        def ask() -> None:
            while not stop.is_set():
                sent = time.monotonic()
                try:
                    answers.append((sent, answer()))
                except BaseException as exc:  # reported below
                    errors.append(exc)

        asker = threading.Thread(target=ask)
        asker.start()
        try:
            run = gnomon(agg_env, *reprocess_args(log_from))
        finally:
            finished = time.monotonic()
            deadline = finished + 60  # until a query sent after the job's exit has answered
            while asker.is_alive() and not any(t > finished for t, _ in answers) and time.monotonic() < deadline:
                time.sleep(0.05)
            stop.set()
            asker.join()
        assert run.returncode == 0, run.stdout + run.stderr
        v2 = answer()
    assert v1 != v2 and "tablet" in {a[0] for a in v2}
    assert errors == []
    assert len(answers) > 20
    assert {tuple(a) for _, a in answers} <= {tuple(v1), tuple(v2)}, "an answer mixed versions"
    after = [a for t, a in answers if t > finished]
    assert after and all(a == v2 for a in after)  # once the job has flipped, never v1 again


def test_kill_9_then_resume_is_exact_and_live_events_count_once(agg_env: AggEnv, registry: VersionRegistry) -> None:
    payloads = tablet_traffic(3)
    log_from = ingest_v1(agg_env, payloads)
    live = agg_env.start("--flush-interval", "0.3")  # the live aggregator keeps running during the job
    try:
        env = {**agg_env.env, **PLUGIN}
        argv = [sys.executable, "-m", "gnomon.cli.main", *reprocess_args(log_from)]
        job = subprocess.Popen(argv, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)  # fmt: skip
        # events of the reprocessed day arriving while the job runs (late ones and new ones, some duplicates)
        late = tablet_traffic(4, prefix="live", n=60, start=datetime(2026, 3, 8, 6, 0, tzinfo=UTC))
        agg_env.publish(late[: len(late) // 2])
        time.sleep(random.Random(7).uniform(3.0, 8.0))
        kill_group(job)  # SIGKILL the job and its Dask workers, wherever it was
        jobs = open_job_store(agg_env.common)
        try:
            phases = [jobs.get(j, "phase") for j in jobs.jobs()]
        finally:
            jobs.close()
        assert all(p is None or p["phase"] != "flipped" for p in phases), "the job finished before the kill"
        agg_env.publish(late[len(late) // 2 :] + late[:3])
        resumed = gnomon(agg_env, *reprocess_args(log_from))
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        more = tablet_traffic(5, prefix="after", n=30, start=datetime(2026, 3, 8, 12, 0, tzinfo=UTC))
        agg_env.publish(more)  # after the flip: the live aggregator keeps v2 current
        everything = [*payloads, *late, *more]
        store = agg_env.store()
        deadline = time.monotonic() + 120
        while True:
            try:
                assert_day_matches_truth(active_rows(store, registry, FIXED), everything, FIXED)
                break
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
    finally:
        live.send_signal(2)
        try:
            live.wait(60)
        finally:
            kill_group(live)
    assert "tablet" in devices(active_rows(store, registry, FIXED))
    assert job_of(resumed.stdout) in gnomon(agg_env, "reprocess", "status").stdout


def test_bad_requests_are_refused_with_a_reason(agg_env: AggEnv) -> None:
    agg_env.add_merchants()
    no_why = gnomon(agg_env, "reprocess", "--from", "2026-03-08", "--to", "2026-03-08")
    assert no_why.returncode == 2 and "--why is required" in no_why.stderr
    backwards = gnomon(agg_env, "reprocess", "--from", "2026-03-08", "--to", "2026-03-01", "--why", "x")
    assert backwards.returncode == 2 and "before --from" in backwards.stderr
    unknown = gnomon(agg_env, *reprocess_args(START, "--merchant", "nobody"))
    assert unknown.returncode == 2 and "unknown merchant 'nobody'" in unknown.stderr
    active = gnomon(agg_env, "reprocess", "--from", "2026-03-08", "--to", "2026-03-08", "--version", "1", "--why", "x")
    assert active.returncode == 2 and "already active" in active.stderr
    rollback = gnomon(agg_env, "reprocess", "rollback", "rp-nothing")
    assert rollback.returncode == 2 and "no reprocess job" in rollback.stderr
