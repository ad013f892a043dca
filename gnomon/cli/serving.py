"""What the serving commands (`gnomon query serve`, `gnomon web`) share: --host/--port flags applied over the
settings, the query service's stores opened and closed together, and stopping on SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import signal
import threading
from contextlib import ExitStack, closing, contextmanager
from typing import TYPE_CHECKING, Any

from gnomon.settings import CommonSettings, SettingsError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from gnomon.telemetry import Telemetry
    from query_svc.server import QueryDeps


class EnginesUnreachable(Exception):
    """A storage engine could not be opened; the message names it and the cause."""


def listen_changes(args: argparse.Namespace) -> dict[str, Any]:
    """The settings fields `--host` / `--port` set (only those given); raises SettingsError for a port outside
    0..65535."""
    changes: dict[str, Any] = {}
    if args.host:
        changes["host"] = args.host
    if args.port is not None:
        if not 0 <= args.port <= 65535:
            raise SettingsError(f"--port {args.port} must be between 0 and 65535")
        changes["port"] = args.port
    return changes


@contextmanager
def query_deps(common: CommonSettings, telemetry: Telemetry) -> Iterator[QueryDeps]:
    """The query service's dependencies (control, rollup and event stores, version registry) opened from
    `common`; all closed on exit. Raises EnginesUnreachable (after closing what was opened) when one of them
    cannot be opened."""
    from aggregator.eventstore import EventStoreUnavailable, open_event_store
    from gnomon.control import ControlUnavailable, open_control_store
    from gnomon.rollups import RollupUnavailable, open_rollup_store, open_version_registry
    from query_svc.server import QueryDeps

    with ExitStack() as opened:
        try:
            control = opened.enter_context(closing(open_control_store(common)))
            store = opened.enter_context(closing(open_rollup_store(common)))
            registry = opened.enter_context(closing(open_version_registry(common)))
            events = opened.enter_context(closing(open_event_store(common)))
        except (ControlUnavailable, RollupUnavailable, EventStoreUnavailable) as exc:
            raise EnginesUnreachable(f"a storage engine is unreachable: {exc}") from exc
        yield QueryDeps(store, registry, control, telemetry, events)


def stop_on_signals() -> threading.Event:
    """An event set when SIGTERM or SIGINT arrives (installs handlers for both; call from the main thread,
    before announcing readiness, so a signal sent right after the announcement is caught)."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: stop.set())
    return stop


def wait_for(stop: threading.Event) -> None:
    """Block until `stop` is set, waking every second so signal handlers run promptly."""
    while not stop.wait(1.0):
        pass
