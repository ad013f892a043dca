"""`FakeCollector`: an in-process CollectorService for tests of code that sends events with the SDK.

It listens on 127.0.0.1 (port 0 by default), checks `authorization: Bearer <key>`, remembers accepted event
ids (answering DUPLICATE for repeats, like the real collector), and records every call: the batch, whether it
arrived gzip-compressed, the write key. Failures can be scripted (`fail_next`, optionally with a RetryInfo
delay) and events rejected by a predicate. Not for production: everything is kept in memory.

Compression is observed directly: the server runs with `grpc.per_message_decompression` off, so a request that
was compressed on the wire reaches the handler still gzip'd, is recorded as compressed, then inflated here.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent import futures
from dataclasses import dataclass
from types import TracebackType

import grpc

from gnomon_sdk import _wire
from gnomon_sdk._proto.gnomon.v1 import collector_pb2, event_pb2

_GZIP_MAGIC = b"\x1f\x8b"  # an EventBatch can never start with 0x1f (field 3, wire type 7 does not exist)

# (reason, field, message) for an event to reject, None to accept it.
RejectRule = Callable[[event_pb2.Event], "tuple[collector_pb2.RejectReason.ValueType, str, str] | None"]


@dataclass(frozen=True)
class CallRecord:
    """One Collect call as the fake saw it (`code` is OK or the status it answered with; `at` is monotonic)."""

    write_key: str
    compressed: bool
    batch: collector_pb2.EventBatch
    code: grpc.StatusCode
    at: float
    metadata: dict[str, str | bytes]


@dataclass(frozen=True)
class _ScriptedFailure:
    code: grpc.StatusCode
    details: str
    retry_after_s: float | None


class FakeCollector:
    """A loopback CollectorService. Use as a context manager or call start()/stop()."""

    def __init__(
        self,
        write_keys: Iterable[str] = ("test-key",),
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        reject: RejectRule | None = None,
        delay_s: float = 0.0,
    ) -> None:
        self.write_keys = frozenset(write_keys)
        self.reject = reject
        self.delay_s = delay_s
        self.calls: list[CallRecord] = []
        self.received_ids: list[str] = []  # every event id of every answered call, duplicates included
        self.accepted_ids: set[str] = set()
        self._failures: deque[_ScriptedFailure] = deque()
        self._lock = threading.Lock()
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="fake-collector"),
            options=[("grpc.per_message_decompression", 0)],
        )
        handlers: dict[str, grpc.RpcMethodHandler[bytes, collector_pb2.CollectResponse]] = {
            "Collect": grpc.unary_unary_rpc_method_handler(
                self._collect, response_serializer=collector_pb2.CollectResponse.SerializeToString
            ),
            "CollectStream": grpc.stream_stream_rpc_method_handler(
                self._collect_stream, response_serializer=collector_pb2.CollectResponse.SerializeToString
            ),
        }
        service = collector_pb2.DESCRIPTOR.services_by_name["CollectorService"].full_name
        self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
        self.port = self._server.add_insecure_port(f"{host}:{port}")
        self.endpoint = f"{host}:{self.port}"

    def start(self) -> FakeCollector:
        self._server.start()
        return self

    def stop(self, grace_s: float | None = None) -> None:
        self._server.stop(grace_s).wait()

    def __enter__(self) -> FakeCollector:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def fail_next(
        self,
        code: grpc.StatusCode,
        times: int = 1,
        *,
        details: str = "injected failure",
        retry_after_s: float | None = None,
    ) -> None:
        """Answer the next `times` Collect calls with `code` (plus a RetryInfo when `retry_after_s`)."""
        with self._lock:
            self._failures.extend(_ScriptedFailure(code, details, retry_after_s) for _ in range(times))

    @property
    def batches(self) -> list[collector_pb2.EventBatch]:
        """Batches of the calls that were answered OK."""
        with self._lock:
            return [c.batch for c in self.calls if c.code is grpc.StatusCode.OK]

    def _decode(self, raw: bytes) -> tuple[collector_pb2.EventBatch, bool]:
        compressed = raw.startswith(_GZIP_MAGIC)
        data = gzip.decompress(raw) if compressed else raw
        return collector_pb2.EventBatch.FromString(data), compressed

    def _answer(self, raw: bytes, context: grpc.ServicerContext) -> collector_pb2.CollectResponse:
        if self.delay_s:
            threading.Event().wait(self.delay_s)
        batch, compressed = self._decode(raw)
        metadata: dict[str, str | bytes] = {key: value for key, value in context.invocation_metadata()}
        auth = str(metadata.get("authorization", ""))
        key = auth.removeprefix("Bearer ").strip()
        with self._lock:
            failure = self._failures.popleft() if self._failures else None
            if failure is None and key not in self.write_keys:
                failure = _ScriptedFailure(grpc.StatusCode.UNAUTHENTICATED, "unknown write key", None)
            code = failure.code if failure else grpc.StatusCode.OK
            self.calls.append(CallRecord(key, compressed, batch, code, time.monotonic(), metadata))
            if failure is None:
                response = self._judge(batch)
        if failure is not None:
            status = _wire.status_details(failure.code.value[0], failure.details, failure.retry_after_s)
            context.set_trailing_metadata(((_wire.STATUS_DETAILS_KEY, status),))
            context.abort(failure.code, failure.details)
        return response

    def _judge(self, batch: collector_pb2.EventBatch) -> collector_pb2.CollectResponse:
        """Accept / duplicate / reject each event (caller holds the lock)."""
        response = collector_pb2.CollectResponse(batch_id=batch.batch_id)
        for index, event in enumerate(batch.events):
            self.received_ids.append(event.event_id)
            verdict = self.reject(event) if self.reject is not None else None
            if verdict is not None:
                reason, field, message = verdict
                response.statuses.append(collector_pb2.EVENT_STATUS_REJECTED)
                response.rejections.add(
                    index=index,
                    event_id=event.event_id,
                    reason=reason,
                    field=f"events[{index}].{field}",
                    message=message,
                )
                response.rejected += 1
            elif event.event_id in self.accepted_ids:
                response.statuses.append(collector_pb2.EVENT_STATUS_DUPLICATE)
                response.duplicates += 1
            else:
                self.accepted_ids.add(event.event_id)
                response.statuses.append(collector_pb2.EVENT_STATUS_ACCEPTED)
                response.accepted += 1
        return response

    def _collect(self, raw: bytes, context: grpc.ServicerContext) -> collector_pb2.CollectResponse:
        return self._answer(raw, context)

    def _collect_stream(
        self, requests: Iterator[bytes], context: grpc.ServicerContext
    ) -> Iterator[collector_pb2.CollectResponse]:
        for raw in requests:
            yield self._answer(raw, context)
