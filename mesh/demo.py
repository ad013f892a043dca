"""`gnomon up --demo`: a demo merchant with keys, synthetic traffic, and a live report printed to the terminal.

The demo merchant's keys are kept in `<data_dir>/demo.json` (plaintext, readable only by you: this is a local
demo; real keys are shown once and stored hashed) so that a second `gnomon up --demo` reuses the same merchant.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import grpc
from rich.console import Group
from rich.table import Table

from gnomon.control import KeyKind, open_control_store
from gnomon.settings import CommonSettings
from gnomon.v1 import query_pb2, query_pb2_grpc

DEMO_MERCHANT = "demo-shop"
DEMO_ZONE = "Europe/Berlin"
DEMO_TRAFFIC_DAYS = 0.1  # event times of the demo traffic reach back this far (2.4 h) ...
TOTAL_METRICS = ("activeUsers", "sessions", "screenPageViews", "bounceRate", "totalRevenue")


@dataclass(frozen=True)
class DemoMerchant:
    merchant_id: str
    write_key: str
    read_token: str


def ensure_demo_merchant(settings: CommonSettings) -> DemoMerchant:
    """The demo merchant (Europe/Berlin, USD) and a write key + read token, created once per data dir."""
    saved = settings.data_dir / "demo.json"
    control = open_control_store(settings)
    try:
        if saved.exists():
            demo = DemoMerchant(**json.loads(saved.read_text()))
            known = control.get_merchant(demo.merchant_id) is not None
            if known and control.resolve(demo.write_key) and control.resolve(demo.read_token):
                return demo
        if control.get_merchant(DEMO_MERCHANT) is None:
            control.create_merchant("Demo Shop", DEMO_ZONE, "USD", DEMO_MERCHANT)
        write = control.create_key(DEMO_MERCHANT, KeyKind.WRITE, "gnomon up --demo")
        read = control.create_key(DEMO_MERCHANT, KeyKind.READ, "gnomon up --demo")
    finally:
        control.close()
    demo = DemoMerchant(DEMO_MERCHANT, write.secret, read.secret)
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(demo.__dict__))
    os.chmod(saved, 0o600)
    return demo


def traffic_days(now: datetime) -> float:
    """How far back (in days) the demo traffic's event times reach from `now` (UTC-aware): DEMO_TRAFFIC_DAYS, but
    not past the demo merchant's local midnight (and at least one second), so that the events land on the
    local day the live report shows as "today" also just after midnight."""
    local = now.astimezone(ZoneInfo(DEMO_ZONE))
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)
    since_midnight_s = (now.astimezone(UTC) - midnight).total_seconds()
    return max(min(DEMO_TRAFFIC_DAYS * 86_400, since_midnight_s), 1.0) / 86_400


def _value(v: query_pb2.MetricValue) -> str:
    kind = v.WhichOneof("value")
    if kind == "int_value":
        return f"{v.int_value:,}"
    if kind == "double_value":
        return f"{v.double_value:.2f}"
    return v.decimal_value


def live_report(query_address: str, read_token: str, timeout_s: float = 5.0) -> Group:
    """Today's totals and top pages of the token's merchant, as rich renderables. Raises grpc.RpcError."""
    metadata = (("authorization", f"Bearer {read_token}"),)
    today = query_pb2.DateRange(start_date="today", end_date="today")
    with grpc.insecure_channel(query_address) as channel:
        stub = query_pb2_grpc.QueryServiceStub(channel)
        totals = stub.Totals(
            query_pb2.TotalsRequest(date_range=today, metrics=TOTAL_METRICS), metadata=metadata, timeout=timeout_s
        )
        pages = stub.Breakdown(
            query_pb2.BreakdownRequest(
                date_range=today, dimensions=["pagePath"], metrics=["screenPageViews", "activeUsers"], limit=5
            ),
            metadata=metadata,
            timeout=timeout_s,
        )
    kpis = Table(title=f"today ({totals.metadata.time_zone}), {totals.metadata.currency_code}")
    for name in TOTAL_METRICS:
        kpis.add_column(name, justify="right")
    kpis.add_row(*(_value(v) for v in totals.totals.metric_values))
    top = Table(title="top pages today")
    for column in ("pagePath", "views", "users"):
        top.add_column(column)
    for row in pages.rows:
        top.add_row(row.dimension_values[0], *(_value(v) for v in row.metric_values))
    return Group(kpis, top)
