"""End-to-end freshness: event acknowledged by the collector -> visible in the rollup store. Prints p50/p95.

    .venv/bin/python -m bench.freshness                    # embedded engines (SQLite log and stores)
    .venv/bin/python -m bench.freshness --engines real     # Pulsar + Cassandra (`gnomon engines up` first)

Pipeline, all real: a collector (`collector_svc.create_server`, in this process, port 0) -> the event log -> the
aggregator (`python -m gnomon.cli.aggregator_cmd`, its own process with its Dask LocalCluster) -> the rollup store.
Every second a canary event (its own page path) is sent to a canary merchant; `ack` is when Collect returned OK.
A poller reads the rollup store (`RollupStore.read` of the canary's hour window, cube `page`, its path) every
100 ms; `visible` is when the row is there. Light background traffic (three merchants in UTC, Asia/Kolkata and
America/New_York, ~40 events/s) keeps the aggregator busy with several merchant-days. Target (DESIGN.md):
p95 <= 60 s on both engine modes. Real mode uses a fresh keyspace and topic suffix, removed afterwards.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import grpc

from bench.timing import interpolated_percentile
from collector_svc.server import CollectorDeps, create_server
from collector_svc.settings import CollectorSettings
from gnomon.control import KeyKind, open_control_store
from gnomon.eventlog import EventLog
from gnomon.rollups import Grain, RollupStore, open_rollup_store
from gnomon.settings import CommonSettings
from gnomon.telemetry import TelemetrySettings, setup_telemetry
from gnomon.v1 import collector_pb2, event_pb2

ZONES = {"bg-utc": "UTC", "bg-kol": "Asia/Kolkata", "bg-ny": "America/New_York"}
UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"


@dataclass
class Canary:
    index: int
    path: str
    window: datetime
    acked: float
    visible: float | None = None


@contextmanager
def engines(mode: str, keep: bool) -> Iterator[tuple[dict[str, str], CommonSettings, EventLog]]:
    """(env for the aggregator process, settings, this process's event log) of an isolated deployment."""
    token = uuid.uuid4().hex[:8]
    base = {k: v for k, v in os.environ.items() if k != "GNOMON_DASK_SCHEDULER"}
    with ExitStack() as stack:
        if mode == "embedded":
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="gnomon-freshness-"))
            env = {**base, "GNOMON_ENGINES": "embedded", "GNOMON_DATA_DIR": tmp}
            common = CommonSettings.from_env(env)
            from gnomon.eventlog import open_event_log

            log = open_event_log(common, producer_name="freshness-collector")
        else:
            from gnomon.eventlog.pulsar_log import PulsarEventLog
            from gnomon.scratch import drop_scratch_deployment

            suffix, keyspace = f"-fresh-{token}", f"gnomon_fresh_{token}"
            env = {
                **base,
                "GNOMON_ENGINES": "real",
                "GNOMON_CQL_KEYSPACE": keyspace,
                "GNOMON_AGGREGATOR_TOPIC_SUFFIX": suffix,
            }
            common = CommonSettings.from_env(env)
            log = PulsarEventLog(common.pulsar, producer_name=f"freshness{suffix}", topic_suffix=suffix)
            if not keep:
                stack.callback(drop_scratch_deployment, common, suffix)
        stack.callback(log.close)
        yield env, common, log


def canary_batch(index: int, now: datetime) -> tuple[bytes, str]:
    path = f"/canary/{index}"
    e = event_pb2.Event(event_id=f"canary-{uuid.uuid4().hex}", name="page_view", client_id="canary-client")
    e.event_time.FromDatetime(now)
    e.page.url = f"https://canary.example{path}"
    e.user_agent, e.ip = UA, "203.0.113.9"
    return collector_pb2.EventBatch(events=[e]).SerializeToString(), path


def background_batch(n: int, seq: int) -> bytes:
    now = datetime.now(UTC)
    events = []
    for i in range(n):
        e = event_pb2.Event(
            event_id=f"bg-{seq}-{i}-{uuid.uuid4().hex[:8]}",
            name="purchase" if i % 10 == 0 else "page_view",
            client_id=f"client-{(seq * 7 + i) % 50}",
        )
        e.event_time.FromDatetime(now - timedelta(milliseconds=i))
        e.page.url = f"https://bg.example/p/{i % 7}"
        e.user_agent, e.ip = UA, f"198.51.100.{i % 200}"
        events.append(e)
    return collector_pb2.EventBatch(events=events).SerializeToString()


def run(mode: str, seconds: float, flush: float, keep: bool) -> int:
    with engines(mode, keep) as (env, common, log), ExitStack() as stack:
        control = open_control_store(common)
        stack.callback(control.close)
        keys: dict[str, str] = {}
        for merchant_id, zone in {"canary": "UTC", **ZONES}.items():
            control.create_merchant(merchant_id, zone, "USD", f"{merchant_id}-{uuid.uuid4().hex[:6]}")
        for merchant in control.list_merchants():
            keys[merchant.merchant_id] = control.create_key(merchant.merchant_id, KeyKind.WRITE, "bench").secret
        canary_id = next(m for m in keys if m.startswith("canary-"))
        settings = replace(
            CollectorSettings(common=common), port=0, rate_limit_events_per_s=0.0, max_in_flight_batches=64
        )
        telemetry = setup_telemetry(TelemetrySettings(service_name="freshness-collector"))
        server, port = create_server(settings, CollectorDeps(event_log=log, control=control, telemetry=telemetry))
        server.start()
        stack.callback(lambda: server.stop(1).wait(10))
        proc = subprocess.Popen(
            [sys.executable, "-m", "gnomon.cli.aggregator_cmd", "--flush-interval", str(flush)],
            env={**env, "GNOMON_OTEL_EXPORTER": "none"},
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        stack.callback(proc.wait, 60)
        stack.callback(proc.terminate)
        assert proc.stdout is not None
        print(f"[{mode}] collector on 127.0.0.1:{port}; aggregator: {proc.stdout.readline().strip()}", flush=True)
        store = open_rollup_store(common)
        stack.callback(store.close)
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        stack.callback(channel.close)
        collect: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
            "/gnomon.v1.CollectorService/Collect", request_serializer=None, response_deserializer=None
        )
        canaries: list[Canary] = []
        lock = threading.Lock()
        done = threading.Event()
        threads = [
            threading.Thread(target=_background, args=(collect, keys, done), daemon=True),
            threading.Thread(target=_poll, args=(store, canary_id, canaries, lock, done), daemon=True),
        ]
        for t in threads:
            t.start()
        started = time.monotonic()
        index = 0
        while time.monotonic() - started < seconds:
            now = datetime.now(UTC)
            payload, path = canary_batch(index, now)
            response = collector_pb2.CollectResponse.FromString(
                collect(payload, metadata=(("authorization", f"Bearer {keys[canary_id]}"),), timeout=30)
            )
            if response.accepted == 1:
                with lock:
                    window = now.replace(minute=0, second=0, microsecond=0)
                    canaries.append(Canary(index, path, window, time.time()))
            index += 1
            time.sleep(max(0.0, started + index - time.monotonic()))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with lock:
                if all(c.visible is not None for c in canaries):
                    break
            time.sleep(0.2)
        done.set()
        for t in threads:
            t.join(10)
        delays = [c.visible - c.acked for c in canaries if c.visible is not None]
        missing = sum(1 for c in canaries if c.visible is None)
        if not delays:
            print(f"[{mode}] no canary became visible ({len(canaries)} sent)")
            return 1
        p50, p95 = interpolated_percentile(delays, 50), interpolated_percentile(delays, 95)
        verdict = "meets" if p95 <= 60 and not missing else "MISSES"
        print(
            f"[{mode}] freshness acked -> visible in the rollup store over {len(canaries)} canaries"
            f" (flush interval {flush} s): p50 {p50:.2f} s, p95 {p95:.2f} s, max {max(delays):.2f} s,"
            f" not visible {missing}; {verdict} the p95 <= 60 s target",
            flush=True,
        )
        return 0 if verdict == "meets" else 1


def _background(
    collect: grpc.UnaryUnaryMultiCallable[bytes, bytes], keys: dict[str, str], done: threading.Event
) -> None:
    merchants = [m for m in keys if not m.startswith("canary-")]
    seq = 0
    while not done.wait(0.5):
        merchant = merchants[seq % len(merchants)]
        try:
            collect(background_batch(20, seq), metadata=(("authorization", f"Bearer {keys[merchant]}"),), timeout=30)
        except grpc.RpcError as exc:
            print(f"background batch failed: {exc}", file=sys.stderr)
        seq += 1


def _poll(
    store: RollupStore, merchant_id: str, canaries: list[Canary], lock: threading.Lock, done: threading.Event
) -> None:
    while not done.wait(0.1):
        with lock:
            pending = [c for c in canaries if c.visible is None]
        for c in pending:
            rows = store.read(merchant_id, "page", Grain.HOUR, c.window, c.window + timedelta(hours=1), 1, [(c.path,)])
            if rows:
                seen = time.time()
                with lock:
                    c.visible = seen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.freshness", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--engines", choices=("embedded", "real"), default="embedded")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long canaries are sent (one per second)")
    parser.add_argument("--flush-interval", type=float, default=2.0, help="the aggregator's --flush-interval")
    parser.add_argument("--keep", action="store_true", help="real engines: keep the keyspace and topics")
    args = parser.parse_args(argv)
    return run(args.engines, args.seconds, args.flush_interval, args.keep)


if __name__ == "__main__":
    sys.exit(main())
