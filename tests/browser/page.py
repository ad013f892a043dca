"""Reading the dashboard as a person sees it, and asking the gRPC API the same questions it asked.

`read_page` returns every number on screen with the raw value it was formatted from (`data-value`); the `expect_*`
helpers build the same requests the dashboard sends (dashboard/src/panels/*.ts) and call the gRPC QueryService.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import grpc

from gnomon.v1 import query_pb2 as q
from query_svc.testing import bearer
from query_svc.web.browser import Browser
from query_svc.web.testing import Dashboard

KPI_METRICS = ("totalUsers", "sessions", "screenPageViews", "bounceRate", "averageSessionDuration", "totalRevenue")
KPI_TYPES = ("int", "int", "int", "ratio", "seconds", "currency")
TABLES = {
    "pages": "pagePath",
    "sources": "sessionSourceMedium",
    "channels": "sessionDefaultChannelGroup",
    "countries": "country",
    "devices": "deviceCategory",
    "browsers": "browser",
}
PANELS = ("kpis", "chart", "realtime", *TABLES)

READ_PAGE_JS = """(() => {
  const text = (el) => (el ? el.textContent.trim() : null);
  const panels = {};
  for (const p of document.querySelectorAll('.panel')) {
    panels[p.dataset.panel] = {
      state: p.dataset.state, problem: p.dataset.problem || null,
      status: text(p.querySelector('.panel-status')), refreshes: Number(p.dataset.refreshes || 0),
    };
  }
  const kpis = [...document.querySelectorAll('.kpi')].map((k) => ({
    metric: k.dataset.metric, value: k.dataset.value, prev: k.dataset.prev ?? null,
    text: text(k.querySelector('.kpi-value')), delta: text(k.querySelector('.kpi-delta')),
  }));
  const tables = {};
  for (const p of document.querySelectorAll('.panel-table')) {
    tables[p.dataset.panel] = {
      rows: [...p.querySelectorAll('tr.row')].map((r) => ({
        dim: r.dataset.dimValue, text: text(r.querySelector('.dim-text')),
        users: r.querySelector('[data-metric=totalUsers]').dataset.value,
        usersText: text(r.querySelector('[data-metric=totalUsers]')),
        sessions: r.querySelector('[data-metric=sessions]').dataset.value,
        sessionsText: text(r.querySelector('[data-metric=sessions]')),
      })),
      more: text(p.querySelector('.more')),
    };
  }
  const chart = document.querySelector('.chart');
  const rt = document.querySelector('[data-panel=realtime]');
  const rtNumber = rt && rt.querySelector('.rt-number');
  const summary = document.querySelector('[data-testid=summary]');
  return {
    panels, kpis, tables,
    chart: chart ? JSON.parse(chart.dataset.series) : null,
    realtime: rtNumber ? {
      activeUsers: rtNumber.dataset.value, activeUsersText: text(rtNumber),
      eventCount: rt.querySelector('[data-metric=eventCount]').dataset.value,
      minutes: [...rt.querySelectorAll('.bar')].map((b) => ({
        start: Number(b.dataset.minuteStart), value: b.dataset.value,
      })),
      pages: [...rt.querySelectorAll('.rt-pages li')].map((li) => ({
        dim: li.dataset.dimValue, value: li.querySelector('.num').dataset.value,
      })),
    } : null,
    summary: summary ? {...summary.dataset, text: text(summary)} : null,
    chips: [...document.querySelectorAll('.chip')].map((c) => ({
      dimension: c.dataset.dimension, value: c.dataset.value,
    })),
  };
})()"""

SETTLED_JS = (
    "document.querySelectorAll('.panel').length >= 9"
    " && [...document.querySelectorAll('.panel')].every((p) => p.dataset.state !== 'loading')"
)


def read_page(browser: Browser) -> dict[str, Any]:
    page: dict[str, Any] = browser.eval(READ_PAGE_JS)
    return page


def wait_settled(browser: Browser, timeout_s: float = 20.0) -> dict[str, Any]:
    """Wait until no panel is loading; returns the page state."""
    browser.wait_for(SETTLED_JS, timeout_s)
    return read_page(browser)


def open_dashboard(browser: Browser, stack: Dashboard, token: str | None = None, hash_: str = "") -> None:
    """Open the page with `token` remembered in localStorage (as if pasted before)."""
    browser.goto(stack.url + "healthz")  # same origin, another document: the next goto loads the page afresh
    secret = stack.read_token if token is None else token
    saved = json.dumps([{"label": "Acme Shop", "token": secret}])
    browser.eval(
        f"localStorage.setItem('gnomon.dashboard.tokens', {json.dumps(saved)});"
        f"localStorage.setItem('gnomon.dashboard.active', {json.dumps(secret)}); true"
    )
    browser.goto(stack.url + hash_)


# ------------------------------------------------------------------------------------------ the same requests


def filter_expression(filters: list[tuple[str, str]]) -> q.FilterExpression | None:
    leaves = [
        q.FilterExpression(
            filter=q.Filter(
                field_name=dim,
                string_filter=q.StringFilter(match_type=q.StringFilter.EXACT, value=value, case_sensitive=True),
            )
        )
        for dim, value in filters
    ]
    if not leaves:
        return None
    if len(leaves) == 1:
        return leaves[0]
    return q.FilterExpression(and_group=q.FilterExpressionList(expressions=leaves))


@dataclass(frozen=True)
class Asked:
    """What the dashboard asks for one state: range, comparison, grain, filters."""

    start: str = "28daysAgo"
    end: str = "yesterday"
    compare: bool = True
    granularity: q.Granularity.ValueType = q.GRANULARITY_DAY
    metric: str = "totalUsers"
    filters: tuple[tuple[str, str], ...] = ()

    def common(self) -> dict[str, Any]:
        args: dict[str, Any] = {"date_range": q.DateRange(start_date=self.start, end_date=self.end)}
        expr = filter_expression(list(self.filters))
        if expr is not None:
            args["dimension_filter"] = expr
        return args

    def comparison(self) -> dict[str, Any]:
        if not self.compare:
            return {}
        return {"comparison": q.Comparison(previous_period=q.Comparison.PreviousPeriod())}


def call(stack: Dashboard, method: str, request: Any) -> Any:
    """Call the gRPC API with the read token; returns the response or the grpc.RpcError."""
    try:
        return getattr(stack.grpc.stub, method)(request, metadata=bearer(stack.read_token), timeout=30)
    except grpc.RpcError as exc:
        return exc


def expect_totals(stack: Dashboard, asked: Asked) -> Any:
    return call(stack, "Totals", q.TotalsRequest(metrics=KPI_METRICS, **asked.common(), **asked.comparison()))


def expect_series(stack: Dashboard, asked: Asked) -> Any:
    request = q.TimeSeriesRequest(
        metrics=[asked.metric], granularity=asked.granularity, **asked.common(), **asked.comparison()
    )
    return call(stack, "TimeSeries", request)


def expect_breakdown(stack: Dashboard, asked: Asked, dimension: str) -> Any:
    request = q.BreakdownRequest(dimensions=[dimension], metrics=["totalUsers", "sessions"], limit=10, **asked.common())
    return call(stack, "Breakdown", request)


def expect_realtime(stack: Dashboard, asked: Asked) -> Any:
    request = q.RealtimeRequest(minutes=30, dimensions=["pagePath"], metrics=["activeUsers"], limit=5)
    expr = filter_expression(list(asked.filters))
    if expr is not None:
        request.dimension_filter.CopyFrom(expr)
    return call(stack, "Realtime", request)


# ------------------------------------------------------------------------------------------ values and text


def raw(value: q.MetricValue) -> str:
    """The API value as the page keeps it in data-value."""
    kind = value.WhichOneof("value")
    if kind == "int_value":
        return str(value.int_value)
    if kind == "double_value":
        return repr(value.double_value)
    if kind == "decimal_value":
        return value.decimal_value
    return "0"


def same_value(page_raw: str | None, api: q.MetricValue) -> bool:
    """data-value equals the API value (doubles compared as numbers: JS and Python print them differently)."""
    if page_raw is None:
        return False
    if api.WhichOneof("value") == "double_value":
        return float(page_raw) == api.double_value
    return page_raw == raw(api)


def _digits(text: str) -> str:
    return re.sub(r"[^0-9.\-]", "", text.replace("\N{MINUS SIGN}", "-"))


def shows(text: str, value: str, kind: str) -> bool:
    """The visible text is the value formatted as the dashboard does (en-US locale)."""
    if kind == "int":
        return _digits(text) == value
    if kind == "ratio":
        return text.endswith("%") and abs(float(_digits(text)) / 100 - float(value)) <= 0.0005 + 1e-9
    if kind == "seconds":
        match = re.fullmatch(r"(?:(\d+)h )?(?:(\d+)m )?(\d+)([sm])", text)
        if not match:
            return False
        h, m, s, unit = match.groups()
        total = int(h or 0) * 3600 + int(m or 0) * 60 + (int(s) * 60 if unit == "m" else int(s))
        seconds = round(float(value))
        return total == seconds if not h else abs(total - seconds) < 60
    if kind == "currency":
        return Decimal(_digits(text)) == Decimal(value).quantize(Decimal("0.01"))
    raise ValueError(kind)


def is_incompatible(response: Any) -> bool:
    return isinstance(response, grpc.RpcError) and response.code() is grpc.StatusCode.INVALID_ARGUMENT
