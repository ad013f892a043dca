"""`gnomon engines up|down|status|logs|fetch`: the real engines (Pulsar, Cassandra) on this machine."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from gnomon.engines import manager, processes, specs
from gnomon.engines.errors import EngineError
from gnomon.engines.jars import directory_size
from gnomon.engines.layout import EngineLayout
from gnomon.settings import CommonSettings

DESCRIPTION = """\
Run the real engines on this machine, bound to 127.0.0.1 only:
  Apache Pulsar standalone (binary :6650, admin http :8080, bookie :3181) and
  Apache Cassandra 5 (CQL :9042, storage :7000), both from jars resolved once from Maven Central.

  gnomon engines up        start both (no-op if already up); wait until ready; create Pulsar namespace
  gnomon engines status    pid, readiness, memory, ports of each
  gnomon engines logs      show the end of each engine's log (or: logs pulsar -n 200)
  gnomon engines down      stop exactly the processes `up` started
  gnomon engines fetch     only resolve the jars (done by `make setup`)
"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "engines",
        help="start/stop the real engines (Pulsar, Cassandra) locally",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(title="actions", metavar="ACTION", required=True)
    for name, text in (
        ("up", "start the engines and wait until they are ready"),
        ("down", "stop the engines that `up` started"),
        ("status", "show whether each engine runs and is ready"),
        ("logs", "print the last lines of the engines' logs"),
        ("fetch", "resolve the engines' jars into the cache, start nothing"),
    ):
        sub = actions.add_parser(name, help=text, description=text)
        sub.add_argument(
            "--data",
            type=Path,
            metavar="DIR",
            help="directory for engine data, configs, logs and pids (default: GNOMON_ENGINES_HOME or "
            "~/.local/share/gnomon/engines)",
        )
        sub.set_defaults(handler=HANDLERS[name])
        if name == "up":
            sub.add_argument("--wipe", action="store_true", help="delete all engine data first (asks nothing!)")
        if name == "logs":
            sub.add_argument("engine", nargs="?", choices=("pulsar", "cassandra"), help="only this engine")
            sub.add_argument("-n", "--lines", type=int, default=40, help="how many lines (default 40)")


def _layout(args: argparse.Namespace) -> EngineLayout:
    layout = EngineLayout.from_env()
    return layout.with_home(args.data) if args.data else layout


def _console() -> Console:
    return Console(stderr=False, highlight=False)


def _guard(fn: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            result: int = fn(args)
            return result
        except EngineError as err:
            print(f"gnomon engines: {err}", file=sys.stderr)
            return 1

    return run


@_guard
def cmd_up(args: argparse.Namespace) -> int:
    layout, console = _layout(args), _console()
    began = time.monotonic()
    results = manager.up(layout, CommonSettings.from_env().pulsar, console.print, wipe=args.wipe)
    for r in results:
        verb = f"started in {r.seconds:.1f} s" if r.started else "already up (no-op)"
        console.print(f"{r.name}: {verb}, pid {r.pid}")
    console.print(f"engines ready in {time.monotonic() - began:.1f} s; data and logs under {layout.home}")
    console.print(
        f"  pulsar://{layout.host}:{layout.pulsar_broker_port}  admin http://{layout.host}:{layout.pulsar_http_port}"
    )
    console.print(f"  cql {layout.host}:{layout.cql_port}")
    return 0


@_guard
def cmd_down(args: argparse.Namespace) -> int:
    layout, console = _layout(args), _console()
    stopped = manager.down(layout, console.print)
    console.print("stopped: " + ", ".join(stopped) if stopped else "nothing was running")
    return 0


@_guard
def cmd_status(args: argparse.Namespace) -> int:
    layout, console = _layout(args), _console()
    table = Table(title=f"engines under {layout.home}")
    for column in ("engine", "pid", "ready", "RSS", "ports", "log"):
        table.add_column(column)
    states = manager.status(layout)
    for s in states:
        table.add_row(
            s.name,
            str(s.pid or "-"),
            "yes" if s.ready else "no",
            f"{s.rss_bytes / 2**20:.0f} MiB" if s.rss_bytes else "-",
            ",".join(map(str, s.ports)),
            s.log_file,
        )
    console.print(table)
    console.print(f"jar cache: {layout.jar_cache} ({directory_size(layout.jar_cache) / 2**20:.0f} MiB)")
    return 0 if all(s.ready for s in states) else 3


@_guard
def cmd_logs(args: argparse.Namespace) -> int:
    layout = _layout(args)
    for spec in specs.all_specs(layout):
        if args.engine in (None, spec.name):
            print(f"==> {spec.log_file(layout)} <==")
            print(processes.tail(spec.log_file(layout), args.lines))
    return 0


@_guard
def cmd_fetch(args: argparse.Namespace) -> int:
    layout = _layout(args)
    for name, lib in manager.fetch(layout).items():
        print(f"{name}: {lib}")
    return 0


HANDLERS = {"up": cmd_up, "down": cmd_down, "status": cmd_status, "logs": cmd_logs, "fetch": cmd_fetch}
