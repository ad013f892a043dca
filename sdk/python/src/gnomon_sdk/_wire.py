"""Wire-level helpers: build serialized `EventBatch` bytes from serialized events; read RetryInfo.

`EventBatch` is `repeated Event events = 1; string batch_id = 2;`. A repeated message field is, on the wire,
the concatenation of `tag(1, LEN) varint(len) payload` per element, so a batch can be assembled from the
events' serialized bytes without parsing them again; the result parses to exactly the same message as
`EventBatch(events=[...], batch_id=...)` (tests/unit/test_sdk_wire.py checks this against protobuf).

The RetryInfo reader uses a private descriptor pool with wire-compatible copies of `google.rpc.Status`,
`google.protobuf.Any` and `google.rpc.RetryInfo`, so the SDK needs neither googleapis-common-protos nor a
hand-written decoder, and never clashes with those types in the default pool.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

MAX_BATCH_EVENTS = 500
MAX_BATCH_BYTES = 1 << 20  # the collector's limit for one serialized EventBatch
STATUS_DETAILS_KEY = "grpc-status-details-bin"
RETRY_INFO_TYPE = "google.rpc.RetryInfo"

_EVENTS_TAG = b"\x0a"  # field 1, wire type 2 (length-delimited)
_BATCH_ID_TAG = b"\x12"  # field 2, wire type 2


def varint(value: int) -> bytes:
    """Protobuf base-128 varint of a non-negative int (raises ValueError for negatives)."""
    if value < 0:
        raise ValueError("varint of a negative number")
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def framed_size(event_size: int) -> int:
    """Bytes one serialized event of `event_size` bytes takes inside an EventBatch."""
    return 1 + len(varint(event_size)) + event_size


def encode_batch(events: Iterable[bytes], batch_id: str = "") -> bytes:
    """Serialized `EventBatch` holding `events` (each a serialized Event) and `batch_id`."""
    parts: list[bytes] = []
    for event in events:
        parts += (_EVENTS_TAG, varint(len(event)), event)
    if batch_id:
        raw = batch_id.encode()
        parts += (_BATCH_ID_TAG, varint(len(raw)), raw)
    return b"".join(parts)


def split_batches(
    events: Sequence[bytes], max_events: int = MAX_BATCH_EVENTS, max_bytes: int = MAX_BATCH_BYTES - 1024
) -> list[Sequence[bytes]]:
    """Cut `events` into consecutive runs of at most `max_events` events and `max_bytes` framed bytes.

    An event larger than `max_bytes` on its own still gets a run of its own (the collector will judge it).
    """
    runs: list[Sequence[bytes]] = []
    start, size = 0, 0
    for i, event in enumerate(events):
        framed = framed_size(len(event))
        if i > start and (i - start >= max_events or size + framed > max_bytes):
            runs.append(events[start:i])
            start, size = i, 0
        size += framed
    if start < len(events):
        runs.append(events[start:])
    return runs


def _status_pool() -> tuple[Any, Any]:
    """Message classes (Status, RetryInfo) built in a private pool from wire-compatible descriptors."""
    fdp = descriptor_pb2.FileDescriptorProto(name="gnomon_sdk/_rpc_status.proto", package="gnomon_sdk.rpc")
    fdp.syntax = "proto3"
    f = descriptor_pb2.FieldDescriptorProto

    def message(name: str, fields: list[tuple[str, int, int, int, str]]) -> None:
        msg = fdp.message_type.add(name=name)
        for field_name, number, ftype, label, type_name in fields:
            fd = msg.field.add(name=field_name, number=number, type=ftype, label=label)
            if type_name:
                fd.type_name = type_name

    opt, rep = f.LABEL_OPTIONAL, f.LABEL_REPEATED
    message("Any", [("type_url", 1, f.TYPE_STRING, opt, ""), ("value", 2, f.TYPE_BYTES, opt, "")])
    message(
        "Status",
        [
            ("code", 1, f.TYPE_INT32, opt, ""),
            ("message", 2, f.TYPE_STRING, opt, ""),
            ("details", 3, f.TYPE_MESSAGE, rep, ".gnomon_sdk.rpc.Any"),
        ],
    )
    message("Duration", [("seconds", 1, f.TYPE_INT64, opt, ""), ("nanos", 2, f.TYPE_INT32, opt, "")])
    message("RetryInfo", [("retry_delay", 1, f.TYPE_MESSAGE, opt, ".gnomon_sdk.rpc.Duration")])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    status = message_factory.GetMessageClass(pool.FindMessageTypeByName("gnomon_sdk.rpc.Status"))
    retry = message_factory.GetMessageClass(pool.FindMessageTypeByName("gnomon_sdk.rpc.RetryInfo"))
    return status, retry


_Status, _RetryInfo = _status_pool()


def retry_delay_s(trailing_metadata: Iterable[tuple[str, str | bytes]] | None) -> float | None:
    """The RetryInfo delay (seconds) carried in `grpc-status-details-bin`, or None when absent/unreadable."""
    for key, value in trailing_metadata or ():
        if key != STATUS_DETAILS_KEY or not isinstance(value, bytes):
            continue
        try:
            status = _Status.FromString(value)
            for detail in status.details:
                if detail.type_url.rsplit("/", 1)[-1] == RETRY_INFO_TYPE:
                    delay = _RetryInfo.FromString(detail.value).retry_delay
                    seconds: float = delay.seconds + delay.nanos / 1e9
                    return max(0.0, seconds)
        except Exception:  # a malformed detail must never break sending
            return None
    return None


def status_details(code: int, message: str, retry_after_s: float | None) -> bytes:
    """Serialized `google.rpc.Status` (for servers/tests), with a RetryInfo detail when `retry_after_s`."""
    status = _Status(code=code, message=message)
    if retry_after_s is not None:
        seconds = int(retry_after_s)
        info = _RetryInfo()
        info.retry_delay.seconds = seconds
        info.retry_delay.nanos = round((retry_after_s - seconds) * 1e9)
        status.details.add(type_url=f"type.googleapis.com/{RETRY_INFO_TYPE}", value=info.SerializeToString())
    data: bytes = status.SerializeToString()
    return data
