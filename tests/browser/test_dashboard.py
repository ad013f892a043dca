"""The dashboard in Chromium against a live stack: every number on screen is what the gRPC API answers to the same
request; clicking a row filters every panel; new events reach the realtime panel; a bad token says what to do;
it is usable at 1280 px and at 390 px (screenshots in test-artifacts/)."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc

from gnomon.v1 import query_pb2 as q
from query_svc.web.browser import Browser
from query_svc.web.testing import SAFARI_IPHONE, Dashboard, RawEvent, raw_events
from tests.browser.page import (
    KPI_METRICS,
    KPI_TYPES,
    PANELS,
    TABLES,
    Asked,
    expect_breakdown,
    expect_realtime,
    expect_series,
    expect_totals,
    is_incompatible,
    open_dashboard,
    read_page,
    same_value,
    shows,
    wait_settled,
)

TOKEN_REFUSED = "This read token was refused: create one with `gnomon key create --kind read`"


def check_kpis(page: dict[str, Any], totals: q.ReportResponse, compare: bool) -> None:
    tiles = {k["metric"]: k for k in page["kpis"]}
    assert list(tiles) == list(KPI_METRICS)
    for i, (metric, kind) in enumerate(zip(KPI_METRICS, KPI_TYPES, strict=True)):
        tile = tiles[metric]
        value = totals.totals.metric_values[i]
        assert same_value(tile["value"], value), (metric, tile, value)
        assert shows(tile["text"], tile["value"], kind), (metric, tile)
        if compare:
            assert same_value(tile["prev"], totals.totals.comparison_values[i]), (metric, tile)
            assert tile["delta"], metric
        else:
            assert tile["prev"] is None


def check_series(page: dict[str, Any], series: q.ReportResponse) -> None:
    shown = page["chart"]
    assert shown["keys"] == [r.dimension_values[0] for r in series.rows]
    assert len(shown["values"]) == len(series.rows)
    for value, row in zip(shown["values"], series.rows, strict=True):
        assert same_value(value, row.metric_values[0])
    if not series.HasField("comparison_range"):
        assert shown["previous"] == []
        return
    for prev, row in zip(shown["previous"], series.rows, strict=True):
        assert same_value(prev, row.comparison_values[0])


def check_table(page: dict[str, Any], panel: str, report: q.ReportResponse) -> None:
    shown = page["tables"][panel]
    assert [r["dim"] for r in shown["rows"]] == [row.dimension_values[0] for row in report.rows], panel
    for r, row in zip(shown["rows"], report.rows, strict=True):
        assert r["text"] == r["dim"]
        assert same_value(r["users"], row.metric_values[0]) and shows(r["usersText"], r["users"], "int"), (panel, r)
        assert same_value(r["sessions"], row.metric_values[1]) and shows(r["sessionsText"], r["sessions"], "int")
    hidden = report.row_count - len(report.rows)
    assert (shown["more"] or "") == (f"{hidden:,} more not shown" if hidden > 0 else "")


def check_realtime(page: dict[str, Any], rt: q.RealtimeResponse) -> None:
    shown = page["realtime"]
    assert shown["activeUsers"] == str(rt.active_users)
    assert shows(shown["activeUsersText"], shown["activeUsers"], "int")
    assert shown["eventCount"] == str(rt.event_count)
    api_minutes = {m.minute_start.seconds: str(m.active_users) for m in rt.minutes}
    common = [m for m in shown["minutes"] if m["start"] in api_minutes]
    assert len(common) >= 28  # at most a minute boundary between the page's call and ours
    assert all(m["value"] == api_minutes[m["start"]] for m in common)
    assert [(p["dim"], p["value"]) for p in shown["pages"]] == [
        (row.dimension_values[0], str(row.metric_values[0].int_value)) for row in rt.rows
    ]


def check_everything(stack: Dashboard, page: dict[str, Any], asked: Asked) -> None:
    """Every panel shows what the gRPC API answers, or says the filters cannot be combined when it refuses."""
    checks: dict[str, tuple[Any, Callable[[Any], None]]] = {
        "kpis": (expect_totals(stack, asked), lambda r: check_kpis(page, r, asked.compare)),
        "chart": (expect_series(stack, asked), lambda r: check_series(page, r)),
        "realtime": (expect_realtime(stack, asked), lambda r: check_realtime(page, r)),
    }
    for panel, dimension in TABLES.items():
        checks[panel] = (expect_breakdown(stack, asked, dimension), functools.partial(check_table, page, panel))
    for panel, (response, check) in checks.items():
        state = page["panels"][panel]
        if is_incompatible(response):
            assert asked.filters, f"{panel}: the API refused an unfiltered request: {response}"
            assert state["state"] == "error" and state["problem"] == "filters", (panel, state)
            assert "Remove a filter" in state["status"]
        else:
            assert not isinstance(response, grpc.RpcError), (panel, response)
            assert state["state"] == "ready", (panel, state)
            check(response)


def test_the_overview_shows_exactly_what_the_api_answers(stack: Dashboard, browser: Browser, artifacts: Path) -> None:
    open_dashboard(browser, stack)
    page = wait_settled(browser)  # speed is bench/dashboard's business: here only what the page shows
    assert set(page["panels"]) == set(PANELS)
    check_everything(stack, page, Asked())
    totals = expect_totals(stack, Asked())
    assert page["summary"]["start"] == totals.date_range.start_date
    assert page["summary"]["end"] == totals.date_range.end_date
    assert page["summary"]["compareEnd"] == totals.comparison_range.end_date
    assert "Asia/Kolkata" in page["summary"]["text"]
    browser.screenshot(artifacts / "dashboard-1280.png")


def test_presets_granularity_and_comparison_toggle(stack: Dashboard, browser: Browser) -> None:
    open_dashboard(browser, stack)
    wait_settled(browser)
    browser.select("[data-control=range]", "yesterday")
    page = wait_settled(browser)
    check_everything(
        stack, page, Asked(start="yesterday", end="yesterday", granularity=q.GRANULARITY_HOUR)
    )  # one day: hourly
    browser.select("[data-control=range]", "7d")
    browser.click("[data-control=compare]")
    browser.wait_for("document.querySelector('.kpi') && !document.querySelector('.kpi[data-prev]')")
    page = wait_settled(browser)
    check_everything(stack, page, Asked(start="7daysAgo", end="yesterday", compare=False))
    browser.select("[data-control=metric]", "totalRevenue")
    browser.wait_for("document.querySelector('.chart')?.dataset.series.includes('totalRevenue')")
    page = wait_settled(browser)
    asked = Asked(start="7daysAgo", end="yesterday", compare=False, metric="totalRevenue")
    check_series(page, expect_series(stack, asked))


def test_custom_range_and_week_grain(stack: Dashboard, browser: Browser) -> None:
    today = datetime.now(UTC).astimezone(stack.zone).date()
    start, end = (today - timedelta(days=40)).isoformat(), (today - timedelta(days=10)).isoformat()
    open_dashboard(browser, stack, hash_=f"#range=custom&start={start}&end={end}&grain=week")
    page = wait_settled(browser)
    check_everything(stack, page, Asked(start=start, end=end, granularity=q.GRANULARITY_WEEK))
    assert browser.eval("document.querySelector('[data-control=start]').value") == start


def test_clicking_rows_filters_every_panel(stack: Dashboard, browser: Browser, artifacts: Path) -> None:
    open_dashboard(browser, stack)
    wait_settled(browser)
    browser.click("[data-panel=devices] tr[data-dim-value='mobile']")
    browser.wait_for("document.querySelectorAll('.chip').length === 1")
    page = wait_settled(browser)
    assert page["chips"] == [{"dimension": "deviceCategory", "value": "mobile"}]
    asked = Asked(filters=(("deviceCategory", "mobile"),))
    check_everything(stack, page, asked)
    assert page["panels"]["pages"]["state"] == "ready"  # page x device is a cube
    assert page["panels"]["sources"]["problem"] == "filters"  # source/medium x device is not
    assert [r["dim"] for r in page["tables"]["devices"]["rows"]] == ["mobile"]
    # a second filter: page and device together
    top_page = page["tables"]["pages"]["rows"][0]["dim"]
    browser.click(f"[data-panel=pages] tr[data-dim-value='{top_page}']")
    browser.wait_for("document.querySelectorAll('.chip').length === 2")
    page = wait_settled(browser)
    check_everything(stack, page, Asked(filters=(("deviceCategory", "mobile"), ("pagePath", top_page))))
    browser.screenshot(artifacts / "dashboard-filtered-1280.png")
    # removing the chips brings every panel back to the unfiltered numbers
    browser.click(".chip[data-dimension=deviceCategory] .chip-remove")
    browser.wait_for("document.querySelectorAll('.chip').length === 1")
    page = wait_settled(browser)
    check_everything(stack, page, Asked(filters=(("pagePath", top_page),)))
    browser.click(".chip .chip-remove")
    browser.wait_for("document.querySelectorAll('.chip').length === 0")
    page = wait_settled(browser)
    check_everything(stack, page, Asked())


def test_new_events_appear_in_the_realtime_panel(stack: Dashboard, browser: Browser) -> None:
    open_dashboard(browser, stack)
    page = wait_settled(browser)
    before = int(page["realtime"]["activeUsers"])
    refreshes = page["panels"]["realtime"]["refreshes"]
    now = datetime.now(UTC)
    fresh = [
        RawEvent(f"new-{i}", now - timedelta(seconds=20 + i), "/checkout", user_agent=SAFARI_IPHONE) for i in range(5)
    ]
    stack.events.upsert(raw_events(stack.merchant_id, stack.zone, fresh, prefix=f"new-{time.time_ns()}"))
    # the panel refreshes itself every 10 s: no reload, no click
    browser.wait_for(
        f"Number(document.querySelector('[data-panel=realtime]').dataset.refreshes) > {refreshes}"
        f" && Number(document.querySelector('.rt-number').dataset.value) >= {before + 5}",
        timeout_s=60,  # a refresh in flight during the upsert may miss the new events: room for several
    )
    page = read_page(browser)
    assert int(page["realtime"]["activeUsers"]) == before + 5
    assert "/checkout" in [p["dim"] for p in page["realtime"]["pages"]]
    check_realtime(page, expect_realtime(stack, Asked()))


def test_a_refused_token_says_how_to_get_one(stack: Dashboard, browser: Browser, artifacts: Path) -> None:
    open_dashboard(browser, stack, token="gn_r_0000000000000000_notarealsecretnotarealsecret")
    browser.wait_for("document.querySelector('[data-testid=token-refused]')")
    text = browser.eval("document.querySelector('[data-testid=token-refused]').textContent")
    assert TOKEN_REFUSED in text
    assert "unknown read token" in text
    browser.screenshot(artifacts / "dashboard-bad-token.png")
    # a write key is refused too (the server's PERMISSION_DENIED), with the same advice
    open_dashboard(browser, stack, token=stack.write_token.replace("gn_w_", "gn_r_", 1))
    browser.wait_for("document.querySelector('[data-testid=token-refused]')")
    # pasting the right token in the form opens the dashboard
    browser.fill("#token-value", stack.read_token)
    browser.click("button[type=submit]")
    page = wait_settled(browser)
    assert page["panels"]["kpis"]["state"] == "ready"
    # and the form refuses a write key before sending it anywhere
    open_dashboard(browser, stack, token="gn_r_0000000000000000_notarealsecretnotarealsecret")
    browser.wait_for("document.querySelector('#token-value')")
    browser.fill("#token-value", stack.write_token)
    browser.click("button[type=submit]")
    assert "write key" in browser.wait_for("document.querySelector('.form-error').textContent")


def test_first_visit_asks_for_a_token_and_remembers_it(stack: Dashboard, browser: Browser) -> None:
    browser.goto(stack.url + "healthz")
    browser.eval("localStorage.clear(); true")
    browser.goto(stack.url)
    browser.wait_for("document.querySelector('#token-value')")
    browser.fill("#token-label", "Acme")
    browser.fill("#token-value", stack.read_token)
    browser.click("button[type=submit]")
    wait_settled(browser)
    browser.goto(stack.url)  # a reload keeps the token
    page = wait_settled(browser)
    assert page["panels"]["kpis"]["state"] == "ready"
    assert browser.eval("document.querySelector('[data-control=merchant]').selectedOptions[0].textContent") == "Acme"


def test_phone_width_is_usable(stack: Dashboard, browser: Browser, artifacts: Path) -> None:
    browser.launch(390, 844, mobile=True)
    open_dashboard(browser, stack)
    page = wait_settled(browser)
    check_everything(stack, page, Asked())
    assert browser.eval("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
    widths = browser.eval("[...document.querySelectorAll('.panel')].map((p) => p.getBoundingClientRect().right)")
    assert max(widths) <= 390
    browser.screenshot(artifacts / "dashboard-390-top.png", full_page=False)
    browser.screenshot(artifacts / "dashboard-390.png")
    browser.click("[data-panel=countries] tr.row")
    browser.wait_for("document.querySelectorAll('.chip').length === 1")
    wait_settled(browser)
    assert browser.eval("document.documentElement.scrollWidth") <= 390
    browser.eval("window.scrollTo(0, 0); true")
    browser.screenshot(artifacts / "dashboard-390-filtered-top.png", full_page=False)
