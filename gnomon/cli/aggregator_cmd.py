"""`gnomon aggregator`: turn the event log into hourly and daily rollups until SIGTERM / Ctrl-C (--once: drained)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from contextlib import ExitStack
from dataclasses import replace
from typing import Any

from aggregator.settings import AggregatorSettings
from gnomon.settings import SettingsError

log = logging.getLogger("gnomon.aggregator")

DESCRIPTION = """\
Run the aggregator: it reads the events the collectors logged (consumer group "aggregator" on the events stream),
keeps every event once in its event store (deduplicated by merchant, local day and event id), recomputes the
hour and day rollups of every merchant-day that received events, on Dask, and writes them to the rollup store
that the query service reads. Records are committed only after their rollups are written, so a crash or a
restart never loses or double-counts an event.

Freshness: open windows are re-written every cycle (rows marked provisional); a window becomes final once its
end plus the allowed lateness has passed the watermark (the newest received time seen). Later events re-open
and correct their window; nothing is dropped.

Engines come from GNOMON_ENGINES (embedded: SQLite files under GNOMON_DATA_DIR; real: Pulsar + Cassandra, see
`gnomon engines up`); Dask from GNOMON_DASK_SCHEDULER (unset: a local cluster of GNOMON_DASK_WORKERS processes).
Every option can also be set with the GNOMON_AGGREGATOR_* variable named in its help; flags win.
Run one aggregator per region. Stop with SIGTERM or Ctrl-C: the current cycle finishes and commits first.

examples:
  gnomon aggregator                     # run until stopped
  gnomon aggregator --once              # process what the log holds now, close due windows, exit
  gnomon aggregator --flush-interval 1  # smaller micro-batches: fresher rows, more write work
"""


def register(subparsers: Any) -> None:
    """Add `aggregator` to the `gnomon` command line."""
    p = subparsers.add_parser(
        "aggregator",
        help="run the aggregator (event log -> rollups, on Dask)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(p)
    p.set_defaults(handler=run)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--once", action="store_true", help="exit once the log is drained and no window is due to close")
    p.add_argument(
        "--flush-interval",
        type=float,
        metavar="SECONDS",
        help="collect records for at most this long per cycle (GNOMON_AGGREGATOR_FLUSH_MS, default 2 s)",
    )
    p.add_argument(
        "--max-records",
        type=int,
        metavar="N",
        help="log records (collector batches) per cycle at most (GNOMON_AGGREGATOR_MAX_RECORDS, default 2000)",
    )
    p.add_argument(
        "--lateness",
        type=float,
        metavar="SECONDS",
        help="allowed lateness before a window is final (GNOMON_AGGREGATOR_LATENESS_S, default 300)",
    )
    p.add_argument(
        "--no-idle-watermark",
        action="store_true",
        help="only events move the watermark; by default a drained log moves it to the wall clock"
        " (GNOMON_AGGREGATOR_IDLE_WATERMARK=0)",
    )
    p.add_argument("--group", metavar="NAME", help="consumer group (GNOMON_AGGREGATOR_GROUP, default aggregator)")


def settings_from_args(args: argparse.Namespace) -> AggregatorSettings:
    """Environment first, then flags. Raises SettingsError naming the offending flag or variable."""
    settings = AggregatorSettings.from_env()
    changes: dict[str, Any] = {}
    if args.flush_interval is not None:
        if not 0.01 <= args.flush_interval <= 3600:
            raise SettingsError("--flush-interval must be between 0.01 and 3600 seconds")
        changes["flush_interval_s"] = args.flush_interval
    if args.max_records is not None:
        if args.max_records < 1:
            raise SettingsError("--max-records must be >= 1")
        changes["max_records"] = args.max_records
    if args.lateness is not None:
        if args.lateness < 0:
            raise SettingsError("--lateness must be >= 0 seconds")
        changes["allowed_lateness_s"] = args.lateness
    if args.no_idle_watermark:
        changes["idle_watermark"] = False
    if args.group:
        changes["group"] = args.group
    return replace(settings, **changes) if changes else settings


def run(args: argparse.Namespace) -> int:
    """Run until SIGTERM/SIGINT (or drained with --once); finish the cycle, commit, close. Returns the exit code.

    The Dask workers of an embedded LocalCluster are started with SIGINT and SIGTERM ignored (they inherit that),
    so a Ctrl-C in a terminal, which reaches the whole process group, stops only the loop: the cycle in flight
    finishes on the workers and is committed, then the cluster is closed.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = settings_from_args(args)
    from aggregator.eventstore import EventStoreError
    from aggregator.runtime import open_aggregator
    from gnomon.compute import dask_client
    from gnomon.control import ControlError
    from gnomon.eventlog import EventLogError
    from gnomon.rollups import RollupError
    from gnomon.telemetry import setup_telemetry

    telemetry = setup_telemetry(settings.telemetry, install_global=True)
    stop = threading.Event()
    cycles = 0
    signals = (signal.SIGTERM, signal.SIGINT)
    try:
        with ExitStack() as stack:
            for sig in signals:
                signal.signal(sig, signal.SIG_IGN)  # inherited by the worker processes spawned now
            client = stack.enter_context(dask_client(settings.common.dask))
            for sig in signals:
                signal.signal(sig, lambda signum, frame: stop.set())
            aggregator = stack.enter_context(open_aggregator(settings, telemetry=telemetry, client=client))
            mode = settings.common.engine_mode.value
            print(f"aggregator running (group {settings.group}, {mode} engines)", flush=True)
            cycles = aggregator.run(stop, once=args.once)
    except (EventLogError, EventStoreError, RollupError, ControlError, OSError) as exc:
        print(f"gnomon: aggregator engine unreachable: {exc}", file=sys.stderr)
        return 1
    finally:
        telemetry.shutdown()
    log.info("aggregator stopped after %d cycles", cycles)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point (`python -m gnomon.cli.aggregator_cmd`), same options as `gnomon aggregator`."""
    parser = argparse.ArgumentParser(
        prog="gnomon aggregator", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except SettingsError as exc:
        print(f"gnomon: invalid setting: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
