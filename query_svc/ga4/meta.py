"""GetMetadata and CheckCompatibility in GA4 terms, over the engine's catalog and compatibility check. Blocking.

GetMetadata lists the GA4 report dimensions (`query_svc.ga4.names.REPORT_DIMENSIONS`) and the engine's metrics
with their types and expressions. CheckCompatibility works as GA4's: it fails (INVALID_ARGUMENT) when the
request's own dimensions, metrics and filters are incompatible; otherwise it lists every dimension and metric
with whether it can be ADDED to the request and keep it answerable — a dimension is compatible when the engine
can answer the request plus that dimension (some rollup holds them together), a metric always (metrics never
restrict the rollup), time dimensions always. `compatibility_filter` keeps only one kind.
"""

from __future__ import annotations

from typing import Any

from google.analytics.data_v1beta.types import analytics_data_api as api
from google.analytics.data_v1beta.types import data

from query_svc.catalog import DIMENSIONS, METRICS, DimKind
from query_svc.engine import QueryEngine
from query_svc.errors import Incompatible, InvalidQuery
from query_svc.ga4 import respond
from query_svc.ga4.filters import Scope, Unsupported, filter_expr
from query_svc.ga4.names import (
    ENGINE_NAME,
    REPORT_DIMENSIONS,
    REPORT_METRICS,
    TIME_DIMENSIONS,
    check_names,
    describe_dimension,
    describe_metric,
)
from query_svc.ga4.run import ga4_wording
from query_svc.model import CompatibilityRequest


def _dimension_messages() -> dict[str, Any]:
    return {name: respond.dimension_metadata(name, describe_dimension(name)) for name in REPORT_DIMENSIONS}


def _metric_messages() -> dict[str, Any]:
    return {
        name: respond.metric_metadata(name, describe_metric(name), METRICS[name].type, METRICS[name].expression)
        for name in REPORT_METRICS
    }


def metadata(engine: QueryEngine, merchant_id: str, name: str) -> Any:
    """The raw Metadata message `name` ("properties/<id>/metadata") for `merchant_id`; raises MerchantUnknown."""
    engine.merchant(merchant_id)
    return respond.metadata_response(name, list(_dimension_messages().values()), list(_metric_messages().values()))


def _engine_request(merchant_id: str, message: api.CheckCompatibilityRequest) -> CompatibilityRequest:
    for i, d in enumerate(message.dimensions):
        if "dimension_expression" in d:
            raise Unsupported(
                f"dimensions[{i}].dimension_expression: dimension expressions are not supported",
                f"dimensions[{i}].dimension_expression",
            )
    for i, m in enumerate(message.metrics):
        if m.expression:
            raise Unsupported(
                f"metrics[{i}].expression: custom metric expressions are not supported", f"metrics[{i}].expression"
            )
    dimensions = check_names([d.name for d in message.dimensions], REPORT_DIMENSIONS, "dimension", "dimensions")
    metrics = check_names([m.name for m in message.metrics], REPORT_METRICS, "metric", "metrics")
    dimension_filter = (
        filter_expr(message.dimension_filter, Scope(dimensions=REPORT_DIMENSIONS), "dimension_filter")
        if "dimension_filter" in message
        else None
    )
    metric_filter = (
        filter_expr(message.metric_filter, Scope(metrics=REPORT_METRICS), "metric_filter")
        if "metric_filter" in message
        else None
    )
    return CompatibilityRequest(
        merchant_id=merchant_id,
        dimensions=tuple(ENGINE_NAME[d] for d in dimensions if d in ENGINE_NAME),
        metrics=metrics,
        dimension_filter=dimension_filter,
        metric_filter=metric_filter,
    )


def check_compatibility(engine: QueryEngine, merchant_id: str, message: api.CheckCompatibilityRequest) -> Any:
    """The raw CheckCompatibilityResponse; raises InvalidQuery / Incompatible when the request itself is not
    answerable, MerchantUnknown for an unknown merchant."""
    request = _engine_request(merchant_id, message)
    base = engine.check_compatibility(request)
    if not base.compatible:
        reason = ga4_wording("; ".join(base.reasons))
        raise Incompatible(f"the request's dimensions, metrics and filters are incompatible: {reason}", "dimensions")
    wanted = message.compatibility_filter
    if wanted not in (
        data.Compatibility.COMPATIBILITY_UNSPECIFIED,
        data.Compatibility.COMPATIBLE,
        data.Compatibility.INCOMPATIBLE,
    ):
        raise InvalidQuery(f"compatibility_filter: unknown value {int(wanted)}", "compatibility_filter")
    dimension_messages = _dimension_messages()
    dimensions: list[tuple[Any, bool]] = []
    for name in REPORT_DIMENSIONS:
        engine_name = ENGINE_NAME.get(name)
        compatible = True
        if (
            name not in TIME_DIMENSIONS
            and engine_name is not None
            and DIMENSIONS[engine_name].kind is DimKind.ROLLUP
            and engine_name not in request.dimensions
        ):
            added = CompatibilityRequest(
                merchant_id,
                (*request.dimensions, engine_name),
                request.metrics,
                request.dimension_filter,
                request.metric_filter,
            )
            compatible = engine.check_compatibility(added).compatible
        dimensions.append((dimension_messages[name], compatible))
    metrics = [(m, True) for m in _metric_messages().values()]
    if wanted != data.Compatibility.COMPATIBILITY_UNSPECIFIED:
        keep = wanted == data.Compatibility.COMPATIBLE
        dimensions = [d for d in dimensions if d[1] == keep]
        metrics = [m for m in metrics if m[1] == keep]
    return respond.compatibility_response(dimensions, metrics)
