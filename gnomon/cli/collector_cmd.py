"""`gnomon collector`: run the event collector (gRPC) until SIGTERM or Ctrl-C, then drain and exit."""

from __future__ import annotations

import argparse
import gc
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
from dataclasses import replace
from multiprocessing.synchronize import Event as EventFlag
from typing import Any

from collector_svc.iptrunc import parse_networks
from collector_svc.server import CollectorDeps, create_server
from collector_svc.settings import CollectorSettings
from gnomon.cli.serving import listen_changes
from gnomon.control import ControlUnavailable, open_control_store
from gnomon.eventlog import LogUnavailable, open_event_log
from gnomon.settings import SettingsError
from gnomon.telemetry import setup_telemetry

log = logging.getLogger("gnomon.collector")

DESCRIPTION = """\
Run the collector: merchants' SDKs and browsers send event batches to it over gRPC
(gnomon.v1.CollectorService, `authorization: Bearer <write key>`). Each batch is validated, stamped with
the merchant of its key, and durably written to the event log before it is acknowledged; rejected events go
to the bad-events log. Also served: grpc.health.v1 health, server reflection, and AdminService when
GNOMON_ADMIN_TOKEN is set.

Every option below can also be set with the GNOMON_* variable named in its help; flags win.
Engines come from GNOMON_ENGINES (embedded: SQLite under GNOMON_DATA_DIR; real: Pulsar + Cassandra).
Stop with SIGTERM or Ctrl-C: the server stops taking calls and lets batches in flight finish (--grace).
"""


def register(subparsers: Any) -> None:
    """Add `collector` to the `gnomon` command line."""
    p = subparsers.add_parser(
        "collector",
        help="run the event collector (gRPC ingestion)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", help="address to listen on (GNOMON_COLLECTOR_HOST, default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port; 0 picks a free one (GNOMON_COLLECTOR_PORT, default 50051)")
    p.add_argument("--workers", type=int, help="gRPC worker threads (GNOMON_COLLECTOR_WORKERS, default 32)")
    p.add_argument(
        "--max-in-flight",
        type=int,
        metavar="N",
        help="batches processed at once; more are refused with RESOURCE_EXHAUSTED (GNOMON_COLLECTOR_MAX_IN_FLIGHT)",
    )
    p.add_argument(
        "--rate",
        type=int,
        metavar="EVENTS_PER_S",
        help="per-merchant events/s, 0 = unlimited (GNOMON_COLLECTOR_RATE, default 100000)",
    )
    p.add_argument(
        "--trusted-proxies",
        metavar="CIDRS",
        help="comma-separated networks whose X-Forwarded-For is believed, e.g. 10.0.0.0/8 (GNOMON_TRUSTED_PROXIES)",
    )
    p.add_argument(
        "--grace",
        type=float,
        metavar="SECONDS",
        help="on shutdown, how long batches in flight may finish (GNOMON_COLLECTOR_GRACE_MS, default 10 s)",
    )
    p.add_argument(
        "--processes",
        type=int,
        metavar="N",
        help="server processes sharing the port (SO_REUSEPORT); one Python process uses about one core, so"
        " use the number of cores for throughput; each has its own dedup cache (GNOMON_COLLECTOR_PROCESSES)",
    )
    p.set_defaults(handler=run)


def settings_from_args(args: argparse.Namespace) -> CollectorSettings:
    """Environment first, then flags. Raises SettingsError with the offending flag or variable."""
    settings = CollectorSettings.from_env()
    changes = listen_changes(args)
    if args.workers is not None:
        changes["workers"] = args.workers
    if args.max_in_flight is not None:
        changes["max_in_flight_batches"] = args.max_in_flight
    if args.rate is not None:
        if args.rate < 0:
            raise SettingsError("--rate must be >= 0 (0 = unlimited)")
        changes["rate_limit_events_per_s"] = float(args.rate)
        changes["rate_limit_burst"] = float(2 * args.rate)
    if args.trusted_proxies is not None:
        try:
            changes["trusted_proxies"] = parse_networks([p for p in args.trusted_proxies.split(",") if p.strip()])
        except ValueError as exc:
            raise SettingsError(f"--trusted-proxies: {exc}") from None
    if args.grace is not None:
        changes["grace_s"] = max(0.0, args.grace)
    if args.processes is not None:
        if args.processes < 1:
            raise SettingsError("--processes must be >= 1")
        changes["processes"] = args.processes
    port = changes.get("port", settings.port)
    if "GNOMON_COLLECTOR_ID" not in os.environ and port != 0:
        # Stable across restarts of this instance (host + port), so its Pulsar producer name is too: the broker's
        # deduplication then recognises a restarted producer's sequence ids.
        changes["collector_id"] = f"{socket.gethostname()}-{port}"
    return replace(settings, **changes) if changes else settings


def _serve(settings: CollectorSettings, announce: bool, ready: EventFlag | None = None) -> int:
    """One server process: serve until SIGTERM/SIGINT, drain, close the engines. Returns the exit code. Sets
    `ready` (if given) once the server accepts connections."""
    # Batches allocate many short-lived containers; collect the young generation less often.
    gc.set_threshold(50_000, 20, 20)
    resource = {"service.instance.id": settings.collector_id, "gnomon.region": settings.common.region}
    telemetry = setup_telemetry(replace(settings.telemetry, resource_attributes=resource), install_global=True)
    try:
        control = open_control_store(settings.common)
    except ControlUnavailable as exc:
        print(f"gnomon: control store unreachable: {exc}", file=sys.stderr)
        return 1
    try:
        event_log = open_event_log(settings.common, producer_name=f"collector-{settings.collector_id}")
    except LogUnavailable as exc:
        control.close()
        print(f"gnomon: event log unreachable: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    try:
        server, port = create_server(settings, CollectorDeps(event_log, control, telemetry))
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda signum, frame: stop.set())
        server.start()
        scheme = "tls" if settings.tls_cert else "insecure"
        log.info("collector %s listening on %s:%d (%s)", settings.collector_id, settings.host, port, scheme)
        if announce:
            print(f"collector listening on {settings.host}:{port}", flush=True)
        if ready is not None:
            ready.set()
        gc.freeze()
        while not stop.wait(1.0):
            pass
        log.info("stopping: draining batches in flight for up to %.1f s", settings.grace_s)
        server.stop(settings.grace_s).wait()
    finally:
        event_log.close()
        control.close()
        telemetry.shutdown()
    log.info("collector %s stopped", settings.collector_id)
    return 0


def _child(settings: CollectorSettings, ready: EventFlag) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sys.exit(_serve(settings, announce=False, ready=ready))


def _reserve_port(host: str, port: int) -> socket.socket:
    """Bind (and keep) a SO_REUSEPORT socket so that every server process gets the same concrete port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise SettingsError(f"cannot listen on {host}:{port}: {exc}") from None
    return sock


def _run_processes(settings: CollectorSettings) -> int:
    """Run `settings.processes` server processes on one port; forward SIGTERM/SIGINT; wait for all."""
    reserved = _reserve_port(settings.host, settings.port)
    port = reserved.getsockname()[1]
    ctx = multiprocessing.get_context("spawn")
    ready = [ctx.Event() for _ in range(settings.processes)]
    children = [
        ctx.Process(
            target=_child,
            args=(replace(settings, port=port, reuse_port=True, collector_id=f"{settings.collector_id}-{i}"), flag),
            name=f"collector-{i}",
        )
        for i, flag in enumerate(ready)
    ]
    stopping = threading.Event()

    def forward(signum: int, frame: object) -> None:
        stopping.set()
        for child in children:
            if child.pid is not None and child.is_alive():
                os.kill(child.pid, signal.SIGTERM)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, forward)
    for child in children:
        child.start()
    # announce only once every process accepts connections (a failed start is handled by the loop below)
    while not all(flag.wait(0.1) for flag in ready):
        if any(c.exitcode is not None for c in children):
            break
    else:
        print(f"collector listening on {settings.host}:{port} ({settings.processes} processes)", flush=True)
    try:
        while any(c.is_alive() for c in children):
            if not stopping.is_set() and any(c.exitcode not in (None, 0) for c in children):
                log.error("a collector process failed; stopping the others")
                forward(signal.SIGTERM, None)
            for child in children:
                child.join(0.5)
    finally:
        reserved.close()
    return max((c.exitcode or 0) for c in children)


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM/SIGINT, then drain and exit (0 on a clean stop)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = settings_from_args(args)
    if settings.processes > 1:
        return _run_processes(settings)
    return _serve(settings, announce=True)
