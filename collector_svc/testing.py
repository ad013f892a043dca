"""Helpers for tests that run a real collector (port 0, real embedded event log, real control store).

`running_collector` starts a server and yields its channel and stub; `GatedEventLog` wraps a real EventLog
and can hold publishes back (a slow engine), to exercise in-flight limits, timeouts and graceful drain.
Nothing here replaces an engine: every message still goes to the wrapped log.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import grpc

from collector_svc.server import CollectorDeps, CollectorServer, create_server
from collector_svc.settings import CollectorSettings
from gnomon.eventlog.port import EventLog, LogConsumer, OutgoingMessage, Position, Record, Stream
from gnomon.grpc_testing import bearer, serving
from gnomon.v1 import collector_pb2_grpc

__all__ = ["GatedEventLog", "RunningCollector", "bearer", "running_collector"]


@dataclass
class RunningCollector:
    server: CollectorServer
    port: int
    channel: grpc.Channel
    stub: collector_pb2_grpc.CollectorServiceStub


@contextmanager
def running_collector(settings: CollectorSettings, deps: CollectorDeps) -> Iterator[RunningCollector]:
    """Start a collector; on exit close the channel and stop the server at once (no grace)."""
    server, port = create_server(settings, deps)
    with serving(server, port) as channel:
        yield RunningCollector(server, port, channel, collector_pb2_grpc.CollectorServiceStub(channel))


class GatedEventLog:
    """Delegates to a real EventLog, with two gates to play a slow engine.

    While `publish_gate` is closed, `publish`/`publish_many` wait at it (`entered` is set meanwhile). While
    `ack_gate` is closed, messages are written at once but their futures resolve only when it opens (a
    durable write whose acknowledgement is late).
    """

    def __init__(self, inner: EventLog) -> None:
        self.inner = inner
        self.publish_gate = threading.Event()
        self.publish_gate.set()
        self.ack_gate = threading.Event()
        self.ack_gate.set()
        self.entered = threading.Event()

    def close_gate(self) -> None:
        """Hold publishes back."""
        self.entered.clear()
        self.publish_gate.clear()

    def open_gate(self) -> None:
        self.publish_gate.set()

    def _pass(self) -> None:
        if not self.publish_gate.is_set():
            self.entered.set()
            self.publish_gate.wait()

    def _late(self, inner: Future[Position]) -> Future[Position]:
        if self.ack_gate.is_set():
            return inner
        outer: Future[Position] = Future()

        def relay() -> None:
            self.ack_gate.wait()
            try:
                outer.set_result(inner.result())
            except Exception as exc:  # relayed to the waiter as the engine's failure
                outer.set_exception(exc)

        threading.Thread(target=relay, daemon=True).start()
        return outer

    def publish(
        self, stream: Stream, key: str, payload: bytes, properties: Mapping[str, str] | None = None
    ) -> Future[Position]:
        self._pass()
        return self._late(self.inner.publish(stream, key, payload, properties))

    def publish_many(self, stream: Stream, messages: Sequence[OutgoingMessage]) -> list[Future[Position]]:
        self._pass()
        return [self._late(f) for f in self.inner.publish_many(stream, messages)]

    def subscribe(self, stream: Stream, group: str) -> LogConsumer:
        return self.inner.subscribe(stream, group)

    def read_by_publish_time(
        self, stream: Stream, start: datetime, end: datetime, partitions: Sequence[int] | None = None
    ) -> Iterator[Record]:
        return self.inner.read_by_publish_time(stream, start, end, partitions)

    def partition_count(self, stream: Stream) -> int:
        return self.inner.partition_count(stream)

    def close(self) -> None:
        self.publish_gate.set()
        self.ack_gate.set()
        self.inner.close()
