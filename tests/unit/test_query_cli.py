"""`gnomon query` argument parsing: filters, metric conditions, comparisons, order."""

from __future__ import annotations

import argparse

import pytest

from gnomon.cli import query_cmd
from gnomon.settings import SettingsError
from gnomon.v1 import query_pb2 as q
from query_svc.convert import filter_from_proto
from query_svc.model import InList, MatchType, Not, NumericCompare, NumericOp, StringMatch


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pagePath==/home", StringMatch("pagePath", MatchType.EXACT, "/home")),
        ("pagePath!=/home", Not(StringMatch("pagePath", MatchType.EXACT, "/home"))),
        ("pagePath^=/blog", StringMatch("pagePath", MatchType.BEGINS_WITH, "/blog")),
        ("pagePath$=.html", StringMatch("pagePath", MatchType.ENDS_WITH, ".html")),
        ("pagePath*=shop", StringMatch("pagePath", MatchType.CONTAINS, "shop")),
        ("pagePath=~/p/[0-9]+", StringMatch("pagePath", MatchType.FULL_REGEXP, "/p/[0-9]+")),
        ("pagePath~^/a", StringMatch("pagePath", MatchType.PARTIAL_REGEXP, "^/a")),
        ("pagePath!~^/a", Not(StringMatch("pagePath", MatchType.PARTIAL_REGEXP, "^/a"))),
        ("country=in:India, Nepal", InList("country", ("India", "Nepal"))),
        ("pagePath==/a==b", StringMatch("pagePath", MatchType.EXACT, "/a==b")),
    ],
)
def test_filters(text: str, expected: object) -> None:
    assert filter_from_proto(query_cmd.parse_filter(text), "f") == expected


def test_case_sensitive_filter() -> None:
    assert filter_from_proto(query_cmd.parse_filter("pagePath==/A", True), "f") == StringMatch(
        "pagePath", MatchType.EXACT, "/A", True
    )


@pytest.mark.parametrize("text", ["pagePath", "==x", "page path==x", ""])
def test_bad_filters(text: str) -> None:
    with pytest.raises(SettingsError):
        query_cmd.parse_filter(text)


def test_having() -> None:
    assert filter_from_proto(query_cmd.parse_having("sessions>10"), "f") == NumericCompare(
        "sessions", NumericOp.GREATER_THAN, 10
    )
    assert filter_from_proto(query_cmd.parse_having(" engagementRate <= 0.5 "), "f") == NumericCompare(
        "engagementRate", NumericOp.LESS_THAN_OR_EQUAL, 0.5
    )
    with pytest.raises(SettingsError):
        query_cmd.parse_having("sessions>>1")


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    query_cmd.register(parser.add_subparsers())
    return parser.parse_args(["query", *argv])


def test_request_fields() -> None:
    args = _parse(
        "--token", "t", "breakdown", "pagePath", "--metrics", "sessions,totalUsers", "--order-by", "sessions:desc",
        "--order-by", "pagePath", "--compare", "2025-01-01:2025-01-31", "--filter", "pagePath^=/a",
        "--filter", "pagePath!=/ab", "--having", "sessions>=2", "--limit", "5",
    )  # fmt: skip
    fields = query_cmd._common(args)
    request = q.BreakdownRequest(dimensions=args.dimensions, **fields)
    assert list(request.metrics) == ["sessions", "totalUsers"]
    assert [o.WhichOneof("field") for o in request.order_bys] == ["metric_name", "dimension_name"]
    assert request.order_bys[0].desc
    assert request.comparison.date_range.start_date == "2025-01-01"
    assert len(request.dimension_filter.and_group.expressions) == 2
    assert request.metric_filter.filter.field_name == "sessions"
    assert request.limit == 5
    assert request.date_range.start_date == "28daysAgo"
    with pytest.raises(SettingsError):
        query_cmd._common(_parse("totals", "--compare", "lastyear"))
