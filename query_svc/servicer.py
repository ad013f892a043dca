"""gRPC glue of QueryService: convert the request, run the engine, convert the result; one span per call.

Every method runs the same `_serve`: it re-checks that the request's merchant is the authenticated one (the
interceptor already enforced it), builds a `Deadline` from the call's remaining time, and turns any
exception into its status with `errors.to_status` (the one mapping). Latency is recorded per rpc and code.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import grpc
from opentelemetry import trace

from gnomon.telemetry import Telemetry, context_from_metadata
from gnomon.v1 import query_pb2 as q
from gnomon.v1 import query_pb2_grpc
from query_svc import convert
from query_svc.auth import current_merchant
from query_svc.engine import QueryEngine
from query_svc.errors import PermissionDenied, to_status
from query_svc.metrics import QueryMetrics
from query_svc.model import ReportRequest
from query_svc.reader import Deadline

TRACER_NAME = "gnomon.query"

Req = TypeVar("Req")
Resp = TypeVar("Resp")


class QueryServicer(query_pb2_grpc.QueryServiceServicer):
    """Serves QueryService over a QueryEngine."""

    def __init__(self, engine: QueryEngine, telemetry: Telemetry, metrics: QueryMetrics) -> None:
        self._engine = engine
        self._tracer = telemetry.tracer(TRACER_NAME)
        self._metrics = metrics

    def _serve(
        self, rpc: str, request: Req, context: grpc.ServicerContext, run: Callable[[Req, Deadline], Resp]
    ) -> Resp:
        started = time.perf_counter()
        code = grpc.StatusCode.OK.name
        parent = context_from_metadata(context.invocation_metadata())
        with self._tracer.start_as_current_span(
            f"gnomon.v1.QueryService/{rpc}",
            context=parent,
            kind=trace.SpanKind.SERVER,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                merchant_id = getattr(request, "merchant_id", "")
                if merchant_id != current_merchant():
                    raise PermissionDenied(f"this read token cannot read merchant {merchant_id!r}")
                if span.is_recording():
                    span.set_attribute("gnomon.merchant_id", merchant_id)
                return run(request, Deadline(context.time_remaining))
            except Exception as exc:
                status = to_status(exc)
                code = status.code.name
                span.set_status(trace.Status(trace.StatusCode.ERROR, code))
                context.abort_with_status(status)
                raise  # unreachable: abort_with_status raises
            finally:
                self._metrics.answered(rpc, code, time.perf_counter() - started)

    def _report(self, request: ReportRequest, deadline: Deadline) -> q.ReportResponse:
        return convert.report_response(self._engine.report(request, deadline))

    def TimeSeries(self, request: q.TimeSeriesRequest, context: Any) -> q.ReportResponse:
        return self._serve("TimeSeries", request, context, lambda r, d: self._report(convert.timeseries_request(r), d))

    def Breakdown(self, request: q.BreakdownRequest, context: Any) -> q.ReportResponse:
        return self._serve("Breakdown", request, context, lambda r, d: self._report(convert.breakdown_request(r), d))

    def Totals(self, request: q.TotalsRequest, context: Any) -> q.ReportResponse:
        return self._serve("Totals", request, context, lambda r, d: self._report(convert.totals_request(r), d))

    def Realtime(self, request: q.RealtimeRequest, context: Any) -> q.RealtimeResponse:
        return self._serve(
            "Realtime",
            request,
            context,
            lambda r, d: convert.realtime_response(self._engine.realtime(convert.realtime_request(r), d)),
        )

    def Metadata(self, request: q.MetadataRequest, context: Any) -> q.MetadataResponse:
        return self._serve(
            "Metadata",
            request,
            context,
            lambda r, d: convert.metadata_response(self._engine.metadata(r.merchant_id)),
        )

    def CheckCompatibility(self, request: q.CheckCompatibilityRequest, context: Any) -> q.CheckCompatibilityResponse:
        return self._serve(
            "CheckCompatibility",
            request,
            context,
            lambda r, d: convert.compatibility_response(
                self._engine.check_compatibility(convert.compatibility_request(r))
            ),
        )
