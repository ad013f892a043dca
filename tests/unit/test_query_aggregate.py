"""Aggregation: counters sum, users are sketch unions (never sums), ratios come from summed parts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np

from gnomon.rollups import Grain
from query_svc.aggregate import group_rows, metric_values, numeric, users_estimate
from query_svc.catalog import METRICS
from query_svc.reader import RowBatch
from query_svc.testing import rollup_row

T0 = datetime(2026, 1, 10, tzinfo=UTC)
DAY = timedelta(days=1)


def _batch() -> RowBatch:
    return RowBatch.from_rows(
        [
            rollup_row("m1", "page", Grain.DAY, T0, ("/a",), users=["u1", "u2", "u3"], sessions=4, engaged_sessions=3,
                       bounces=1, session_duration_ms=40_000, revenue_micros=1_250_000, pageviews=7),
            rollup_row("m1", "page", Grain.DAY, T0 + DAY, ("/a",), users=["u2", "u3", "u4"], sessions=6,
                       engaged_sessions=1, bounces=5, session_duration_ms=20_000, revenue_micros=-250_000, pageviews=3),
            rollup_row("m1", "page", Grain.DAY, T0, ("/b",), users=["u9"], sessions=0, pageviews=1),
        ]
    )  # fmt: skip


def test_batch_columns() -> None:
    batch = _batch()
    assert batch.windows == [T0, T0 + DAY]
    assert batch.dims == [("/a",), ("/b",)]
    assert batch.window_codes.tolist() == [0, 1, 0]
    assert batch.dims_codes.tolist() == [0, 0, 1]
    assert batch.counters.shape == (8, 3)
    assert batch.users.take([2, 0]) == [batch.users[2], batch.users[0]]
    assert not batch.provisional


def cols(*values: str) -> list[np.ndarray]:
    return [np.array(values, dtype=object)]


def test_users_of_two_days_are_the_union_not_the_sum() -> None:
    batch = _batch()
    groups = group_rows(batch, np.array([0, 0, 1]), cols("/a", "/b"), 2)
    users = metric_values(METRICS["totalUsers"], groups, np.array([0, 1]))
    assert users.tolist() == [4, 1]  # {u1,u2,u3} union {u2,u3,u4} = 4 users, not 3 + 3
    assert groups.counter("sessions").tolist() == [10, 0]
    assert groups.counter("pageviews").tolist() == [10, 1]


def test_ratios_come_from_summed_numerators_and_denominators() -> None:
    groups = group_rows(_batch(), np.array([0, 0, 1]), cols("/a", "/b"), 2)
    rows = np.array([0, 1])
    assert metric_values(METRICS["engagementRate"], groups, rows).tolist() == [0.4, 0.0]  # 4/10, 0/0 -> 0
    assert metric_values(METRICS["bounceRate"], groups, rows).tolist() == [0.6, 0.0]
    assert metric_values(METRICS["averageSessionDuration"], groups, rows).tolist() == [6.0, 0.0]  # 60 s / 10
    revenue = metric_values(METRICS["totalRevenue"], groups, rows)
    assert revenue.tolist() == [1_000_000, 0]  # micros, refunds included
    assert numeric(METRICS["totalRevenue"], revenue).tolist() == [1.0, 0.0]
    assert Decimal(int(revenue[0])).scaleb(-6) == Decimal("1.000000")


def test_dropped_rows_and_empty_groups() -> None:
    groups = group_rows(_batch(), np.array([-1, 0, -1]), cols("/a", "/z"), 2)
    assert groups.counter("sessions").tolist() == [6, 0]
    assert metric_values(METRICS["activeUsers"], groups, np.array([0, 1])).tolist() == [3, 0]
    padded = groups.with_zero_rows([("/y",)])
    assert padded.key(2) == ("/y",)
    assert padded.keys() == [("/a",), ("/z",), ("/y",)]
    assert metric_values(METRICS["newUsers"], padded, np.array([2])).tolist() == [0]
    empty = group_rows(RowBatch.from_rows([]), np.zeros(0, dtype=np.intp), [], 1)
    assert empty.counters.tolist() == [[0]] * 8


def test_users_estimate() -> None:
    from gnomon.rollups import EMPTY_SKETCH, sketch_of

    assert users_estimate([]) == 0
    assert users_estimate([EMPTY_SKETCH, b""]) == 0
    assert users_estimate([sketch_of(["a", "b"])]) == 2
    assert users_estimate([sketch_of(["a", "b"]), sketch_of(["b", "c"]), EMPTY_SKETCH]) == 3
    many = [sketch_of([f"u{i}" for i in range(j, j + 1000)]) for j in range(0, 10_000, 500)]
    assert abs(users_estimate(many) - 10_500) / 10_500 < 0.05  # HLL: ±3.2 % at 95 %


def test_sums_stay_exact_beyond_float_precision() -> None:
    big = 2**60 + 1  # not representable in float64
    batch = RowBatch.from_rows(
        [rollup_row("m1", "total", Grain.DAY, T0 + i * DAY, revenue_micros=big, events=1) for i in range(4)]
        + [rollup_row("m1", "total", Grain.DAY, T0 + 9 * DAY, revenue_micros=-big)]
    )
    groups = group_rows(batch, np.array([0, 0, 0, 1, 1]), [], 2)
    assert groups.counter("revenue_micros").tolist() == [3 * big, 0]
    assert groups.counter("events").tolist() == [3, 1]
