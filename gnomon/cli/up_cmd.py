"""`gnomon up [--demo]`: collector + aggregator + query service (+ web dashboard) in one command."""

from __future__ import annotations

import argparse
import os
import signal
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
from rich.console import Console
from rich.live import Live

from gnomon.cli.main import COMMAND_MODULES
from gnomon.settings import CommonSettings
from mesh.demo import ensure_demo_merchant, live_report, traffic_days
from mesh.supervisor import ServiceFailed, ServiceSpec, Supervisor

DESCRIPTION = """\
Run the whole stack on this machine, on the embedded engines (SQLite files under GNOMON_DATA_DIR) unless
GNOMON_ENGINES=real (then start Pulsar + Cassandra first with `gnomon engines up`):

  collector      gRPC  127.0.0.1:50051   merchants' SDKs and browsers send events here
  aggregator     -                       turns the event log into hourly rollups (Dask)
  query service  gRPC  127.0.0.1:50052   time series, breakdowns, realtime (and the GA4 Data API)
  dashboard      http  127.0.0.1:8088    when the web app is installed

Every service is health-checked before the next starts; all logs go to <data dir>/logs/. Ctrl-C stops
everything cleanly. With --demo: a demo merchant, synthetic traffic through the SDK, and a live report.
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "up",
        help="run collector + aggregator + query service together (add --demo for a live demo)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--demo", action="store_true", help="create a demo merchant, send traffic, print a live report")
    p.add_argument("--data", type=Path, metavar="DIR", help="data directory (default: GNOMON_DATA_DIR)")
    p.add_argument("--collector-port", type=int, default=50051, metavar="PORT")
    p.add_argument("--query-port", type=int, default=50052, metavar="PORT")
    p.add_argument("--web-port", type=int, default=8088, metavar="PORT")
    p.add_argument("--rate", type=int, default=300, help="demo traffic in events/s (default 300)")
    p.add_argument("--for-seconds", type=float, default=0, help="stop by itself after this long (0: run until Ctrl-C)")
    p.set_defaults(handler=run)


def _specs(args: argparse.Namespace) -> list[ServiceSpec]:
    specs = [
        ServiceSpec("collector", ("collector", "--port", str(args.collector_port)), args.collector_port),
        ServiceSpec("aggregator", ("aggregator",)),
        ServiceSpec("query", ("query", "serve", "--port", str(args.query_port)), args.query_port),
    ]
    if "gnomon.cli.web_cmd" in COMMAND_MODULES:
        specs.append(ServiceSpec("web", ("web", "--port", str(args.web_port))))
    return specs


def run(args: argparse.Namespace) -> int:
    console = Console(highlight=False)
    env = dict(os.environ)
    if args.data:
        env["GNOMON_DATA_DIR"] = str(args.data.expanduser().resolve())
    settings = CommonSettings.from_env(env)
    log_dir = settings.data_dir / "logs"
    supervisor = Supervisor(log_dir, env)
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    try:
        for spec in _specs(args):
            console.print(f"starting {spec.name} ...")
            supervisor.start(spec)
        console.print(f"[bold]Gnomon is up[/bold] ({settings.engine_mode} engines, data in {settings.data_dir})")
        console.print(f"  collector      grpc://127.0.0.1:{args.collector_port}")
        console.print(f"  query service  grpc://127.0.0.1:{args.query_port}  (GA4 clients: properties/<merchant id>)")
        if any(s.name == "web" for s, _ in supervisor.running):
            console.print(f"  dashboard      http://127.0.0.1:{args.web_port}/")
        console.print(f"  logs           {log_dir}/")
        if args.demo:
            demo = ensure_demo_merchant(settings)
            console.print(f"  demo merchant  {demo.merchant_id}")
            # soft_wrap: a secret is never broken across lines (a narrow terminal wraps it, copying stays whole)
            console.print(f"  write key      {demo.write_key}", soft_wrap=True)
            console.print(f"  read token     {demo.read_token}", soft_wrap=True)
            console.print(
                f"  try: gnomon query --token {demo.read_token} --endpoint 127.0.0.1:{args.query_port} totals",
                soft_wrap=True,
            )
            supervisor.start(
                ServiceSpec(
                    "traffic",
                    (
                        "send",
                        "--write-key",
                        demo.write_key,
                        "--endpoint",
                        f"127.0.0.1:{args.collector_port}",
                        "--rate",
                        str(args.rate),
                        "--events",
                        str(args.rate * 3600),
                        "--days",
                        repr(traffic_days(datetime.now(UTC))),
                        "--quiet",
                    ),
                )
            )
        _watch(args, supervisor, console, stop, demo.read_token if args.demo else None)
    except ServiceFailed as err:
        console.print(f"[red]gnomon up: {err}[/red]")
        return 1
    except KeyboardInterrupt:
        pass
    finally:
        console.print("stopping ...")
        supervisor.stop()
        console.print("stopped.")
    return 0


def _watch(
    args: argparse.Namespace, supervisor: Supervisor, console: Console, stop: dict[str, bool], token: str | None
) -> None:
    """Until Ctrl-C / SIGTERM / --for-seconds: watch the services, refresh the demo report every 5 s."""
    ends = time.monotonic() + args.for_seconds if args.for_seconds else float("inf")
    with Live(console=console, refresh_per_second=1, transient=False) as live:
        while not stop["now"] and time.monotonic() < ends:
            dead = supervisor.check()
            if dead:
                raise ServiceFailed(f"{', '.join(dead)} stopped unexpectedly; see {supervisor.log_dir}/")
            if token is not None:
                try:
                    live.update(live_report(f"127.0.0.1:{args.query_port}", token))
                except grpc.RpcError as err:
                    live.update(f"waiting for the first report ({err.code().name}) ...")
            time.sleep(5 if token else 1)
