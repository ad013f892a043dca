"""Every way a query can fail, and the ONE mapping of failures to gRPC statuses (`status_proto`).

| failure | status | details |
|---|---|---|
| InvalidQuery (bad date/regex/limit/filter), UnknownName, Incompatible | INVALID_ARGUMENT | google.rpc.BadRequest |
| RollupInvalid (a range the store refuses) | INVALID_ARGUMENT | |
| Unauthenticated (missing / malformed / unknown / revoked read token) | UNAUTHENTICATED | |
| PermissionDenied (another merchant's data, a write key) | PERMISSION_DENIED | |
| MerchantUnknown | NOT_FOUND | |
| DeadlineExceeded (checked between steps) | DEADLINE_EXCEEDED | |
| RollupUnavailable, ControlUnavailable, EventStoreUnavailable, Unavailable | UNAVAILABLE | google.rpc.RetryInfo |
| anything else (a bug) | INTERNAL | logged with its traceback, never shown |

The query engine raises the QueryError subclasses; the servicer and the auth interceptor turn any exception
into a status with `to_status` / `abort`, nowhere else.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import NoReturn

import grpc
from google.rpc import code_pb2, error_details_pb2, status_pb2  # type: ignore[import-untyped]

from aggregator.eventstore import EventStoreUnavailable
from gnomon.control.port import ControlUnavailable
from gnomon.grpc_status import abort_with, grpc_status, packed, retry_info
from gnomon.rollups.errors import RollupInvalid, RollupUnavailable

log = logging.getLogger(__name__)

UNAVAILABLE_RETRY_S = 1.0
MAX_LISTED_NAMES = 60  # valid names listed in an "unknown name" message


class QueryError(Exception):
    """A query fails as a whole; `status_proto` says how the client is told."""


class InvalidQuery(QueryError):
    """The request is malformed; `field` names the request field (proto path) when known."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class UnknownName(InvalidQuery):
    """A dimension or metric name that does not exist (or is not available here); lists the valid ones."""

    def __init__(self, kind: str, names: Sequence[str], valid: Iterable[str], field: str = "") -> None:
        valid_list = sorted(valid)
        shown = ", ".join(valid_list[:MAX_LISTED_NAMES]) + (" ..." if len(valid_list) > MAX_LISTED_NAMES else "")
        quoted = ", ".join(repr(n) for n in names)
        super().__init__(f"unknown {kind} {quoted}; valid {kind}s: {shown}", field)
        self.names = tuple(names)
        self.valid = tuple(valid_list)


class Incompatible(InvalidQuery):
    """The combination cannot be answered (no cube holds these dimensions together)."""


class Unauthenticated(QueryError):
    pass


class PermissionDenied(QueryError):
    pass


class MerchantUnknown(QueryError):
    pass


class DeadlineExceeded(QueryError):
    pass


class Unavailable(QueryError):
    pass


def status_proto(exc: BaseException) -> status_pb2.Status:
    """The google.rpc.Status for a failure; the single place that chooses codes, messages and details."""
    if isinstance(exc, InvalidQuery):
        violation = error_details_pb2.BadRequest.FieldViolation(
            field=exc.field, description=str(exc), reason=type(exc).__name__
        )
        request = error_details_pb2.BadRequest(field_violations=[violation])
        return status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message=str(exc), details=[packed(request)])
    if isinstance(exc, RollupInvalid):
        return status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message=f"the rollup store refused the read: {exc}")
    if isinstance(exc, Unauthenticated):
        return status_pb2.Status(code=code_pb2.UNAUTHENTICATED, message=str(exc))
    if isinstance(exc, PermissionDenied):
        return status_pb2.Status(code=code_pb2.PERMISSION_DENIED, message=str(exc))
    if isinstance(exc, MerchantUnknown):
        return status_pb2.Status(code=code_pb2.NOT_FOUND, message=str(exc))
    if isinstance(exc, DeadlineExceeded):
        return status_pb2.Status(code=code_pb2.DEADLINE_EXCEEDED, message=str(exc))
    if isinstance(exc, RollupUnavailable | ControlUnavailable | EventStoreUnavailable | Unavailable):
        return status_pb2.Status(
            code=code_pb2.UNAVAILABLE,
            message=f"a storage engine is unavailable, retry later: {exc}",
            details=[retry_info(UNAVAILABLE_RETRY_S)],
        )
    log.error("internal error in the query service", exc_info=exc)
    return status_pb2.Status(code=code_pb2.INTERNAL, message="internal error; it has been logged")


def to_status(exc: BaseException) -> grpc.Status:
    return grpc_status(status_proto(exc))


def abort(context: grpc.ServicerContext, exc: BaseException) -> NoReturn:
    """End the call with the status of `exc` (raises, as `context.abort` does)."""
    abort_with(context, to_status(exc))
