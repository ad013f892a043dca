"""The gRPC service `google.analytics.data.v1beta.BetaAnalyticsData` over the QueryEngine, for the official GA4
client (`BetaAnalyticsDataClient`) unchanged: RunReport, BatchRunReports, RunRealtimeReport, GetMetadata and
CheckCompatibility. Pivot reports and audience exports answer UNIMPLEMENTED.

Wire: generic handlers with the raw protobuf classes behind google-analytics-data's proto-plus types
(`Type.pb().FromString` / `SerializeToString`); requests are read through `Type.wrap` (typed, no copy).

Auth and isolation, before anything runs, on every method: `authorization: Bearer <read token>` is checked with
the query service's own `query_svc.auth.authenticate` and its KeyCache (UNAUTHENTICATED / PERMISSION_DENIED
exactly as QueryService); `property` is `properties/<merchant id>` and must be the token's merchant
(PERMISSION_DENIED otherwise; BatchRunReports checks the batch's property and every request's). As in GA4,
`properties/0` asks GetMetadata / CheckCompatibility for the schema common to every property (answered with
the token's merchant; it holds no data). A malformed property is INVALID_ARGUMENT.

Errors become statuses through `query_svc.errors.to_status` (the one mapping); field violations carry GA4 request
paths (`requests[1].date_ranges[0]`). One span per call (`google.analytics.data.v1beta.BetaAnalyticsData/<rpc>`,
parent from `traceparent` metadata) and the query latency histogram with rpc `GA4/<rpc>`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any, Final

import grpc
from google.analytics.data_v1beta.types import analytics_data_api as api
from opentelemetry import trace

from gnomon.control.key_cache import KeyCache
from gnomon.telemetry import Telemetry, context_from_metadata
from query_svc.auth import authenticate
from query_svc.engine import QueryEngine
from query_svc.errors import InvalidQuery, PermissionDenied, to_status
from query_svc.ga4 import meta, respond
from query_svc.ga4.run import Ga4Result, run_realtime, run_report
from query_svc.ga4.translate import ReportPlan, realtime_plan, report_plan
from query_svc.metrics import QueryMetrics
from query_svc.reader import Deadline

GA4_SERVICE: Final = "google.analytics.data.v1beta.BetaAnalyticsData"
TRACER_NAME: Final = "gnomon.query"
MAX_BATCH_REQUESTS: Final = 5
UNIVERSAL_PROPERTY: Final = "0"
UNIMPLEMENTED: Final = {
    "RunPivotReport": "pivot reports are not supported; use RunReport",
    "BatchRunPivotReports": "pivot reports are not supported; use BatchRunReports",
    "CreateAudienceExport": "audience exports are not supported",
    "QueryAudienceExport": "audience exports are not supported",
    "GetAudienceExport": "audience exports are not supported",
    "ListAudienceExports": "audience exports are not supported",
}

_PROPERTY = re.compile(r"properties/([^/]+)")
_METADATA_NAME = re.compile(r"properties/([^/]+)/metadata")


def property_merchant(value: str, token_merchant: str, field: str = "property", *, universal: bool = False) -> str:
    """The merchant `value` ("properties/<merchant id>") names, if the token's merchant may read it.

    Raises InvalidQuery (missing or malformed) or PermissionDenied (another merchant)."""
    if not value:
        raise InvalidQuery(f"{field} is required: properties/<merchant id>", field)
    match = _PROPERTY.fullmatch(value)
    if match is None:
        raise InvalidQuery(f"{field}: {value!r} is not of the form properties/<merchant id>", field)
    asked = match.group(1)
    if universal and asked == UNIVERSAL_PROPERTY:
        return token_merchant
    if asked != token_merchant:
        raise PermissionDenied(f"this read token cannot read {value!r}")
    return asked


def metadata_merchant(name: str, token_merchant: str) -> str:
    """The merchant of a GetMetadata `name` ("properties/<id>/metadata"); raises like `property_merchant`."""
    if not name:
        raise InvalidQuery("name is required: properties/<merchant id>/metadata", "name")
    match = _METADATA_NAME.fullmatch(name)
    if match is None:
        raise InvalidQuery(f"name: {name!r} is not of the form properties/<merchant id>/metadata", "name")
    return property_merchant(f"properties/{match.group(1)}", token_merchant, "name", universal=True)


def _prefixed(exc: InvalidQuery, prefix: str) -> InvalidQuery:
    exc.field = f"{prefix}.{exc.field}" if exc.field else prefix
    exc.args = (f"{prefix}.{exc}",)
    return exc


class Ga4Servicer:
    """Serves BetaAnalyticsData over a QueryEngine. Thread-safe (the engine is); blocking per call."""

    def __init__(
        self, engine: QueryEngine, keys: KeyCache, telemetry: Telemetry, metrics: QueryMetrics | None = None
    ) -> None:
        self._engine = engine
        self._keys = keys
        self._tracer = telemetry.tracer(TRACER_NAME)
        self._metrics = metrics or QueryMetrics(telemetry)

    # ------------------------------------------------------------------------------------------- plumbing

    def _serve(self, rpc: str, context: grpc.ServicerContext, run: Callable[[str, Deadline], Any]) -> Any:
        started = time.perf_counter()
        code = grpc.StatusCode.OK.name
        metadata = context.invocation_metadata()
        with self._tracer.start_as_current_span(
            f"{GA4_SERVICE}/{rpc}",
            context=context_from_metadata(metadata),
            kind=trace.SpanKind.SERVER,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                merchant_id = authenticate(self._keys, metadata)
                if span.is_recording():
                    span.set_attribute("gnomon.merchant_id", merchant_id)
                return run(merchant_id, Deadline(context.time_remaining))
            except Exception as exc:  # every failure becomes its status in errors.to_status
                status = to_status(exc)
                code = status.code.name
                span.set_status(trace.Status(trace.StatusCode.ERROR, code))
                context.abort_with_status(status)
                raise  # unreachable: abort_with_status raises
            finally:
                self._metrics.answered(f"GA4/{rpc}", code, time.perf_counter() - started)

    def handler(self) -> grpc.GenericRpcHandler:
        """The generic handler of every BetaAnalyticsData method."""
        served: list[tuple[str, Any, Any, Callable[[Any, str, Deadline], Any]]] = [
            ("RunReport", api.RunReportRequest, api.RunReportResponse, self._run_report),
            ("BatchRunReports", api.BatchRunReportsRequest, api.BatchRunReportsResponse, self._batch),
            ("RunRealtimeReport", api.RunRealtimeReportRequest, api.RunRealtimeReportResponse, self._realtime),
            ("GetMetadata", api.GetMetadataRequest, api.Metadata, self._metadata),
            ("CheckCompatibility", api.CheckCompatibilityRequest, api.CheckCompatibilityResponse, self._compatibility),
        ]
        handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
            rpc: grpc.unary_unary_rpc_method_handler(
                self._behaviour(rpc, request_type, behaviour),
                request_deserializer=request_type.pb().FromString,
                response_serializer=response_type.pb().SerializeToString,
            )
            for rpc, request_type, response_type, behaviour in served
        }
        for rpc, reason in UNIMPLEMENTED.items():
            handlers[rpc] = grpc.unary_unary_rpc_method_handler(_unimplemented(rpc, reason))
        return grpc.method_handlers_generic_handler(GA4_SERVICE, handlers)

    def _behaviour(
        self, rpc: str, request_type: Any, behaviour: Callable[[Any, str, Deadline], Any]
    ) -> Callable[[Any, grpc.ServicerContext], Any]:
        def unary(raw: Any, context: grpc.ServicerContext) -> Any:
            request = request_type.wrap(raw)
            return self._serve(rpc, context, lambda merchant_id, deadline: behaviour(request, merchant_id, deadline))

        return unary

    # ------------------------------------------------------------------------------------------- methods

    def _plan(self, request: api.RunReportRequest, merchant_id: str) -> ReportPlan:
        return report_plan(request, merchant_id, self._engine.merchant(merchant_id).currency)

    def _run_report(self, request: api.RunReportRequest, token_merchant: str, deadline: Deadline) -> Any:
        merchant_id = property_merchant(request.property, token_merchant)
        plan = self._plan(request, merchant_id)
        return respond.run_report_response(run_report(self._engine, plan, deadline))

    def _batch(self, request: api.BatchRunReportsRequest, token_merchant: str, deadline: Deadline) -> Any:
        merchant_id = property_merchant(request.property, token_merchant)
        for i, single in enumerate(request.requests):
            field = f"requests[{i}].property"
            if single.property and property_merchant(single.property, token_merchant, field) != merchant_id:
                raise InvalidQuery(f"{field}: {single.property!r} differs from the batch's property", field)
        if len(request.requests) > MAX_BATCH_REQUESTS:
            raise InvalidQuery(
                f"requests: at most {MAX_BATCH_REQUESTS} reports per batch, got {len(request.requests)}", "requests"
            )
        plans: list[ReportPlan] = []
        for i, single in enumerate(request.requests):
            try:
                plans.append(self._plan(single, merchant_id))
            except InvalidQuery as exc:
                raise _prefixed(exc, f"requests[{i}]") from None
        results: list[Ga4Result] = []
        for i, plan in enumerate(plans):
            try:
                results.append(run_report(self._engine, plan, deadline))
            except InvalidQuery as exc:
                raise _prefixed(exc, f"requests[{i}]") from None
        return respond.batch_response(results)

    def _realtime(self, request: api.RunRealtimeReportRequest, token_merchant: str, deadline: Deadline) -> Any:
        merchant_id = property_merchant(request.property, token_merchant)
        self._engine.merchant(merchant_id)
        plan = realtime_plan(request, merchant_id)
        return respond.realtime_response(run_realtime(self._engine, plan, deadline))

    def _metadata(self, request: api.GetMetadataRequest, token_merchant: str, deadline: Deadline) -> Any:
        merchant_id = metadata_merchant(request.name, token_merchant)
        return meta.metadata(self._engine, merchant_id, request.name)

    def _compatibility(self, request: api.CheckCompatibilityRequest, token_merchant: str, deadline: Deadline) -> Any:
        merchant_id = property_merchant(request.property, token_merchant, universal=True)
        return meta.check_compatibility(self._engine, merchant_id, request)


def _unimplemented(rpc: str, reason: str) -> Callable[[Any, grpc.ServicerContext], Any]:
    def unary(request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{GA4_SERVICE}/{rpc}: {reason}")

    return unary


def add_ga4_service(
    server: grpc.Server,
    engine: QueryEngine,
    keys: KeyCache,
    *,
    telemetry: Telemetry,
    metrics: QueryMetrics | None = None,
) -> Ga4Servicer:
    """Register BetaAnalyticsData on `server` (before `start()`), answering from `engine`, authenticating with
    `keys` (share the QueryService interceptor's KeyCache so revocations apply to both alike)."""
    servicer = Ga4Servicer(engine, keys, telemetry, metrics)
    server.add_generic_rpc_handlers((servicer.handler(),))
    return servicer
