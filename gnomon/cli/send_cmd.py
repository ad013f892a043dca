"""`gnomon send`: send synthetic traffic (gnomon.synth) to collectors through the Python SDK.

    gnomon send --write-key K [--endpoint 127.0.0.1:50051 ...] [--rate EVENTS_PER_S] [--events N]
                [--seed S] [--days D] [--pages P] [--spool DIR] [--tls] [--ca-cert PEM]

Events are generated deterministically from the seed and the start time of the run (event times span the
`--days` before it), tracked with `gnomon_sdk.Client` (batching, gzip, retries, optional spool) and paced to
`--rate` events/s when given. When the SDK's queue is full (no spool), sending waits for it to drain. Exit
code 0 when every event was accepted (or a duplicate), 1 when some were rejected, failed or are still pending,
2 for bad arguments.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the SDK, numpy (synth) and rich load only when `gnomon send` runs
    import grpc
    from gnomon_sdk import Client, DeliveryError
    from rich.console import Console

    from gnomon.synth import SynthConfig

MAX_EVENT_AGE_DAYS = 3.0  # the collector rejects events older than 72 h
_PROGRESS_EVERY = 500


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "send",
        help="send synthetic traffic to collectors through the SDK",
        description=(
            "Generate realistic synthetic analytics traffic (visitors, sessions, page views, purchases) and"
            " send it through the Python SDK. The write key may also come from GNOMON_WRITE_KEY."
        ),
    )
    parser.add_argument("--write-key", help="merchant write key (default: $GNOMON_WRITE_KEY)")
    parser.add_argument(
        "--endpoint",
        action="append",
        dest="endpoints",
        metavar="HOST:PORT",
        help="collector endpoint; repeat for several (default: 127.0.0.1:50051)",
    )
    parser.add_argument("--rate", type=float, default=0.0, metavar="EVENTS_PER_S", help="pace sending (0: max)")
    parser.add_argument("--events", type=int, default=10_000, metavar="N", help="events to send (default 10000)")
    parser.add_argument("--seed", type=int, help="random seed (default: random; printed for reruns)")
    parser.add_argument("--days", type=float, default=2.0, metavar="D", help="event times span the last D days")
    parser.add_argument("--pages", type=int, default=1_000, metavar="P", help="distinct pages of the synthetic site")
    parser.add_argument("--spool", type=Path, metavar="DIR", help="SDK spool directory (survives outages)")
    parser.add_argument("--tls", action="store_true", help="connect with TLS (system roots unless --ca-cert)")
    parser.add_argument("--ca-cert", type=Path, metavar="PEM", help="CA certificate for --tls")
    parser.add_argument("--timeout", type=float, default=60.0, metavar="S", help="final flush timeout (default 60)")
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    parser.set_defaults(handler=run)


def _check(args: argparse.Namespace) -> str | None:
    """An error message for invalid arguments, else None."""
    if not (args.write_key or os.environ.get("GNOMON_WRITE_KEY")):
        return "--write-key (or GNOMON_WRITE_KEY) is required"
    if args.events < 0 or args.rate < 0 or args.days <= 0:
        return "--events and --rate must be >= 0 and --days > 0"
    if args.pages < 10:
        return "--pages must be at least 10"
    if args.ca_cert is not None and not args.ca_cert.is_file():
        return f"--ca-cert {args.ca_cert} is not a file"
    return None


def _credentials(args: argparse.Namespace) -> bool | grpc.ChannelCredentials:
    import grpc

    if args.ca_cert is not None:
        return grpc.ssl_channel_credentials(root_certificates=args.ca_cert.read_bytes())
    return bool(args.tls)


def run(args: argparse.Namespace) -> int:
    """Send `--events` synthetic events; print a summary. Blocks until the final flush (<= --timeout)."""
    from gnomon_sdk import Client, ErrorKind, GnomonError
    from rich.console import Console
    from rich.table import Table

    from gnomon.synth import SynthConfig

    err = Console(stderr=True)
    problem = _check(args)
    if problem:
        err.print(f"gnomon send: {problem}")
        return 2
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    if args.days > MAX_EVENT_AGE_DAYS:
        err.print(f"warning: events older than {MAX_EVENT_AGE_DAYS * 24:.0f} h will be rejected by the collector")
    config = SynthConfig(
        events=args.events, seed=seed, days=args.days, pages=args.pages, end=datetime.now(UTC).replace(microsecond=0)
    )
    reasons: Counter[str] = Counter()

    def on_error(error: DeliveryError) -> None:
        weight = len(error.event_ids) if error.kind is not ErrorKind.RETRIES_EXHAUSTED else 0
        reasons[f"{error.kind}: {error.reason}"] += weight or 1

    endpoints = args.endpoints or ["127.0.0.1:50051"]
    key = args.write_key or os.environ["GNOMON_WRITE_KEY"]
    err.print(f"sending {args.events} events (seed {seed}) to {', '.join(endpoints)}")
    try:
        client = Client(key, endpoints, spool_dir=args.spool, tls=_credentials(args), on_error=on_error)
    except (GnomonError, ValueError, OSError) as exc:
        err.print(f"gnomon send: {exc}")
        return 2
    started = time.monotonic()
    try:
        _send(client, config, args, err)
        sent_at = time.monotonic()
        result = client.flush(timeout_s=args.timeout)
    except (GnomonError, OSError) as exc:  # SpoolFull, a spool that cannot be written
        err.print(f"gnomon send: stopped: {exc}")
        return 1
    finally:
        client.close(timeout_s=min(args.timeout, 10.0))
    stats = client.stats()
    elapsed = time.monotonic() - started
    table = Table(title="gnomon send", show_header=False)
    for label, value in (
        ("tracked", stats.tracked),
        ("accepted", stats.accepted),
        ("duplicate", stats.duplicate),
        ("rejected", stats.rejected),
        ("failed", stats.failed),
        ("pending", result.pending),
        ("retries", stats.retries),
        ("elapsed", f"{elapsed:.2f} s"),
        ("tracked/s", f"{stats.tracked / max(sent_at - started, 1e-9):,.0f}"),
        ("acknowledged/s", f"{stats.sent / max(elapsed, 1e-9):,.0f}"),
    ):
        table.add_row(label, str(value))
    for reason, count in reasons.most_common(5):
        table.add_row(reason, str(count))
    Console().print(table)
    if result.pending and result.durable:
        err.print(f"{result.pending} events are kept in the spool {args.spool} and will be resent")
    ok = result.complete and stats.rejected == 0 and stats.failed == 0
    return 0 if ok else 1


def _send(client: Client, config: SynthConfig, args: argparse.Namespace, err: Console) -> None:
    from gnomon_sdk import QueueFull, SpoolFull
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from gnomon.synth import track_kwargs

    rate: float = args.rate
    with Progress(
        TextColumn("[bold]send"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[speed]} ev/s, {task.fields[acked]} acked"),
        TimeElapsedColumn(),
        console=err,
        disable=args.quiet,
        transient=False,
    ) as progress:
        task = progress.add_task("send", total=config.events, speed="-", acked=0)
        started = time.monotonic()
        for i, kwargs in enumerate(track_kwargs(config)):
            if rate:
                delay = started + i / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            while True:  # backpressure: wait while the SDK's memory queue is full; SpoolFull propagates
                try:
                    client.track(**kwargs)
                    break
                except SpoolFull:
                    raise
                except QueueFull:
                    time.sleep(0.005)
            if (i + 1) % _PROGRESS_EVERY == 0 or i + 1 == config.events:
                speed = (i + 1) / max(time.monotonic() - started, 1e-9)
                progress.update(task, completed=i + 1, speed=f"{speed:,.0f}", acked=client.stats().sent)


if __name__ == "__main__":  # pragma: no cover - `gnomon send` is the entry point
    root = argparse.ArgumentParser(prog="gnomon")
    register(root.add_subparsers(required=True))
    parsed = root.parse_args()
    sys.exit(parsed.handler(parsed))
