"""What the collector writes: LoggedBatch (accepted events, stamped) and BadEvent (one per rejection).

LoggedBatch bytes are made without copying events message by message: the request's EventBatch, with the
non-accepted events deleted and `batch_id` cleared, is serialized once by upb; its top level is then only
`events` entries (field 1), which are re-tagged as LoggedBatch `events` (field 3) and appended to the
serialized stamp fields. Protobuf allows fields in any order, so the result parses as the same LoggedBatch
that `LoggedBatch(events=[...])` would give.
"""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from collector_svc.iptrunc import truncate_ip
from collector_svc.validation import Rejection
from gnomon.v1 import collector_pb2 as cpb
from gnomon.v1 import event_pb2

_BATCH_EVENTS_TAG = 0x0A  # EventBatch.events: field 1, length-delimited
_LOGGED_EVENTS_TAG = 0x1A  # LoggedBatch.events: field 3, length-delimited
BAD_BATCH_PAYLOAD_LIMIT = 64 * 1024


def retag_events(event_batch_bytes: bytes) -> bytes:
    """Turn a serialized EventBatch holding only `events` into the `events` entries of a LoggedBatch.

    Raises ValueError when another top-level field is present (the caller clears them) or the bytes are cut.
    """
    buf = bytearray(event_batch_bytes)
    n = len(buf)
    pos = 0
    try:
        while pos < n:
            if buf[pos] != _BATCH_EVENTS_TAG:
                raise ValueError(f"unexpected top-level tag {buf[pos]:#x} at byte {pos}")
            buf[pos] = _LOGGED_EVENTS_TAG
            b1 = buf[pos + 1]
            if b1 < 0x80:  # events up to 127 bytes
                pos += 2 + b1
                continue
            b2 = buf[pos + 2]
            if b2 < 0x80:  # up to 16 KiB: the usual case
                pos += 3 + ((b1 & 0x7F) | (b2 << 7))
                continue
            pos += 1
            length = shift = 0
            while True:
                byte = buf[pos]
                pos += 1
                length |= (byte & 0x7F) << shift
                if byte < 0x80:
                    break
                shift += 7
            pos += length
    except IndexError:
        raise ValueError("truncated EventBatch bytes") from None
    if pos != n:
        raise ValueError("truncated EventBatch bytes")
    return bytes(buf)


def stamp_header(merchant_id: str, received: Timestamp, traceparent: str, collector_id: str) -> bytes:
    """The serialized LoggedBatch fields other than `events`."""
    header = event_pb2.LoggedBatch(merchant_id=merchant_id, traceparent=traceparent, collector_id=collector_id)
    header.received_time.CopyFrom(received)
    return header.SerializeToString()


def logged_batch_bytes(header: bytes, batch: cpb.EventBatch) -> bytes:
    """Serialized LoggedBatch: `header` plus every event left in `batch` (its batch_id is cleared)."""
    batch.ClearField("batch_id")
    return header + retag_events(batch.SerializeToString())


def bad_event_bytes(
    merchant_id: str, received: Timestamp, reason: str, *, field: str, message: str, payload: bytes
) -> bytes:
    bad = event_pb2.BadEvent(merchant_id=merchant_id, reason=reason, field=field, message=message, payload=payload)
    bad.received_time.CopyFrom(received)
    return bad.SerializeToString()


def rejection_bad_event(
    merchant_id: str, received: Timestamp, index: int, rejection: Rejection, event: event_pb2.Event
) -> bytes:
    """A BadEvent for one rejected event; `event` must already have its ip truncated or cleared."""
    return bad_event_bytes(
        merchant_id,
        received,
        cpb.RejectReason.Name(rejection.reason),
        field=f"events[{index}].{rejection.field}",
        message=rejection.message,
        payload=event.SerializeToString(),
    )


def scrubbed_prefix(batch: cpb.EventBatch, limit: int = BAD_BATCH_PAYLOAD_LIMIT) -> bytes:
    """At most `limit` bytes of `batch` re-serialized with every ip truncated or cleared.

    Never the raw request bytes, which may hold full addresses. Mutates the events' ip fields.
    """
    out = cpb.EventBatch(batch_id=batch.batch_id)
    size = 0
    for ev in batch.events:
        if ev.ip:
            ev.ip = truncate_ip(ev.ip) or ""
        out.events.append(ev)
        size += ev.ByteSize()
        if size >= limit:
            break
    return out.SerializeToString()[:limit]
