"""Handler-alone throughput: BatchHandler.handle on bench/batches.py's 500-event template, no gRPC.

    PYTHONPATH=. .venv/bin/python collector_svc/fastpath/bench_handler.py [--seconds 5] [--log memory] [--python]

`--python` forces the pure-Python path (the reference), otherwise the Rust fast path is used when importable.
`--log memory` resolves publishes at once (screening + stamping only); `embedded` writes the SQLite event log.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import Future
from dataclasses import replace
from datetime import UTC, datetime

from bench.batches import BatchFactory
from collector_svc.handler import BatchHandler, CallInfo
from collector_svc.metrics import CollectorMetrics
from collector_svc.settings import CollectorSettings
from gnomon.eventlog.port import EventLog, Position
from gnomon.settings import CommonSettings
from gnomon.telemetry import Exporter, TelemetrySettings, setup_telemetry


class _MemoryLog:
    def publish(self, stream: object, key: str, payload: bytes, properties: object = None) -> Future[Position]:
        future: Future[Position] = Future()
        future.set_result(Position(0, 0))
        return future

    def publish_many(self, stream: object, messages: list[object]) -> list[Future[Position]]:
        return [self.publish(stream, "", b"") for _ in messages]

    def close(self) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--size", type=int, default=500)
    parser.add_argument("--log", choices=("memory", "embedded"), default="memory")
    parser.add_argument("--python", action="store_true", help="force the pure-Python reference path")
    parser.add_argument("--dedup-cache", type=int, default=None, help="recent-ids cache size (default: settings')")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        common = CommonSettings.from_env({"GNOMON_DATA_DIR": tmp, "GNOMON_TELEMETRY_EXPORTER": "none"})
        settings = CollectorSettings(common=common, collector_id="bench", rate_limit_events_per_s=0.0)
        if args.dedup_cache is not None:
            settings = replace(settings, dedup_cache_size=args.dedup_cache)
        if args.log == "memory":
            log: EventLog = _MemoryLog()  # type: ignore[assignment]
        else:
            from gnomon.eventlog import open_event_log

            log = open_event_log(common, producer_name="bench-handler")
        telemetry = setup_telemetry(TelemetrySettings(exporter=Exporter.NONE))
        handler = BatchHandler(settings, log, lambda: datetime.now(UTC), CollectorMetrics(telemetry))
        if args.python and hasattr(handler, "_fast"):
            handler._fast = None
        path = "python" if getattr(handler, "_fast", None) is None else "rust"
        factory = BatchFactory(args.size, "hb")
        call = CallInfo("merchant-bench", "ipv4:127.0.0.1:5000", (), "")
        for _ in range(20):
            handler.handle(factory.next(), call)
        batches = elapsed = cpu = 0.0
        while elapsed < args.seconds:  # only handle() is timed; making the unique batches is not
            raw = factory.next()
            started, started_cpu = time.perf_counter(), time.thread_time()
            handler.handle(raw, call)
            elapsed += time.perf_counter() - started
            cpu += time.thread_time() - started_cpu
            batches += 1
        log.close()
    events = batches * args.size
    print(
        f"{path} path, {args.log} log: {events / elapsed:,.0f} events/s wall ({elapsed / batches * 1e6:,.0f} us/batch),"
        f" {events / cpu:,.0f} events/s of this thread's CPU ({cpu / batches * 1e6:,.0f} us/batch)"
    )


if __name__ == "__main__":
    main()
