"""Results -> GA4 response messages (the raw protobuf classes behind google-analytics-data's proto-plus types).

Values are strings, as GA4 sends them: INTEGER "123"; FLOAT and SECONDS the shortest decimal that reads back as
the same double, without exponent ("0.5", "12.25", "0" — integral values without a fraction); CURRENCY the exact
decimal of the micros without trailing zeros ("12.5", "100", "0"). Metric types map to TYPE_INTEGER, TYPE_FLOAT,
TYPE_SECONDS and TYPE_CURRENCY. Messages are built with the raw protobuf classes (`Type.pb()`), about ten times
faster than proto-plus wrappers for large reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Final

import numpy as np
from google.analytics.data_v1beta.types import analytics_data_api as api
from google.analytics.data_v1beta.types import data

from query_svc.ga4.names import Describe
from query_svc.ga4.run import Ga4Result
from query_svc.model import MetricType, MetricValue, ResultRow

RUN_REPORT_KIND: Final = "analyticsData#runReport"
BATCH_KIND: Final = "analyticsData#batchRunReports"
REALTIME_KIND: Final = "analyticsData#runRealtimeReport"

METRIC_TYPE: Final = {
    MetricType.INTEGER: data.MetricType.TYPE_INTEGER,
    MetricType.FLOAT: data.MetricType.TYPE_FLOAT,
    MetricType.SECONDS: data.MetricType.TYPE_SECONDS,
    MetricType.CURRENCY: data.MetricType.TYPE_CURRENCY,
}

_RunReportResponse: Any = api.RunReportResponse.pb()
_BatchRunReportsResponse: Any = api.BatchRunReportsResponse.pb()
_RunRealtimeReportResponse: Any = api.RunRealtimeReportResponse.pb()
_Metadata: Any = api.Metadata.pb()
_CheckCompatibilityResponse: Any = api.CheckCompatibilityResponse.pb()


def format_value(value: MetricValue, kind: MetricType) -> str:
    """A metric value as GA4 writes it (see the module docstring)."""
    if kind is MetricType.INTEGER:
        return str(int(value))
    if kind is MetricType.CURRENCY:
        exact = Decimal(value)
        return "0" if exact.is_zero() else format(exact.normalize(), "f")
    number = float(value)
    if number.is_integer():
        return str(int(number))
    return np.format_float_positional(number, unique=True, trim="-")


def _add_rows(target: Any, rows: Sequence[ResultRow], kinds: Sequence[MetricType]) -> None:
    dimension_value = data.DimensionValue.pb()
    metric_value = data.MetricValue.pb()
    add = target.add
    for row in rows:
        add(
            dimension_values=[dimension_value(value=v) for v in row.dimensions],
            metric_values=[metric_value(value=format_value(v, k)) for v, k in zip(row.values, kinds, strict=True)],
        )


def _fill(message: Any, result: Ga4Result) -> None:
    for name in result.dimension_headers:
        message.dimension_headers.add(name=name)
    for header in result.metric_headers:
        message.metric_headers.add(name=header.name, type_=METRIC_TYPE[header.type])
    kinds = [h.type for h in result.metric_headers]
    _add_rows(message.rows, result.rows, kinds)
    _add_rows(message.totals, result.totals, kinds)
    _add_rows(message.maximums, result.maximums, kinds)
    _add_rows(message.minimums, result.minimums, kinds)
    message.row_count = result.row_count


def run_report_response(result: Ga4Result) -> Any:
    """A raw google.analytics.data.v1beta.RunReportResponse."""
    message = _RunReportResponse()
    _fill(message, result)
    message.metadata.currency_code = result.currency_code
    message.metadata.time_zone = result.time_zone
    message.kind = RUN_REPORT_KIND
    return message


def batch_response(results: Sequence[Ga4Result]) -> Any:
    """A raw BatchRunReportsResponse (reports in request order)."""
    message = _BatchRunReportsResponse(kind=BATCH_KIND)
    message.reports.extend(run_report_response(r) for r in results)
    return message


def realtime_response(result: Ga4Result) -> Any:
    """A raw RunRealtimeReportResponse."""
    message = _RunRealtimeReportResponse()
    _fill(message, result)
    message.kind = REALTIME_KIND
    return message


def dimension_metadata(name: str, about: Describe) -> Any:
    return data.DimensionMetadata.pb()(
        api_name=name, ui_name=about.ui_name, description=about.description, category=about.category
    )


def metric_metadata(name: str, about: Describe, kind: MetricType, expression: str) -> Any:
    return data.MetricMetadata.pb()(
        api_name=name,
        ui_name=about.ui_name,
        description=about.description,
        category=about.category,
        type_=METRIC_TYPE[kind],
        expression=expression,
    )


def metadata_response(name: str, dimensions: Sequence[Any], metrics: Sequence[Any]) -> Any:
    """A raw Metadata message from DimensionMetadata / MetricMetadata messages."""
    return _Metadata(name=name, dimensions=dimensions, metrics=metrics)


def compatibility_response(dimensions: Sequence[tuple[Any, bool]], metrics: Sequence[tuple[Any, bool]]) -> Any:
    """A raw CheckCompatibilityResponse from (metadata message, compatible) pairs."""
    message = _CheckCompatibilityResponse()
    for metadata, compatible in dimensions:
        message.dimension_compatibilities.add(dimension_metadata=metadata, compatibility=_compatibility(compatible))
    for metadata, compatible in metrics:
        message.metric_compatibilities.add(metric_metadata=metadata, compatibility=_compatibility(compatible))
    return message


def _compatibility(compatible: bool) -> int:
    return int(data.Compatibility.COMPATIBLE if compatible else data.Compatibility.INCOMPATIBLE)
