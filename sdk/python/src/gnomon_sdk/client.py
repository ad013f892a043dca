"""`Client`: queue events, batch them, send them to the collectors from one background thread.

Delivery model
--------------
Every event gets a client-made `event_id` (uuid4 hex unless given), so any resend is idempotent: the collector
answers DUPLICATE for an id it already accepted, and the SDK counts DUPLICATE as delivered.

Events are grouped into *segments*; a segment is one outgoing batch (at most `batch_size` events and just
under 1 MiB serialized). The open segment is sealed when it is full, when its oldest event has waited
`flush_interval_s`, or on `flush()`/`close()`. The sender thread sends sealed segments in order, one
`Collect` call at a time, round-robin over the endpoints.

Retries: UNAVAILABLE, RESOURCE_EXHAUSTED and DEADLINE_EXCEEDED are retried with exponential backoff and full
jitter (`uniform(0, min(backoff_max_s, backoff_base_s * 2**attempt))`), or exactly the delay of a
`google.rpc.RetryInfo` in the trailing `grpc-status-details-bin` when the collector sends one. UNAVAILABLE
fails over to the next endpoint at once until every endpoint failed in a row. Any other status
(INVALID_ARGUMENT, UNAUTHENTICATED, PERMISSION_DENIED, ...) is not retried: the batch is reported through
`on_error`, counted as failed and, with a spool, appended to `<spool_dir>/dead-letter.log`. Per-event
REJECTED answers are reported through `on_error` (one report per event, with the reason), never retried.

Durability
----------
Without `spool_dir`: events live in memory only. At most `max_queue_events` events are pending (queued or in
flight); `track` raises `QueueFull` beyond that. After `max_retries` retryable failures a batch is dropped and
reported (`RETRIES_EXHAUSTED`); `close()` reports what it could not deliver as `DROPPED`. A process crash
loses what was pending.

With `spool_dir` (write-ahead spool, see `gnomon_sdk.spool`): `track` appends the event to the open segment
file with one write(2) before it returns, so a returned `track` survives a crash or SIGKILL of the process.
Segments are fsync'd when sealed, so they survive an OS crash/power loss from then on: what is at risk on
power loss is only the open segment (at most `batch_size` events, at most `flush_interval_s` old), and
`flush()` closes even that window. A segment file is deleted only after the collector acknowledged all of its
events; a new Client on the same directory resends whatever is left (duplicates carry the same ids). Memory
holds at most `max_queue_events` events; beyond that, segments stay on disk only and are read back when sent.
The spool holds at most `max_spool_bytes`; `track` raises `SpoolFull` (a `QueueFull`) beyond that. Retryable
failures are never given up on while the client runs (after `max_retries` one `RETRIES_EXHAUSTED` report
says so).

Thread-safety: `track`, `page`, `flush` and `stats` may be called from any thread. `on_error` and
`call_metadata` (extra gRPC metadata per Collect call, e.g. a W3C `traceparent` from your tracer) run on the
sender thread: keep them short; `flush()` called from there returns immediately. Not fork-safe: create the
Client in the process that uses it.
"""

from __future__ import annotations

import atexit
import logging
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from types import TracebackType
from typing import Unpack

import grpc

from gnomon_sdk import _wire
from gnomon_sdk._event import EventFields, build_event, event_ids
from gnomon_sdk._proto.gnomon.v1 import collector_pb2
from gnomon_sdk._transport import Transport, status_of, trailing_metadata
from gnomon_sdk.errors import ClientClosed, DeliveryError, ErrorKind, QueueFull, SpoolFull
from gnomon_sdk.results import FlushResult, Stats
from gnomon_sdk.spool import RECORD_OVERHEAD, SegmentWriter, Spool

logger = logging.getLogger("gnomon_sdk")

RETRYABLE = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.DEADLINE_EXCEEDED}
)
_BATCH_BYTES = _wire.MAX_BATCH_BYTES - 1024  # room for the batch_id
_ACCEPTED = collector_pb2.EVENT_STATUS_ACCEPTED
_DUPLICATE = collector_pb2.EVENT_STATUS_DUPLICATE
_REJECTED = collector_pb2.EVENT_STATUS_REJECTED


@dataclass
class _Counters:
    tracked: int = 0
    sent: int = 0
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    failed: int = 0
    retries: int = 0
    batches: int = 0
    spooled: int = 0
    spilled: int = 0
    recovered: int = 0


class _Segment:
    """One outgoing batch: its events (None when only on disk), size and, with a spool, its file."""

    __slots__ = ("count", "events", "file_size", "opened_at", "path", "seq", "wire_bytes", "writer")

    def __init__(self, seq: int, events: list[bytes] | None = None) -> None:
        self.seq = seq
        self.events = events
        self.count = 0
        self.wire_bytes = 0
        self.opened_at = time.monotonic()
        self.writer: SegmentWriter | None = None  # while open, with a spool
        self.path: Path | None = None
        self.file_size = 0


@dataclass(frozen=True)
class _Failure:
    kind: ErrorKind
    code: grpc.StatusCode
    details: str


class Client:
    """Sends analytics events to Gnomon collectors. See the module docstring for the delivery guarantees.

    Raises ValueError for invalid settings and SpoolLocked when another live client uses `spool_dir`.
    Construction with a spool reads the whole spool once (recovery) and blocks for that long.
    """

    def __init__(
        self,
        write_key: str,
        endpoints: Sequence[str] = ("127.0.0.1:50051",),
        *,
        batch_size: int = _wire.MAX_BATCH_EVENTS,
        flush_interval_s: float = 1.0,
        max_queue_events: int = 100_000,
        spool_dir: str | Path | None = None,
        max_spool_bytes: int = 512 << 20,
        gzip: bool = True,
        tls: bool | grpc.ChannelCredentials = False,
        timeout_s: float = 10.0,
        max_retries: int = 10,
        backoff_base_s: float = 0.1,
        backoff_max_s: float = 10.0,
        on_error: Callable[[DeliveryError], None] | None = None,
        call_metadata: Callable[[], Iterable[tuple[str, str]]] | None = None,
    ) -> None:
        if not write_key:
            raise ValueError("write_key is required")
        if isinstance(endpoints, str):
            endpoints = (endpoints,)
        if not 1 <= batch_size <= _wire.MAX_BATCH_EVENTS:
            raise ValueError(f"batch_size must be between 1 and {_wire.MAX_BATCH_EVENTS}")
        if flush_interval_s <= 0 or timeout_s <= 0 or backoff_base_s < 0 or backoff_max_s < 0:
            raise ValueError("flush_interval_s and timeout_s must be > 0, backoffs >= 0")
        if max_queue_events < 1 or max_retries < 0 or max_spool_bytes < 1:
            raise ValueError("max_queue_events and max_spool_bytes must be >= 1, max_retries >= 0")
        self._batch_size = batch_size
        self._flush_interval_s = flush_interval_s
        self._max_queue = max_queue_events
        self._max_spool_bytes = max_spool_bytes
        self._max_retries = max_retries
        self._backoff = (backoff_base_s, backoff_max_s)
        self._on_error = on_error
        self._call_metadata = call_metadata
        self._uid = uuid.uuid4().hex[:12]
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._counters = _Counters()
        self._active: _Segment | None = None
        self._sealed: deque[_Segment] = deque()
        self._inflight: _Segment | None = None
        self._pending = 0
        self._mem_events = 0
        self._backing_off = False
        self._closing = False
        self._closed_result: FlushResult | None = None
        self._close_lock = threading.Lock()
        self._close_on_exit = False
        self._broken: BaseException | None = None
        self._spool = Spool(spool_dir) if spool_dir is not None else None
        try:
            self._transport = Transport(endpoints, write_key, tls=tls, gzip=gzip, timeout_s=timeout_s)
            self._next_seq = self._recover()
        except BaseException:
            if self._spool is not None:
                self._spool.close()
            raise
        self._done_seq = self._sealed[0].seq - 1 if self._sealed else self._next_seq - 1
        self._thread = threading.Thread(target=self._run, name="gnomon-sdk-sender", daemon=True)
        self._thread.start()
        atexit.register(self._close_at_exit)

    # ----------------------------------------------------------------------------------------- public API

    def track(self, name: str, *, client_id: str, event_id: str | None = None, **fields: Unpack[EventFields]) -> str:
        """Queue one event; returns its event id. Does not wait for the network.

        With a spool the event is on disk (one write(2)) when this returns. Raises QueueFull (no spool, queue
        full), SpoolFull (spool full), ClientClosed, ValueError/TypeError for invalid arguments, OSError when
        the spool cannot be written.
        """
        event_id, data = build_event(name, client_id, event_id, fields)
        self._enqueue(data)
        return event_id

    def page(
        self,
        url: str,
        *,
        client_id: str,
        title: str | None = None,
        event_id: str | None = None,
        **fields: Unpack[EventFields],
    ) -> str:
        """`track("page_view", page_url=url, page_title=title, ...)`; `referrer=` is an ordinary field."""
        fields["page_url"], fields["page_title"] = url, title
        return self.track("page_view", client_id=client_id, event_id=event_id, **fields)

    def flush(self, timeout_s: float | None = None) -> FlushResult:
        """Block until every event tracked before this call is acknowledged or given up, or spooled.

        Seals the open batch first. With a spool, returns as soon as the collector is failing (the events are
        fsync'd in the spool and will be resent), instead of waiting out an outage. `timeout_s=None` waits
        without limit. Called from `on_error` (the sender thread) it returns at once.
        """
        with self._cond:
            if self._active is not None:
                self._seal_locked()
            target = self._next_seq - 1
        if threading.current_thread() is self._thread:
            return self._result(target, timed_out=False)
        return self._wait(target, timeout_s)

    def close(self, timeout_s: float | None = 10.0) -> FlushResult:
        """Flush (up to `timeout_s`), stop the sender and release the channels and the spool. Idempotent.

        Without a spool, events still undelivered after the timeout are reported as DROPPED; with a spool they
        stay on disk for the next Client on that directory. Called from `on_error` (the sender thread) it does
        not wait: the sender stops after the callback and releases everything itself.
        """
        with self._cond:
            if self._closed_result is not None:
                return self._closed_result
            self._closing = True
            if self._active is not None:
                self._seal_locked()
            target = self._next_seq - 1
            self._cond.notify_all()
        if threading.current_thread() is self._thread:
            self._close_on_exit = True
            self._stop.set()
            return self._result(target, timed_out=False)
        with self._close_lock:
            if self._closed_result is not None:
                return self._closed_result
            result = self._wait(target, timeout_s)
            self._stop.set()
            self._transport.cancel()
            with self._cond:
                self._cond.notify_all()
            self._thread.join()
            self._teardown(result)
            return result

    def _teardown(self, result: FlushResult) -> None:
        """Release everything once the sender stopped (idempotent)."""
        with self._cond:
            if self._closed_result is not None:
                return
            self._closed_result = result
        self._drop_leftovers()
        self._transport.close()
        if self._spool is not None:
            self._spool.close()
        atexit.unregister(self._close_at_exit)

    def stats(self) -> Stats:
        """A consistent snapshot of the counters."""
        with self._cond:
            values = {f.name: getattr(self._counters, f.name) for f in fields(_Counters)}
            return Stats(**values, pending=self._pending)

    @property
    def endpoints(self) -> tuple[str, ...]:
        return self._transport.endpoints

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ----------------------------------------------------------------------------------------- queueing

    def _recover(self) -> int:
        if self._spool is None:
            return 1
        for found in self._spool.recover():
            seg = _Segment(found.seq)
            seg.count, seg.path, seg.file_size = found.count, found.path, found.size
            self._sealed.append(seg)
            self._pending += found.count
            self._counters.recovered += found.count
        if self._sealed:
            logger.info("resending %d events found in spool %s", self._pending, self._spool.directory)
        return self._spool.next_seq()

    def _enqueue(self, data: bytes) -> None:
        framed = _wire.framed_size(len(data))
        spool = self._spool
        with self._cond:
            if self._closing or self._broken is not None:
                raise ClientClosed("the client is closed" if self._broken is None else "the sender thread crashed")
            if spool is None:
                if self._pending >= self._max_queue:
                    raise QueueFull(f"{self._pending} events are pending (max_queue_events={self._max_queue})")
            elif spool.total_bytes + len(data) + RECORD_OVERHEAD > self._max_spool_bytes:
                raise SpoolFull(
                    f"spool {spool.directory} holds {spool.total_bytes} bytes (max {self._max_spool_bytes})"
                )
            seg = self._active
            if seg is not None and seg.wire_bytes + framed > _BATCH_BYTES:
                self._seal_locked()
                seg = None
            if seg is None:
                seg = self._open_locked()
            if seg.writer is not None and spool is not None:
                spool.total_bytes += seg.writer.append(data)
                self._counters.spooled += 1
            if seg.events is not None and self._mem_events < self._max_queue:
                seg.events.append(data)
                self._mem_events += 1
            else:
                if seg.events is not None:  # memory budget reached: this segment lives on disk only
                    self._mem_events -= len(seg.events)
                    self._counters.spilled += len(seg.events)
                    seg.events = None
                self._counters.spilled += 1
            seg.count += 1
            seg.wire_bytes += framed
            self._pending += 1
            self._counters.tracked += 1
            if seg.count >= self._batch_size:
                self._seal_locked()

    def _open_locked(self) -> _Segment:
        seg = _Segment(self._next_seq, [])
        self._next_seq += 1
        if self._spool is not None:
            writer = self._spool.open_segment(seg.seq)
            seg.writer, seg.path = writer, writer.path
        self._active = seg
        self._cond.notify_all()  # the sender starts the segment's flush timer
        return seg

    def _seal_locked(self) -> None:
        seg, self._active = self._active, None
        if seg is None:
            return
        if seg.writer is not None:
            try:
                seg.writer.seal()
            except OSError:
                logger.exception("could not fsync spool segment %s; it is sent anyway", seg.path)
            seg.file_size = seg.writer.size
            seg.writer = None
        self._sealed.append(seg)
        self._cond.notify_all()

    # ----------------------------------------------------------------------------------------- waiting

    def _wait(self, target: int, timeout_s: float | None) -> FlushResult:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        timed_out = False
        with self._cond:
            while self._done_seq < target and not self._stop.is_set() and self._thread.is_alive():
                if self._spool is not None and self._backing_off:
                    break  # outage: everything targeted is sealed, i.e. fsync'd in the spool
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    timed_out = True
                    break
                self._cond.wait(remaining)
        return self._result(target, timed_out)

    def _result(self, target: int, timed_out: bool) -> FlushResult:
        with self._cond:
            segs = [self._inflight, *self._sealed, self._active]
            pending = sum(s.count for s in segs if s is not None and s.seq <= target)
        durable = self._spool is not None
        return FlushResult(complete=pending == 0, pending=pending, durable=durable or pending == 0, timed_out=timed_out)

    # ----------------------------------------------------------------------------------------- sending

    def _run(self) -> None:
        try:
            while True:
                with self._cond:
                    seg = self._next_locked()
                if seg is None:
                    break
                self._deliver(seg)
        except BaseException as exc:
            logger.exception("gnomon_sdk sender thread crashed; the client accepts no more events")
            with self._cond:
                self._broken = exc
                self._cond.notify_all()
        if self._close_on_exit:  # close() was called from a callback on this thread
            self._teardown(self._result(self._next_seq - 1, timed_out=False))

    def _next_locked(self) -> _Segment | None:
        """The next sealed segment (sealing the open one when due), or None when the sender must stop."""
        while True:
            if self._stop.is_set():
                return None
            now = time.monotonic()
            active = self._active
            if active is not None and (self._closing or now - active.opened_at >= self._flush_interval_s):
                self._seal_locked()
                active = None
            if self._sealed:
                self._inflight = self._sealed.popleft()
                return self._inflight
            if self._closing:
                return None
            timeout = None if active is None else max(0.0, active.opened_at + self._flush_interval_s - now)
            self._cond.wait(timeout)

    def _deliver(self, seg: _Segment) -> None:
        events = seg.events
        if events is None:
            assert self._spool is not None
            assert seg.path is not None
            try:
                events = self._spool.read_segment(seg.path)
            except OSError as exc:
                logger.error("spool segment %s is unreadable (%s); %d events lost", seg.path, exc, seg.count)
                self._report(DeliveryError(ErrorKind.FAILED, (), "SPOOL_UNREADABLE", str(exc)))
                self._finish(seg, failed=seg.count)
                return
        runs = _wire.split_batches(events, self._batch_size, _BATCH_BYTES)
        for i, run in enumerate(runs):
            batch_id = f"{self._uid}-{seg.seq}" + (f".{i}" if len(runs) > 1 else "")
            payload = _wire.encode_batch(run, batch_id)
            outcome = self._send(payload, run)
            if outcome is None:  # stopping: leave the segment for close() (memory) or the next client (spool)
                with self._cond:
                    self._sealed.appendleft(seg)
                    self._inflight = None
                    self._cond.notify_all()
                return
            if isinstance(outcome, _Failure):
                self._fail(run, payload, batch_id, outcome)
            else:
                self._settle(run, outcome)
        self._finish(seg)

    def _finish(self, seg: _Segment, failed: int = 0) -> None:
        with self._cond:
            self._pending -= seg.count
            self._counters.failed += failed
            if seg.events is not None:
                self._mem_events -= len(seg.events)
            if self._spool is not None and seg.path is not None:
                self._spool.remove(seg.path, seg.file_size)
            self._done_seq = seg.seq
            self._inflight = None
            self._cond.notify_all()

    def _send(self, payload: bytes, run: Sequence[bytes]) -> collector_pb2.CollectResponse | _Failure | None:
        """One batch until answered, given up (a _Failure) or the client stops (None)."""
        attempt = streak = 0
        reported = False
        while not self._stop.is_set():
            try:
                extra = tuple(self._call_metadata()) if self._call_metadata is not None else ()
                response = self._transport.collect(payload, extra)
            except grpc.RpcError as err:
                if self._stop.is_set():
                    return None
                code, details = status_of(err)
                if code not in RETRYABLE:
                    return _Failure(ErrorKind.FAILED, code, details)
                attempt += 1
                with self._cond:
                    self._counters.retries += 1
                    self._backing_off = True
                    self._cond.notify_all()
                delay = _wire.retry_delay_s(trailing_metadata(err))
                if attempt > self._max_retries:
                    if self._spool is None:
                        return _Failure(ErrorKind.RETRIES_EXHAUSTED, code, details)
                    if not reported:
                        reported = True
                        message = f"{details} (still retrying; the events are kept in the spool)"
                        self._report(
                            DeliveryError(ErrorKind.RETRIES_EXHAUSTED, event_ids(run), code.name, message, code)
                        )
                if code is grpc.StatusCode.UNAVAILABLE:
                    self._transport.rotate()
                    streak += 1
                    if delay is None and streak < len(self._transport.endpoints):
                        continue  # fail over to the next endpoint at once
                    streak = 0
                if delay is None:
                    base, cap = self._backoff
                    delay = random.uniform(0.0, min(cap, base * 2.0 ** min(attempt - 1, 32)))  # noqa: S311
                if self._stop.wait(delay):
                    return None
            else:
                self._transport.rotate()
                with self._cond:
                    self._backing_off = False
                return response
        return None

    def _settle(self, run: Sequence[bytes], response: collector_pb2.CollectResponse) -> None:
        n = len(run)
        statuses = list(response.statuses)
        if len(statuses) == n:
            accepted, duplicate = statuses.count(_ACCEPTED), statuses.count(_DUPLICATE)
            rejected = statuses.count(_REJECTED)
        else:
            accepted, duplicate, rejected = response.accepted, response.duplicates, response.rejected
        with self._cond:
            c = self._counters
            c.sent += n
            c.batches += 1
            c.accepted += accepted
            c.duplicate += duplicate
            c.rejected += rejected
        for rej in response.rejections:
            event_id = rej.event_id or (event_ids(run[rej.index : rej.index + 1])[0] if rej.index < n else "")
            try:
                reason = collector_pb2.RejectReason.Name(rej.reason)
            except ValueError:
                reason = str(rej.reason)
            self._report(DeliveryError(ErrorKind.REJECTED, (event_id,), reason, rej.message, field=rej.field))

    def _fail(self, run: Sequence[bytes], payload: bytes, batch_id: str, failure: _Failure) -> None:
        dead = ""
        if self._spool is not None and failure.kind is ErrorKind.FAILED:
            try:
                dead = str(self._spool.dead_letter(payload, batch_id, f"{failure.code.name}: {failure.details}"))
            except OSError:
                logger.exception("could not write the dead-letter file")
        with self._cond:
            self._counters.failed += len(run)
        error = DeliveryError(
            failure.kind, event_ids(run), failure.code.name, failure.details, failure.code, dead_letter=dead
        )
        self._report(error)

    def _drop_leftovers(self) -> None:
        """After the sender stopped: without a spool, report what is still queued as DROPPED."""
        with self._cond:
            segs = [s for s in (self._inflight, *self._sealed, self._active) if s is not None]
            self._inflight, self._active = None, None
            self._sealed.clear()
            if self._spool is not None or not segs:
                return
            count = sum(s.count for s in segs)
            self._pending -= count
            self._counters.failed += count
        ids = tuple(i for s in segs for i in event_ids(s.events or ()))
        self._report(DeliveryError(ErrorKind.DROPPED, ids, "CLOSED", "client closed before delivery"))

    def _report(self, error: DeliveryError) -> None:
        callback = self._on_error
        if callback is None:
            logger.warning(
                "gnomon: %s %d event(s): %s %s %s",
                error.kind,
                len(error.event_ids),
                error.reason,
                error.field,
                error.message,
            )
            return
        try:
            callback(error)
        except Exception:
            logger.exception("on_error callback raised")

    def _close_at_exit(self) -> None:
        self.close(timeout_s=5.0)
