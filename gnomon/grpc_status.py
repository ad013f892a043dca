"""What every Gnomon gRPC service needs to tell a client why a call failed: google.rpc.Status details and the
grpc.Status built from a google.rpc.Status. Each service keeps its own ONE mapping of failures to statuses
(`collector_svc.errors`, `query_svc.errors`); this module only builds the pieces."""

from __future__ import annotations

from typing import NoReturn

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]
from grpc_status import rpc_status


def packed(message: object) -> any_pb2.Any:
    """`message` (a protobuf message) packed into a google.protobuf.Any, as Status.details holds it."""
    detail = any_pb2.Any()
    detail.Pack(message)  # type: ignore[arg-type]
    return detail


def retry_info(seconds: float) -> any_pb2.Any:
    """A packed google.rpc.RetryInfo asking the client to wait `seconds` (at least 1 ms) before retrying."""
    delay = duration_pb2.Duration()
    delay.FromNanoseconds(max(1_000_000, int(seconds * 1e9)))
    return packed(error_details_pb2.RetryInfo(retry_delay=delay))


def grpc_status(proto: status_pb2.Status) -> grpc.Status:
    """The grpc.Status (code, message, and the details in the grpc-status-details-bin trailer) of `proto`."""
    status: grpc.Status = rpc_status.to_status(proto)
    return status


def abort_with(context: grpc.ServicerContext, status: grpc.Status) -> NoReturn:
    """End the call with `status` (raises, as `context.abort_with_status` does)."""
    context.abort_with_status(status)
    raise AssertionError("abort_with_status returned")  # pragma: no cover - grpc always raises
