"""gnomon.telemetry: exporters chosen by settings, W3C trace context helpers."""

from __future__ import annotations

import importlib.util

import pytest
from opentelemetry import trace

from gnomon.telemetry import (
    Exporter,
    TelemetryError,
    TelemetrySettings,
    context_from_metadata,
    setup_telemetry,
    traceparent_of,
)


def test_memory_exporter_keeps_spans_and_metrics() -> None:
    telemetry = setup_telemetry(TelemetrySettings(exporter=Exporter.MEMORY, service_name="t"))
    with telemetry.tracer("x").start_as_current_span("work"):
        pass
    telemetry.meter("x").create_counter("things").add(3, {"k": "v"})
    assert [s.name for s in telemetry.spans()] == ["work"]
    assert [p.value for p in telemetry.metric_points("things")] == [3]
    telemetry.shutdown()


@pytest.mark.parametrize("exporter", [Exporter.NONE, Exporter.CONSOLE])
def test_other_exporters_build(exporter: Exporter) -> None:
    telemetry = setup_telemetry(TelemetrySettings(exporter=exporter))
    with telemetry.tracer("x").start_as_current_span("work") as span:
        assert span.get_span_context().is_valid  # trace ids exist even when nothing is exported
    assert telemetry.spans() == ()
    assert telemetry.metrics() is None
    telemetry.shutdown()


@pytest.mark.skipif(
    importlib.util.find_spec("opentelemetry.exporter") is not None, reason="the OTLP exporter is installed"
)
def test_otlp_without_package_is_a_clear_error() -> None:
    with pytest.raises(TelemetryError, match="opentelemetry-exporter-otlp-proto-grpc"):
        setup_telemetry(TelemetrySettings(exporter=Exporter.OTLP))


def test_trace_context_round_trip() -> None:
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    ctx = context_from_metadata([("traceparent", parent), ("other", "x")])
    assert ctx is not None
    span_context = trace.get_current_span(ctx).get_span_context()
    assert traceparent_of(span_context) == parent
    assert context_from_metadata([("authorization", "Bearer x")]) is None
    assert traceparent_of(trace.INVALID_SPAN_CONTEXT) == ""


def test_from_env() -> None:
    s = TelemetrySettings.from_env(
        "svc", {"GNOMON_TELEMETRY_EXPORTER": "console", "GNOMON_TELEMETRY_OTLP_ENDPOINT": "http://h:4317"}
    )
    assert (s.exporter, s.service_name, s.otlp_endpoint) == (Exporter.CONSOLE, "svc", "http://h:4317")
