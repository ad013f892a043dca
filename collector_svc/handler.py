"""The collect pipeline for one batch, independent of gRPC: bytes in, CollectResponse out (or a failure).

    slot -> parse -> rate limit -> whole-batch checks -> screen (validate, truncate IPs, in-batch dups)
         -> recent-ids dedup -> stamp -> publish LoggedBatch + BadEvents -> wait durable -> remember ids
         -> answer

Blocking: `handle` returns only after the event log reported every message of the batch durable, so an
ACCEPTED status is a promise that the event is in the log. It raises (and writes nothing more) on:
Overloaded (all in-flight slots taken), RateLimited, BatchRejected (after logging the batch as a BadEvent),
LogBackpressure / LogUnavailable (from the log), TimeoutError (the log did not confirm in time).
`collector_svc.errors` turns each into its status. If the LoggedBatch became durable but a BadEvent did not,
the call still fails (UNAVAILABLE): the retry finds the accepted events DUPLICATE and re-logs the bad ones.

Two ways through parse + screen + encode, with the same answers and the same LoggedBatch (map entries aside,
whose order upb leaves unspecified; the fast path writes them in upb's deterministic order):
- fast (when the Rust extension `gnomon_fastpath` is importable; `screen.FastScreen`): the request bytes are
  screened in one pass without Python objects per event, only flagged events are parsed and judged in Python,
  and the LoggedBatch events are re-encoded by the extension;
- pure Python (the reference, and the fallback for every batch the fast path does not decide): upb parses the
  batch, `screen.EventScreen` judges it, upb serializes what is kept.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn

from google.protobuf.message import DecodeError
from google.protobuf.timestamp_pb2 import Timestamp

from collector_svc.dedup import RecentIds
from collector_svc.errors import BatchRejected, Overloaded, RateLimited
from collector_svc.iptrunc import request_client_ip
from collector_svc.metrics import CollectorMetrics
from collector_svc.ratelimit import RateLimiter
from collector_svc.screen import EventScreen, FastScreen, ScannedBatch
from collector_svc.settings import CollectorSettings
from collector_svc.stamping import (
    bad_event_bytes,
    logged_batch_bytes,
    rejection_bad_event,
    scrubbed_prefix,
    stamp_header,
)
from collector_svc.validation import (
    MAX_EVENT_ID,
    BatchProblem,
    Rejection,
    Violation,
    Window,
    batch_problems,
)
from gnomon.eventlog.port import EventLog, EventLogError, OutgoingMessage, Position, Stream
from gnomon.v1 import collector_pb2 as cpb
from gnomon.v1 import event_pb2

Clock = Callable[[], datetime]
log = logging.getLogger(__name__)

ACCEPTED = cpb.EVENT_STATUS_ACCEPTED
DUPLICATE = cpb.EVENT_STATUS_DUPLICATE
REJECTED = cpb.EVENT_STATUS_REJECTED


@dataclass(frozen=True)
class CallInfo:
    """What the pipeline needs to know about the call besides its bytes."""

    merchant_id: str  # from the write key, never from the payload
    peer: str  # gRPC peer string, for the client address fallback
    metadata: Any  # invocation metadata (x-forwarded-for)
    traceparent: str  # W3C trace context of the collect span, "" when none


def _wait(future: Future[Position] | None, deadline: float) -> BaseException | None:
    if future is None:
        return None
    try:
        future.result(timeout=max(0.0, deadline - time.monotonic()))
    except Exception as exc:  # LogUnavailable, LogBackpressure, TimeoutError, adapter bugs
        return exc
    return None


class BatchHandler:
    """Runs the pipeline; thread-safe, one instance per server."""

    def __init__(
        self,
        settings: CollectorSettings,
        event_log: EventLog,
        clock: Clock,
        metrics: CollectorMetrics,
        *,
        fastpath: bool = True,
    ) -> None:
        """`fastpath=False` forces the pure-Python path (the reference) even when the extension is installed."""
        self._log = event_log
        self._clock = clock
        self._metrics = metrics
        self._collector_id = settings.collector_id
        self._trusted = settings.trusted_proxies
        self._timeout_s = settings.publish_timeout_s
        self._max_in_flight = settings.max_in_flight_batches
        self._slots = threading.BoundedSemaphore(settings.max_in_flight_batches)
        self._limiter = RateLimiter(settings.rate_limit_events_per_s, settings.rate_limit_burst)
        self._recent = RecentIds(settings.dedup_cache_size)
        self._screen = EventScreen()
        self._fast = FastScreen.load() if fastpath else None
        if self._fast is not None:
            log.info("collector %s screens batches on the Rust fast path (gnomon_fastpath)", self._collector_id)
        else:
            reason = "disabled" if not fastpath else "gnomon_fastpath is not installed"
            log.info("collector %s screens batches on the pure-Python path (%s)", self._collector_id, reason)

    def handle(self, raw: bytes, call: CallInfo) -> cpb.CollectResponse:
        """Process one serialized EventBatch for `call.merchant_id`; see the module docstring."""
        if not self._slots.acquire(blocking=False):
            raise Overloaded(f"this collector already handles {self._max_in_flight} batches; retry with backoff")
        try:
            return self._handle(raw, call)
        finally:
            self._slots.release()

    def _charge(self, merchant_id: str, events: int) -> None:
        wait_s = self._limiter.acquire(merchant_id, events)
        if wait_s > 0:
            raise RateLimited(
                f"merchant {merchant_id} is over its rate limit; retry in {wait_s:.3f} s",
                retry_after_s=wait_s,
            )

    def _refuse(self, call: CallInfo, received: Timestamp, violations: Sequence[Violation], payload: bytes) -> NoReturn:
        """Log the whole batch as one BadEvent, wait until durable, then raise BatchRejected."""
        first = violations[0]
        message = "; ".join(v.description for v in violations)
        bad = bad_event_bytes(
            call.merchant_id,
            received,
            first.problem.value,
            field=first.field,
            message=message,
            payload=payload,
        )
        future = self._log.publish(Stream.BAD_EVENTS, call.merchant_id, bad)
        error = _wait(future, time.monotonic() + self._timeout_s)
        if error is not None:
            raise error
        raise BatchRejected(violations)

    def _handle(self, raw: bytes, call: CallInfo) -> cpb.CollectResponse:
        started = time.perf_counter()
        merchant_id = call.merchant_id
        received_at = self._clock()
        received = Timestamp()
        received.FromDatetime(received_at)
        window = Window.around(received_at)
        scanned = self._fast.scan(raw, window) if self._fast is not None else None
        if scanned is not None:
            return self._handle_scanned(scanned, call, started, received, window)
        try:
            batch = cpb.EventBatch.FromString(raw)
        except DecodeError:
            self._charge(merchant_id, 1)
            description = f"the {len(raw)} request bytes are not a gnomon.v1.EventBatch message"
            self._refuse(call, received, [Violation(BatchProblem.UNPARSEABLE, "batch", description)], b"")
        events = batch.events
        n = len(events)
        self._charge(merchant_id, n)
        problems = batch_problems(len(raw), n)
        if problems:
            self._refuse(call, received, problems, scrubbed_prefix(batch))
        batch.DiscardUnknownFields()
        fallback_ip = request_client_ip(call.peer, call.metadata, self._trusted)
        ids, rejected = self._screen.screen(events, window, fallback_ip)

        def encode(header: bytes, dropped: set[int]) -> bytes:
            for i in sorted(dropped, reverse=True):
                del events[i]
            return logged_batch_bytes(header, batch)

        return self._finish(call, started, received, batch.batch_id, ids, rejected, events.__getitem__, encode)

    def _handle_scanned(
        self, scanned: ScannedBatch, call: CallInfo, started: float, received: Timestamp, window: Window
    ) -> cpb.CollectResponse:
        """The fast path after the Rust screen; same steps and answers as the pure-Python path of `_handle`."""
        self._charge(call.merchant_id, len(scanned))
        fallback_ip = request_client_ip(call.peer, call.metadata, self._trusted) if scanned.empty_ip else None
        ids, rejected, checked, ips = FastScreen.judge(scanned, window, fallback_ip)

        def encode(header: bytes, dropped: set[int]) -> bytes:
            return scanned.logged_batch(header, sorted(dropped), ips, fallback_ip or "")

        return self._finish(call, started, received, scanned.batch_id, ids, rejected, checked.__getitem__, encode)

    def _finish(
        self,
        call: CallInfo,
        started: float,
        received: Timestamp,
        batch_id: str,
        ids: list[str],
        rejected: dict[int, Rejection],
        rejected_event: Callable[[int], event_pb2.Event],
        encode: Callable[[bytes, set[int]], bytes],
    ) -> cpb.CollectResponse:
        """Recent-ids dedup, BadEvents for `rejected` (`rejected_event(i)`: event i with its ip already
        truncated), the LoggedBatch (`encode(header, dropped)`), publish and wait, answer."""
        merchant_id = call.merchant_id
        n = len(ids)
        duplicates = self._recent.duplicates(merchant_id, ids, rejected)
        bad_messages = [
            OutgoingMessage(merchant_id, rejection_bad_event(merchant_id, received, i, r, rejected_event(i)))
            for i, r in sorted(rejected.items())
        ]
        dropped = {*rejected, *duplicates}
        accepted_ids = [eid for i, eid in enumerate(ids) if i not in dropped] if dropped else ids
        payload: bytes | None = None
        if accepted_ids:
            payload = encode(stamp_header(merchant_id, received, call.traceparent, self._collector_id), dropped)
        self._publish_and_wait(call, payload, accepted_ids, bad_messages)
        response = _response(batch_id, n, ids, accepted=len(accepted_ids), duplicates=duplicates, rejected=rejected)
        self._metrics.batch_done(len(accepted_ids), len(duplicates), rejected.values(), time.perf_counter() - started)
        return response

    def _publish_and_wait(
        self,
        call: CallInfo,
        payload: bytes | None,
        accepted_ids: list[str],
        bad_messages: list[OutgoingMessage],
    ) -> None:
        """Publish the LoggedBatch (if any event is accepted) and the BadEvents; wait until all are durable.

        Remembers the accepted ids as soon as the LoggedBatch is durable; raises the first failure.
        """
        merchant_id = call.merchant_id
        main: Future[Position] | None = None
        if payload is not None:
            properties = {"collector_id": self._collector_id}
            if call.traceparent:
                properties["traceparent"] = call.traceparent
            main = self._log.publish(Stream.EVENTS, merchant_id, payload, properties)
        bad_futures: list[Future[Position]] = []
        bad_error: BaseException | None = None
        if bad_messages:
            try:
                bad_futures = self._log.publish_many(Stream.BAD_EVENTS, bad_messages)
            except EventLogError as exc:
                bad_error = exc
        deadline = time.monotonic() + self._timeout_s
        main_error = _wait(main, deadline)
        if main is not None and main_error is None:
            self._recent.add(merchant_id, accepted_ids)
        for future in bad_futures:
            bad_error = bad_error or _wait(future, deadline)
        if main_error is not None:
            raise main_error
        if bad_error is not None:
            raise bad_error


def _response(
    batch_id: str,
    n: int,
    ids: list[str],
    *,
    accepted: int,
    duplicates: list[int],
    rejected: dict[int, Rejection],
) -> cpb.CollectResponse:
    """One status per event in batch order, one Rejection per REJECTED status, and the totals."""
    response = cpb.CollectResponse(
        batch_id=batch_id, accepted=accepted, duplicates=len(duplicates), rejected=len(rejected)
    )
    if rejected or duplicates:
        statuses = [ACCEPTED] * n
        for i in duplicates:
            statuses[i] = DUPLICATE
        for i in rejected:
            statuses[i] = REJECTED
        response.statuses.extend(statuses)
        response.rejections.extend(
            cpb.Rejection(
                index=i,
                event_id=ids[i][:MAX_EVENT_ID],
                reason=r.reason,
                field=f"events[{i}].{r.field}",
                message=r.message,
            )
            for i, r in sorted(rejected.items())
        )
    else:
        response.statuses.extend([ACCEPTED] * n)
    return response
