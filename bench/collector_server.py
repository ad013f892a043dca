"""The real collector for the ingest benchmark, in its own process: `python -m bench.collector_server OUT_FILE`.

Uses the engine mode of GNOMON_ENGINES (embedded SQLite log, or Pulsar), creates a merchant and a write key in
the control store under GNOMON_DATA_DIR, serves on a free port, and writes `port write_key` to OUT_FILE.
Rate limiting is off (the benchmark measures throughput, not the limiter).
"""

from __future__ import annotations

import signal
import sys
import threading
import uuid
from dataclasses import replace
from pathlib import Path

from collector_svc.server import CollectorDeps, create_server
from collector_svc.settings import CollectorSettings
from gnomon.control import KeyKind, open_control_store
from gnomon.eventlog import open_event_log
from gnomon.telemetry import setup_telemetry


def main(out_file: Path) -> None:
    settings = CollectorSettings.from_env()
    settings = replace(settings, port=0, rate_limit_events_per_s=0.0, max_in_flight_batches=64)
    control = open_control_store(settings.common)
    merchant = control.create_merchant("bench", "UTC", "USD", f"bench-{uuid.uuid4().hex[:8]}")
    key = control.create_key(merchant.merchant_id, KeyKind.WRITE, "bench")
    event_log = open_event_log(settings.common, producer_name=f"bench-collector-{uuid.uuid4().hex[:8]}")
    telemetry = setup_telemetry(settings.telemetry)
    server, port = create_server(settings, CollectorDeps(event_log=event_log, control=control, telemetry=telemetry))
    server.start()
    out_file.write_text(f"{port} {key.secret}")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    server.stop(5).wait()
    event_log.close()
    control.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
