"""Exceptions raised by the SDK and the `DeliveryError` reports passed to `on_error`."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import grpc


class GnomonError(Exception):
    """Base class of every exception the SDK raises on purpose."""


class QueueFull(GnomonError):
    """`track` refused an event: the in-memory queue is full and no spool directory is configured.

    Nothing was queued. Retry later (the sender is draining the queue), configure `spool_dir`, or raise
    `max_queue_events`.
    """


class SpoolFull(QueueFull):
    """`track` refused an event: the spool directory already holds `max_spool_bytes` of undelivered events."""


class SpoolLocked(GnomonError):
    """Another live Client (this process or another) already uses this spool directory."""


class ClientClosed(GnomonError):
    """The client was closed; it accepts no more events."""


class ErrorKind(StrEnum):
    """Why events were not (or not all) delivered. Passed in `DeliveryError.kind`."""

    REJECTED = "rejected"  # the collector answered REJECTED for this event (never retried; see reason/field)
    FAILED = "failed"  # the call failed with a non-retryable status (bad key, invalid batch): dead-lettered
    RETRIES_EXHAUSTED = "retries_exhausted"  # retryable failures beyond max_retries (see Client docs)
    DROPPED = "dropped"  # events still in memory when the client closed without a spool


@dataclass(frozen=True)
class DeliveryError:
    """One report to `on_error`: which events, what happened, and the collector's explanation.

    `reason` is the RejectReason name (e.g. `REJECT_REASON_INVALID_IP`) for REJECTED, otherwise the gRPC
    status code name (e.g. `UNAUTHENTICATED`). `field` is the offending field path for REJECTED, else empty.
    `dead_letter` is the file that kept the events, when they were kept.
    """

    kind: ErrorKind
    event_ids: tuple[str, ...]
    reason: str
    message: str
    code: grpc.StatusCode | None = None
    field: str = ""
    dead_letter: str = ""
