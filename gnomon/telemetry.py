"""OpenTelemetry set-up for every Gnomon process: tracer and meter providers chosen by settings.

Exporters (`GNOMON_TELEMETRY_EXPORTER`):
- `none` (default): spans and metrics are produced (trace ids still propagate) but not exported.
- `console`: printed to stdout in batches, for development.
- `memory`: kept in memory (`Telemetry.spans()`, `Telemetry.metrics()`), for tests.
- `otlp`: sent to an OTLP/gRPC collector at `GNOMON_TELEMETRY_OTLP_ENDPOINT`; needs the optional package
  `opentelemetry-exporter-otlp-proto-grpc`, and says so clearly when it is missing.

Nothing is global unless asked: `setup_telemetry(..., install_global=True)` is for a process's `main`;
tests build as many independent `Telemetry` objects as they like.
W3C trace context helpers (`context_from_metadata`, `traceparent_of`) carry a batch's trace from the SDK's
gRPC metadata into the event log's message properties.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    InMemoryMetricReader,
    MetricExporter,
    MetricReader,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from gnomon.settings import EnvReader, SettingsError

_PROPAGATOR = TraceContextTextMapPropagator()


class Exporter(StrEnum):
    NONE = "none"
    CONSOLE = "console"
    MEMORY = "memory"
    OTLP = "otlp"


class TelemetryError(SettingsError):
    """Telemetry cannot be set up as configured; the message says what to change or install."""


@dataclass(frozen=True)
class TelemetrySettings:
    """Which exporter to use and how this process names itself in traces and metrics."""

    exporter: Exporter = Exporter.NONE
    service_name: str = "gnomon"
    otlp_endpoint: str | None = None  # e.g. http://127.0.0.1:4317; the exporter's default when None
    metric_interval_s: float = 10.0
    resource_attributes: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, service_name: str, env: Mapping[str, str] | None = None) -> TelemetrySettings:
        """Read `GNOMON_TELEMETRY_EXPORTER` and `GNOMON_TELEMETRY_OTLP_ENDPOINT`; raises SettingsError on bad values."""
        r = EnvReader(os.environ if env is None else env)
        return cls(
            exporter=r.choice("TELEMETRY_EXPORTER", Exporter, Exporter.NONE),
            service_name=service_name,
            otlp_endpoint=r.optional("TELEMETRY_OTLP_ENDPOINT"),
            metric_interval_s=r.integer("TELEMETRY_METRIC_INTERVAL_MS", 10_000, minimum=100) / 1000,
        )


class Telemetry:
    """A process's tracer and meter providers. `shutdown()` flushes and stops the exporters."""

    def __init__(
        self,
        tracer_provider: TracerProvider,
        meter_provider: MeterProvider,
        span_exporter: InMemorySpanExporter | None = None,
        metric_reader: InMemoryMetricReader | None = None,
    ) -> None:
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self._span_exporter = span_exporter
        self._metric_reader = metric_reader

    def tracer(self, name: str) -> trace.Tracer:
        return self.tracer_provider.get_tracer(name)

    def meter(self, name: str) -> metrics.Meter:
        return self.meter_provider.get_meter(name)

    def spans(self) -> tuple[ReadableSpan, ...]:
        """Finished spans (memory exporter only; empty otherwise)."""
        return tuple(self._span_exporter.get_finished_spans()) if self._span_exporter else ()

    def metrics(self) -> MetricsData | None:
        """Collect current metrics now (memory exporter only; None otherwise)."""
        return self._metric_reader.get_metrics_data() if self._metric_reader else None

    def metric_points(self, name: str) -> list[Any]:
        """All data points of one metric by name (memory exporter only), for tests."""
        data = self.metrics()
        points: list[Any] = []
        if data is None:
            return points
        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name == name:
                        points.extend(metric.data.data_points)
        return points

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


def _otlp_exporters(endpoint: str | None) -> tuple[SpanExporter, MetricExporter]:
    try:
        trace_mod = importlib.import_module("opentelemetry.exporter.otlp.proto.grpc.trace_exporter")
        metric_mod = importlib.import_module("opentelemetry.exporter.otlp.proto.grpc.metric_exporter")
    except ImportError:
        raise TelemetryError(
            "GNOMON_TELEMETRY_EXPORTER=otlp needs the package opentelemetry-exporter-otlp-proto-grpc: install it"
            " (pip install opentelemetry-exporter-otlp-proto-grpc) or choose console, memory or none"
        ) from None
    kwargs: dict[str, Any] = {"endpoint": endpoint} if endpoint else {}
    span_exporter: SpanExporter = trace_mod.OTLPSpanExporter(**kwargs)
    metric_exporter: MetricExporter = metric_mod.OTLPMetricExporter(**kwargs)
    return span_exporter, metric_exporter


def setup_telemetry(settings: TelemetrySettings, *, install_global: bool = False) -> Telemetry:
    """Build the providers for `settings`; raises TelemetryError when the exporter is unavailable.

    With `install_global`, also registers them as the OpenTelemetry global providers (once per process).
    """
    resource = Resource.create({"service.name": settings.service_name, **settings.resource_attributes})
    tracer_provider = TracerProvider(resource=resource)
    readers: list[MetricReader] = []
    span_memory: InMemorySpanExporter | None = None
    metric_memory: InMemoryMetricReader | None = None
    interval_ms = settings.metric_interval_s * 1000
    if settings.exporter is Exporter.MEMORY:
        span_memory = InMemorySpanExporter()
        tracer_provider.add_span_processor(SimpleSpanProcessor(span_memory))
        metric_memory = InMemoryMetricReader()
        readers.append(metric_memory)
    elif settings.exporter is Exporter.CONSOLE:
        tracer_provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
        readers.append(PeriodicExportingMetricReader(ConsoleMetricExporter(), export_interval_millis=interval_ms))
    elif settings.exporter is Exporter.OTLP:
        span_exporter, metric_exporter = _otlp_exporters(settings.otlp_endpoint)
        tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
        readers.append(PeriodicExportingMetricReader(metric_exporter, export_interval_millis=interval_ms))
    meter_provider = MeterProvider(resource=resource, metric_readers=readers)
    if install_global:
        trace.set_tracer_provider(tracer_provider)
        metrics.set_meter_provider(meter_provider)
    return Telemetry(tracer_provider, meter_provider, span_memory, metric_memory)


def context_from_metadata(metadata: Iterable[tuple[str, Any]] | None) -> Context | None:
    """The parent trace context carried by `traceparent`/`tracestate` gRPC metadata, or None."""
    carrier = {k: v for k, v in metadata or () if k in ("traceparent", "tracestate") and isinstance(v, str)}
    if "traceparent" not in carrier:
        return None
    return _PROPAGATOR.extract(carrier)


def traceparent_of(span_context: trace.SpanContext) -> str:
    """W3C `traceparent` of a span context ("" when the context is invalid)."""
    if not span_context.is_valid:
        return ""
    return f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}-{int(span_context.trace_flags):02x}"
