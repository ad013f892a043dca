"""`gnomon query`: read reports from the query service (timeseries, breakdown, totals, realtime, metadata) as
tables, or run the query service itself (`gnomon query serve`)."""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gnomon.cli.serving import EnginesUnreachable, listen_changes, query_deps, stop_on_signals, wait_for
from gnomon.settings import SettingsError

if TYPE_CHECKING:  # grpc stubs and rich load only when a query runs
    from rich.console import Console

    from gnomon.v1 import query_pb2 as q

log = logging.getLogger("gnomon.query")

DEFAULT_ENDPOINT = "127.0.0.1:50052"
DESCRIPTION = """\
Query reports of one merchant from the query service (gnomon.v1.QueryService) with a read token, or run the
service (`gnomon query serve`).

Dates are the merchant's own time zone: YYYY-MM-DD, today, yesterday or NdaysAgo.
Filters (--filter, repeatable, all must hold; names are GA4 API names, see `gnomon query metadata`):
  dim==value  exact   dim!=value  not equal   dim^=prefix  begins with   dim$=suffix  ends with
  dim*=text   contains   dim=~regex  full RE2 match   dim~regex  partial match   dim!~regex  no partial match
  dim=in:a,b,c  one of   Matching is case-insensitive; add --case-sensitive to change that.
Metric conditions (--having, repeatable): sessions>10, engagementRate<=0.5, totalRevenue>=100
Order (--order-by, repeatable): a metric or dimension name; descending: sessions:desc (or --order-by=-sessions).

Examples:
  gnomon query --token $T totals --from 7daysAgo --to yesterday --compare previous
  gnomon query --token $T timeseries --granularity hour --from today --metrics activeUsers,eventCount
  gnomon query --token $T breakdown pagePath --limit 10 --filter 'pagePath^=/blog'
  gnomon query --token $T realtime --dimensions eventName
"""

DEFAULT_METRICS = "activeUsers,sessions,screenPageViews,engagementRate,totalRevenue"
_STRING_OPS: tuple[tuple[str, str, bool], ...] = (  # operator, match type, negated (longest operators first)
    ("!=", "EXACT", True),
    ("!~", "PARTIAL_REGEXP", True),
    ("==", "EXACT", False),
    ("=~", "FULL_REGEXP", False),
    ("^=", "BEGINS_WITH", False),
    ("$=", "ENDS_WITH", False),
    ("*=", "CONTAINS", False),
    ("~", "PARTIAL_REGEXP", False),
)
_METRIC_CONDITION = re.compile(r"^\s*([A-Za-z][A-Za-z0-9]*)\s*(>=|<=|==|>|<|=)\s*(-?[0-9.eE+-]+)\s*$")


def register(subparsers: Any) -> None:
    """Add `query` to the `gnomon` command line."""
    p = subparsers.add_parser(
        "query",
        help="query reports (timeseries, breakdown, totals, realtime) or run the query service",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--token", help="read token of the merchant (GNOMON_READ_TOKEN)")
    p.add_argument("--endpoint", help=f"host:port of the query service (GNOMON_QUERY_ENDPOINT, {DEFAULT_ENDPOINT})")
    p.add_argument("--tls-ca", type=Path, metavar="PEM", help="CA bundle: connect with TLS (GNOMON_QUERY_TLS_CA)")
    p.add_argument("--merchant", default="", help="merchant id (default: the token's merchant)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for an answer (default 30)")
    p.add_argument("--json", action="store_true", help="print the raw response as JSON instead of a table")
    sub = p.add_subparsers(title="reports", metavar="REPORT", required=True)

    ts = sub.add_parser("timeseries", help="one row per hour/day/week/month")
    _report_args(ts)
    ts.add_argument("--granularity", choices=("hour", "day", "week", "month"), default="day")
    ts.set_defaults(handler=_run(_timeseries))

    bd = sub.add_parser("breakdown", help="top rows by one dimension (or an available pair)")
    bd.add_argument("dimensions", nargs="+", help="e.g. pagePath, or country deviceCategory")
    _report_args(bd)
    bd.set_defaults(handler=_run(_breakdown))

    tt = sub.add_parser("totals", help="the metrics over the whole range")
    _report_args(tt, paging=False)
    tt.set_defaults(handler=_run(_totals))

    rt = sub.add_parser("realtime", help="the last 30 minutes by minute, from raw events")
    rt.add_argument("--dimensions", default="", help="comma-separated breakdown, e.g. eventName or pagePath")
    rt.add_argument("--metrics", default="activeUsers,eventCount", help="for the breakdown rows")
    rt.add_argument("--minutes", type=int, default=30, help="1..30 (default 30)")
    rt.add_argument("--limit", type=int, default=20)
    rt.set_defaults(handler=_run(_realtime))

    md = sub.add_parser("metadata", help="the dimensions and metrics that can be queried")
    md.set_defaults(handler=_run(_metadata))

    serve = sub.add_parser("serve", help="run the query service (gRPC) until SIGTERM or Ctrl-C")
    serve.add_argument("--host", help="address to listen on (GNOMON_QUERY_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port; 0 picks a free one (GNOMON_QUERY_PORT, default 50052)")
    serve.add_argument("--workers", type=int, help="gRPC worker threads (GNOMON_QUERY_WORKERS, default 16)")
    serve.set_defaults(handler=_serve)


def _report_args(p: argparse.ArgumentParser, *, paging: bool = True) -> None:
    p.add_argument("--from", dest="start", default="28daysAgo", help="first date (default 28daysAgo)")
    p.add_argument("--to", dest="end", default="today", help="last date, included (default today)")
    p.add_argument("--metrics", default=DEFAULT_METRICS, help=f"comma-separated (default {DEFAULT_METRICS})")
    p.add_argument("--filter", action="append", default=[], metavar="EXPR", help="dimension filter, see above")
    p.add_argument("--having", action="append", default=[], metavar="COND", help="metric condition, see above")
    p.add_argument("--case-sensitive", action="store_true", help="string filters match case-sensitively")
    p.add_argument("--compare", metavar="previous|START:END", help="compare with the previous period or another range")
    if paging:
        p.add_argument("--order-by", action="append", default=[], metavar="NAME", help="NAME or NAME:desc")
        p.add_argument("--limit", type=int, default=0, help="rows (0: the service's default)")
        p.add_argument("--offset", type=int, default=0)


# ------------------------------------------------------------------------------------------- parsing


def parse_filter(text: str, case_sensitive: bool = False) -> q.FilterExpression:
    """One `--filter` expression as a FilterExpression; raises SettingsError when it cannot be read."""
    from gnomon.v1 import query_pb2 as q

    name, sep, rest = text.partition("=in:")
    if sep and re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", name.strip()):
        values = [v.strip() for v in rest.split(",") if v.strip()]
        return q.FilterExpression(
            filter=q.Filter(
                field_name=name.strip(), in_list_filter=q.InListFilter(values=values, case_sensitive=case_sensitive)
            )
        )
    for op, match, negated in _STRING_OPS:
        name, sep, value = text.partition(op)
        if sep and re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", name.strip()):
            leaf = q.FilterExpression(
                filter=q.Filter(
                    field_name=name.strip(),
                    string_filter=q.StringFilter(
                        match_type=q.StringFilter.MatchType.Value(match), value=value, case_sensitive=case_sensitive
                    ),
                )
            )
            return q.FilterExpression(not_expression=leaf) if negated else leaf
    raise SettingsError(f"--filter {text!r}: expected e.g. pagePath==/home, pagePath^=/blog, country=in:India,Nepal")


def parse_having(text: str) -> q.FilterExpression:
    """One `--having` condition as a metric FilterExpression; raises SettingsError when it cannot be read."""
    from gnomon.v1 import query_pb2 as q

    found = _METRIC_CONDITION.match(text)
    if not found:
        raise SettingsError(f"--having {text!r}: expected e.g. sessions>10 or engagementRate<=0.5")
    name, op, raw = found.groups()
    try:
        number = float(raw)
    except ValueError:
        raise SettingsError(f"--having {text!r}: {raw!r} is not a number") from None
    operation = {
        ">": q.NumericFilter.GREATER_THAN,
        ">=": q.NumericFilter.GREATER_THAN_OR_EQUAL,
        "<": q.NumericFilter.LESS_THAN,
        "<=": q.NumericFilter.LESS_THAN_OR_EQUAL,
    }.get(op, q.NumericFilter.EQUAL)
    return q.FilterExpression(
        filter=q.Filter(
            field_name=name,
            numeric_filter=q.NumericFilter(operation=operation, value=q.NumericValue(double_value=number)),
        )
    )


def _all_of(expressions: Sequence[q.FilterExpression]) -> q.FilterExpression | None:
    from gnomon.v1 import query_pb2 as q

    if not expressions:
        return None
    if len(expressions) == 1:
        return expressions[0]
    return q.FilterExpression(and_group=q.FilterExpressionList(expressions=expressions))


def _comparison(text: str | None) -> q.Comparison | None:
    from gnomon.v1 import query_pb2 as q

    if not text:
        return None
    if text == "previous":
        return q.Comparison(previous_period=q.Comparison.PreviousPeriod())
    start, sep, end = text.partition(":")
    if not sep or not start or not end:
        raise SettingsError(f"--compare {text!r}: expected 'previous' or START:END, e.g. 2025-01-01:2025-01-31")
    return q.Comparison(date_range=q.DateRange(start_date=start, end_date=end))


def _order_bys(names: Sequence[str], metrics: Sequence[str]) -> list[q.OrderBy]:
    from gnomon.v1 import query_pb2 as q

    out = []
    for raw in names:
        name, _, direction = raw.partition(":")
        desc = name.startswith("-") or direction.lower() == "desc"
        name = name.lstrip("-")
        if name in metrics:
            out.append(q.OrderBy(metric_name=name, desc=desc))
        else:
            out.append(q.OrderBy(dimension_name=name, desc=desc))
    return out


def _common(args: argparse.Namespace) -> dict[str, Any]:
    from gnomon.v1 import query_pb2 as q

    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    fields: dict[str, Any] = {
        "merchant_id": args.merchant,
        "date_range": q.DateRange(start_date=args.start, end_date=args.end),
        "metrics": metrics,
    }
    dimension_filter = _all_of([parse_filter(t, args.case_sensitive) for t in args.filter])
    if dimension_filter is not None:
        fields["dimension_filter"] = dimension_filter
    metric_filter = _all_of([parse_having(t) for t in args.having])
    if metric_filter is not None:
        fields["metric_filter"] = metric_filter
    comparison = _comparison(args.compare)
    if comparison is not None:
        fields["comparison"] = comparison
    if "order_by" in args:
        fields["order_bys"] = _order_bys(args.order_by, metrics)
        fields["limit"] = args.limit
        fields["offset"] = args.offset
    return fields


# ------------------------------------------------------------------------------------------- calling


Call = Callable[[Any, argparse.Namespace, "Console"], int]


def _run(call: Call) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        import grpc
        from rich.console import Console

        from gnomon.v1 import query_pb2_grpc

        token = args.token or os.environ.get("GNOMON_READ_TOKEN")
        if not token:
            raise SettingsError("--token (or GNOMON_READ_TOKEN) is required: a read token of the merchant")
        endpoint = args.endpoint or os.environ.get("GNOMON_QUERY_ENDPOINT") or DEFAULT_ENDPOINT
        ca = args.tls_ca or (Path(os.environ["GNOMON_QUERY_TLS_CA"]) if os.environ.get("GNOMON_QUERY_TLS_CA") else None)
        if ca is not None:
            channel = grpc.secure_channel(endpoint, grpc.ssl_channel_credentials(ca.read_bytes()))
        else:
            channel = grpc.insecure_channel(endpoint)
        console = Console()
        stub = query_pb2_grpc.QueryServiceStub(channel)
        args.metadata = (("authorization", f"Bearer {token}"),)
        try:
            return call(stub, args, console)
        except grpc.RpcError as err:
            console.print(f"[red]gnomon query: {err.code().name}[/red]: {err.details()}")
            return 1
        finally:
            channel.close()

    return handler


def _print_json(console: Console, message: Any) -> None:
    from google.protobuf.json_format import MessageToJson

    console.print_json(MessageToJson(message))


def _value(value: q.MetricValue, kind: int = 0) -> str:
    """A metric value for people: thousands separators, ratios as percentages, durations in seconds."""
    from gnomon.v1 import query_pb2 as q

    which = value.WhichOneof("value")
    if which == "int_value":
        return f"{value.int_value:,}"
    if which == "double_value":
        number = value.double_value
        if kind == q.METRIC_TYPE_FLOAT:
            return f"{number:.1%}"
        if kind == q.METRIC_TYPE_SECONDS:
            return f"{number:,.1f} s"
        return f"{number:,.4g}" if abs(number) < 1e6 else f"{number:,.0f}"
    if which == "decimal_value":
        return f"{float(value.decimal_value):,.2f}"
    return ""


def _number(value: q.MetricValue) -> float:
    kind = value.WhichOneof("value")
    if kind == "decimal_value":
        return float(value.decimal_value)
    return float(getattr(value, kind)) if kind else 0.0


def _change(now: q.MetricValue, before: q.MetricValue) -> str:
    a, b = _number(now), _number(before)
    if b == 0:
        return "" if a == 0 else "new"
    pct = (a - b) / abs(b) * 100
    color = "green" if pct >= 0 else "red"
    return f"[{color}]{pct:+.1f}%[/{color}]"


def print_report(console: Console, response: q.ReportResponse, title: str) -> None:
    from rich.table import Table

    compared = response.HasField("comparison_range")
    meta = response.metadata
    caption = f"{response.date_range.start_date} .. {response.date_range.end_date} ({meta.time_zone})"
    if compared:
        caption += f" vs {response.comparison_range.start_date} .. {response.comparison_range.end_date}"
    caption += f" · {len(response.rows)} of {response.row_count} rows · cube {meta.cube}"
    if meta.currency_code:
        caption += f" · currency {meta.currency_code}"
    if meta.from_cache:
        caption += " · cached"
    if meta.provisional:
        caption += " · includes open windows"
    table = Table(title=title, caption=caption, show_footer=bool(response.dimension_headers))
    for i, dimension in enumerate(response.dimension_headers):
        table.add_column(dimension.name, footer="Total" if i == 0 else "")
    for j, metric in enumerate(response.metric_headers):
        total = response.totals.metric_values[j] if response.totals.metric_values else None
        footer = _value(total, metric.type) if total is not None else ""
        table.add_column(metric.name, justify="right", footer=footer)
        if compared:
            footer = ""
            if total is not None and response.totals.comparison_values:
                footer = _change(total, response.totals.comparison_values[j])
            table.add_column("Δ", justify="right", footer=footer)
    for row in response.rows:
        cells = list(row.dimension_values)
        for j, value in enumerate(row.metric_values):
            cells.append(_value(value, response.metric_headers[j].type))
            if compared:
                cells.append(_change(value, row.comparison_values[j]) if row.comparison_values else "")
        table.add_row(*cells)
    console.print(table)
    for note in meta.notes:
        console.print(f"[dim]note: {note}[/dim]")


def _timeseries(stub: Any, args: argparse.Namespace, console: Console) -> int:
    from gnomon.v1 import query_pb2 as q

    granularity = q.Granularity.Value(f"GRANULARITY_{args.granularity.upper()}")
    request = q.TimeSeriesRequest(granularity=granularity, **_common(args))
    response = stub.TimeSeries(request, metadata=args.metadata, timeout=args.timeout)
    if args.json:
        _print_json(console, response)
    else:
        print_report(console, response, f"Time series by {args.granularity}")
    return 0


def _breakdown(stub: Any, args: argparse.Namespace, console: Console) -> int:
    from gnomon.v1 import query_pb2 as q

    request = q.BreakdownRequest(dimensions=args.dimensions, **_common(args))
    response = stub.Breakdown(request, metadata=args.metadata, timeout=args.timeout)
    if args.json:
        _print_json(console, response)
    else:
        print_report(console, response, f"Breakdown by {', '.join(args.dimensions)}")
    return 0


def _totals(stub: Any, args: argparse.Namespace, console: Console) -> int:
    from gnomon.v1 import query_pb2 as q

    response = stub.Totals(q.TotalsRequest(**_common(args)), metadata=args.metadata, timeout=args.timeout)
    if args.json:
        _print_json(console, response)
    else:
        print_report(console, response, "Totals")
    return 0


def _realtime(stub: Any, args: argparse.Namespace, console: Console) -> int:
    from rich.table import Table

    from gnomon.v1 import query_pb2 as q

    request = q.RealtimeRequest(
        merchant_id=args.merchant,
        dimensions=[d.strip() for d in args.dimensions.split(",") if d.strip()],
        metrics=[m.strip() for m in args.metrics.split(",") if m.strip()],
        minutes=args.minutes,
        limit=args.limit,
    )
    response = stub.Realtime(request, metadata=args.metadata, timeout=args.timeout)
    if args.json:
        _print_json(console, response)
        return 0
    peak = max((m.event_count for m in response.minutes), default=0) or 1
    table = Table(
        title=f"Realtime: {response.active_users:,} active users, {response.event_count:,} events",
        caption="bots excluded" if response.bots_excluded else "bots not excluded",
    )
    table.add_column("minutes ago", justify="right")
    table.add_column("users", justify="right")
    table.add_column("events", justify="right")
    table.add_column("")
    for m in response.minutes:
        bar = "█" * round(20 * m.event_count / peak)
        table.add_row(str(m.minutes_ago), f"{m.active_users:,}", f"{m.event_count:,}", f"[cyan]{bar}[/cyan]")
    console.print(table)
    if response.dimension_headers:
        rows = Table(title=f"by {', '.join(h.name for h in response.dimension_headers)}")
        for h in response.dimension_headers:
            rows.add_column(h.name)
        for mh in response.metric_headers:
            rows.add_column(mh.name, justify="right")
        for row in response.rows:
            rows.add_row(*row.dimension_values, *(_value(v) for v in row.metric_values))  # realtime: integers
        console.print(rows)
    return 0


def _metadata(stub: Any, args: argparse.Namespace, console: Console) -> int:
    from rich.table import Table

    from gnomon.v1 import query_pb2 as q

    response = stub.Metadata(q.MetadataRequest(merchant_id=args.merchant), metadata=args.metadata, timeout=args.timeout)
    if args.json:
        _print_json(console, response)
        return 0
    dims = Table(title=f"Dimensions ({response.time_zone})")
    for column in ("api name", "category", "realtime", "description"):
        dims.add_column(column)
    for d in response.dimensions:
        dims.add_row(d.api_name, d.category, "yes" if d.realtime else "", d.description)
    metrics = Table(title=f"Metrics ({response.currency_code})")
    for column in ("api name", "type", "realtime", "description"):
        metrics.add_column(column)
    for m in response.metrics:
        kind = q.MetricType.Name(m.type).removeprefix("METRIC_TYPE_").lower()
        metrics.add_row(m.api_name, kind, "yes" if m.realtime else "", m.description)
    cubes = Table(title="Dimensions that combine (plus date, dateHour, week, month)")
    cubes.add_column("cube")
    cubes.add_column("dimensions")
    for c in response.cubes:
        cubes.add_row(c.name, ", ".join(c.dimensions) or "(none)")
    for table in (dims, metrics, cubes):
        console.print(table)
    return 0


# --------------------------------------------------------------------------------------------- serve


def _serve(args: argparse.Namespace) -> int:
    """Run the query service until SIGTERM/SIGINT, then drain and exit (0 on a clean stop)."""
    from gnomon.telemetry import setup_telemetry
    from query_svc.server import create_server
    from query_svc.settings import QuerySettings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = QuerySettings.from_env()
    changes = listen_changes(args)
    if args.workers is not None:
        changes["workers"] = args.workers
    settings = replace(settings, **changes) if changes else settings
    resource = {"gnomon.region": settings.common.region}
    telemetry = setup_telemetry(replace(settings.telemetry, resource_attributes=resource), install_global=True)
    try:
        with query_deps(settings.common, telemetry) as deps:
            server, port = create_server(settings, deps)
            stop = stop_on_signals()
            server.start()
            print(f"query service listening on {settings.host}:{port}", flush=True)
            wait_for(stop)
            log.info("stopping: letting calls in flight finish for up to %.1f s", settings.grace_s)
            server.stop(settings.grace_s).wait()
    except EnginesUnreachable as exc:
        print(f"gnomon: {exc}", file=sys.stderr)
        return 1
    finally:
        telemetry.shutdown()
    return 0
