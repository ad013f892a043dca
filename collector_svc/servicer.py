"""gRPC glue of CollectorService: raw request bytes to the BatchHandler, one span per batch, errors to statuses.

Both methods are registered with no request deserializer: the handler parses the bytes itself (once, with
upb), so garbage is answered INVALID_ARGUMENT with field violations instead of gRPC's generic INTERNAL.

CollectStream answers each EventBatch with one CollectResponse, in order. A batch that fails as a whole
(INVALID_ARGUMENT, RESOURCE_EXHAUSTED, UNAVAILABLE, ...) ends the stream with that status; every response
sent before it stands, and the client resends from the failed batch on a new stream.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
from opentelemetry import trace
from opentelemetry.context import Context

from collector_svc.auth import COLLECTOR_SERVICE, current_merchant
from collector_svc.errors import BatchRejected, to_status
from collector_svc.handler import BatchHandler, CallInfo
from collector_svc.metrics import CollectorMetrics
from gnomon.telemetry import Telemetry, context_from_metadata, traceparent_of
from gnomon.v1 import collector_pb2 as cpb

TRACER_NAME = "gnomon.collector"


def _incoming_traceparent(metadata: Any) -> str:
    for key, value in metadata or ():
        if key == "traceparent" and isinstance(value, str):
            return value
    return ""


class CollectorServicer:
    """Serves Collect and CollectStream over a BatchHandler."""

    def __init__(self, handler: BatchHandler, telemetry: Telemetry, metrics: CollectorMetrics) -> None:
        self._handler = handler
        self._tracer = telemetry.tracer(TRACER_NAME)
        self._metrics = metrics

    def _one(
        self,
        raw: bytes,
        context: grpc.ServicerContext,
        merchant_id: str,
        metadata: Any,
        parent: Context | None,
        span_name: str,
    ) -> cpb.CollectResponse:
        with self._tracer.start_as_current_span(
            span_name,
            context=parent,
            kind=trace.SpanKind.SERVER,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            traceparent = traceparent_of(span.get_span_context()) or _incoming_traceparent(metadata)
            call = CallInfo(merchant_id, context.peer(), metadata, traceparent)
            try:
                response = self._handler.handle(raw, call)
            except Exception as exc:
                status = to_status(exc)
                problem = exc.violations[0].problem if isinstance(exc, BatchRejected) else None
                self._metrics.batch_refused(status.code.name, problem)
                span.set_status(trace.Status(trace.StatusCode.ERROR, status.code.name))
                context.abort_with_status(status)
            if span.is_recording():
                span.set_attribute("gnomon.merchant_id", merchant_id)
                span.set_attribute("gnomon.events.accepted", response.accepted)
                span.set_attribute("gnomon.events.duplicate", response.duplicates)
                span.set_attribute("gnomon.events.rejected", response.rejected)
            return response

    def collect(self, raw: bytes, context: grpc.ServicerContext) -> cpb.CollectResponse:
        metadata = context.invocation_metadata()
        return self._one(
            raw,
            context,
            current_merchant(),
            metadata,
            context_from_metadata(metadata),
            f"{COLLECTOR_SERVICE}/Collect",
        )

    def collect_stream(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[cpb.CollectResponse]:
        merchant_id = current_merchant()
        metadata = context.invocation_metadata()
        parent = context_from_metadata(metadata)
        for raw in requests:
            yield self._one(raw, context, merchant_id, metadata, parent, f"{COLLECTOR_SERVICE}/CollectStream")

    def generic_handler(self) -> grpc.GenericRpcHandler:
        serialize = cpb.CollectResponse.SerializeToString
        return grpc.method_handlers_generic_handler(
            COLLECTOR_SERVICE,
            {
                "Collect": grpc.unary_unary_rpc_method_handler(self.collect, None, serialize),
                "CollectStream": grpc.stream_stream_rpc_method_handler(self.collect_stream, None, serialize),
            },
        )
