"""GA4 calendar dimensions: labels against independent definitions, and the runs a date range is cut into."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from query_svc.errors import InvalidQuery
from query_svc.ga4.calendar import LABELS, runs

DATES = st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 12, 31))


def ga4_week(day: date) -> int:
    """Independent: strftime's %U counts Sunday-first weeks from 00 (days before the first Sunday); GA4 counts
    the week holding January 1st as 01, so it is %U + 1 unless January 1st is itself a Sunday (then %U is 01)."""
    week = int(day.strftime("%U"))
    return week if date(day.year, 1, 1).weekday() == 6 else week + 1


@given(DATES)
def test_labels(day: date) -> None:
    assert LABELS["week"](day) == f"{ga4_week(day):02d}"
    assert LABELS["yearWeek"](day) == f"{day.year}{ga4_week(day):02d}"
    assert LABELS["month"](day) == day.strftime("%m")
    assert LABELS["year"](day) == day.strftime("%Y")
    assert LABELS["isoWeek"](day) == day.strftime("%V")
    assert LABELS["isoYear"](day) == day.strftime("%G")


def test_ga4_week_examples() -> None:
    assert LABELS["week"](date(2026, 1, 1)) == "01"  # Thursday: week 01 is Thu..Sat
    assert LABELS["week"](date(2026, 1, 3)) == "01"
    assert LABELS["week"](date(2026, 1, 4)) == "02"  # the first Sunday starts week 02
    assert LABELS["week"](date(2023, 1, 1)) == "01"  # a Sunday: a full first week
    assert LABELS["week"](date(2023, 1, 8)) == "02"
    assert LABELS["week"](date(2025, 12, 31)) == "53"


def label_comes_back(start: date, end: date, dimensions: list[str]) -> bool:
    """Independent: does a label combination occur again after the labels changed?"""
    seen: set[tuple[str, ...]] = set()
    previous: tuple[str, ...] | None = None
    day = start
    while day <= end:
        labels = tuple(LABELS[d](day) for d in dimensions)
        if labels != previous:
            if labels in seen:
                return True
            seen.add(labels)
            previous = labels
        day += timedelta(days=1)
    return False


@given(DATES, st.integers(0, 400), st.lists(st.sampled_from(sorted(LABELS)), min_size=1, max_size=3, unique=True))
def test_runs_partition_the_range(start: date, length: int, dimensions: list[str]) -> None:
    end = start + timedelta(days=length)
    if label_comes_back(start, end, dimensions):
        with pytest.raises(InvalidQuery) as raised:
            runs(start, end, dimensions)
        assert raised.value.field == "dimensions"
        return
    cut = runs(start, end, dimensions)
    assert cut[0].start == start and cut[-1].end == end
    for first, second in itertools.pairwise(cut):
        assert second.start == first.end + timedelta(days=1)  # contiguous, no gap, no overlap
        assert first.labels != second.labels  # maximal
    for run in cut:
        day = run.start
        while day <= run.end:
            assert tuple(LABELS[d](day) for d in dimensions) == run.labels
            day += timedelta(days=1)
    assert len({r.labels for r in cut}) == len(cut)


def test_runs_without_calendar_dimensions() -> None:
    (only,) = runs(date(2026, 1, 1), date(2026, 3, 1), [])
    assert (only.start, only.end, only.labels) == (date(2026, 1, 1), date(2026, 3, 1), ())


def test_month_across_years_is_refused_with_the_alternative() -> None:
    with pytest.raises(InvalidQuery) as raised:
        runs(date(2025, 1, 20), date(2026, 1, 10), ["month"])
    message = str(raised.value)
    assert "month='01'" in message and "2025-01-20..2025-01-31" in message and "2026-01-01..2026-01-10" in message
    assert "'yearMonth'" in message
    assert [r.labels for r in runs(date(2025, 1, 20), date(2026, 1, 10), ["year", "month"])][:2] == [
        ("2025", "01"),
        ("2025", "02"),
    ]
