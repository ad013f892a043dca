"""Every way a collect call can fail as a whole, and the ONE mapping of failures to gRPC statuses.

| failure | status | details |
|---|---|---|
| BatchRejected (empty, > 500 events, > 1 MiB, unparseable) | INVALID_ARGUMENT | google.rpc.BadRequest |
| Unauthenticated (missing / unknown / revoked key) | UNAUTHENTICATED | |
| PermissionDenied (a read key sending events) | PERMISSION_DENIED | |
| RateLimited (merchant over its events/s) | RESOURCE_EXHAUSTED | google.rpc.RetryInfo |
| Overloaded (in-flight batches full), LogBackpressure | RESOURCE_EXHAUSTED | google.rpc.RetryInfo |
| LogUnavailable, TimeoutError, ControlUnavailable, Unavailable | UNAVAILABLE | google.rpc.RetryInfo |
| anything else (a bug) | INTERNAL | logged with its traceback |

Per-event problems never fail the call: they are answered inside CollectResponse.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import NoReturn

import grpc
from google.rpc import code_pb2, error_details_pb2, status_pb2  # type: ignore[import-untyped]

from collector_svc.validation import Violation
from gnomon.control.port import ControlUnavailable
from gnomon.eventlog.port import LogBackpressure, LogUnavailable
from gnomon.grpc_status import abort_with, grpc_status, packed, retry_info

log = logging.getLogger(__name__)

DEFAULT_RETRY_S = 0.5
UNAVAILABLE_RETRY_S = 1.0


class CollectorError(Exception):
    """A collect call fails as a whole; `to_status` says how the client is told."""


class BatchRejected(CollectorError):
    def __init__(self, violations: Sequence[Violation]) -> None:
        super().__init__("; ".join(v.description for v in violations))
        self.violations = list(violations)


class Unauthenticated(CollectorError):
    pass


class PermissionDenied(CollectorError):
    pass


class RateLimited(CollectorError):
    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Overloaded(CollectorError):
    def __init__(self, message: str, retry_after_s: float = DEFAULT_RETRY_S) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Unavailable(CollectorError):
    pass


def status_proto(exc: BaseException) -> status_pb2.Status:
    """The google.rpc.Status for a failure; the single place that chooses codes, messages and details."""
    if isinstance(exc, BatchRejected):
        request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=v.field, description=v.description, reason=v.problem.value
                )
                for v in exc.violations
            ]
        )
        return status_pb2.Status(
            code=code_pb2.INVALID_ARGUMENT, message=f"invalid batch: {exc}", details=[packed(request)]
        )
    if isinstance(exc, Unauthenticated):
        return status_pb2.Status(code=code_pb2.UNAUTHENTICATED, message=str(exc))
    if isinstance(exc, PermissionDenied):
        return status_pb2.Status(code=code_pb2.PERMISSION_DENIED, message=str(exc))
    if isinstance(exc, RateLimited | Overloaded):
        return status_pb2.Status(
            code=code_pb2.RESOURCE_EXHAUSTED, message=str(exc), details=[retry_info(exc.retry_after_s)]
        )
    if isinstance(exc, LogBackpressure):
        return status_pb2.Status(
            code=code_pb2.RESOURCE_EXHAUSTED,
            message="the event log is saturated; retry with backoff",
            details=[retry_info(DEFAULT_RETRY_S)],
        )
    if isinstance(exc, LogUnavailable | ControlUnavailable | Unavailable):
        return status_pb2.Status(code=code_pb2.UNAVAILABLE, message=str(exc), details=[retry_info(UNAVAILABLE_RETRY_S)])
    if isinstance(exc, TimeoutError):
        return status_pb2.Status(
            code=code_pb2.UNAVAILABLE,
            message="the event log did not confirm the batch in time; retry (duplicates are dropped)",
            details=[retry_info(UNAVAILABLE_RETRY_S)],
        )
    log.error("internal error in the collector", exc_info=exc)
    return status_pb2.Status(code=code_pb2.INTERNAL, message="internal error; it has been logged")


def to_status(exc: BaseException) -> grpc.Status:
    return grpc_status(status_proto(exc))


def abort(context: grpc.ServicerContext, exc: BaseException) -> NoReturn:
    """End the call with the status of `exc` (raises, as `context.abort` does)."""
    abort_with(context, to_status(exc))
