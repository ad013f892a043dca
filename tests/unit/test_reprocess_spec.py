"""Pure parts of reprocessing: the job spec (ranges, log window, stable job id), the union of two loads of a day,
and the verification and diff of rebuilt rows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest

from aggregator.frame import EVENT_ID, EVENT_TIME_US, IS_BOT, NAME, RECEIVED_TIME_US
from aggregator.reprocess.spec import EARLY_MARGIN, ReprocessSpec, SpecInvalid, build_spec
from aggregator.reprocess.tasks import union_of_days
from aggregator.reprocess.verify import DayReport, check_totals, diff_days
from gnomon.rollups import Grain, Metrics, RollupKey, RollupRow

NOW = datetime(2026, 4, 1, tzinfo=UTC)
D1, D2 = date(2026, 3, 7), date(2026, 3, 8)


def spec(**changes: object) -> ReprocessSpec:
    args: dict[str, object] = dict(
        first_day=D1, last_day=D2, merchants=["b", "a", "a"], version=2, who="me", why="fix", now=NOW
    )
    args.update(changes)
    return build_spec(**args)  # type: ignore[arg-type]


def test_spec_covers_local_days_and_a_log_window_with_margins() -> None:
    s = spec()
    assert s.merchants == ("a", "b") and s.days() == [D1, D2]
    assert s.range_of("Asia/Kolkata") == (
        datetime(2026, 3, 6, 18, 30, tzinfo=UTC),
        datetime(2026, 3, 8, 18, 30, tzinfo=UTC),
    )
    assert s.log_start == datetime(2026, 3, 6, 10, tzinfo=UTC) - EARLY_MARGIN  # UTC+14 midnight, minus a day
    assert s.log_end == datetime(2026, 3, 9, 12, tzinfo=UTC) + timedelta(days=3)  # UTC-12 midnight + late margin
    assert spec(now=datetime(2026, 3, 8, 12, tzinfo=UTC)).log_end == datetime(2026, 3, 8, 12, tzinfo=UTC)  # capped


def test_job_id_is_stable_for_the_same_work_and_differs_otherwise() -> None:
    assert spec().job_id == spec(now=NOW + timedelta(days=1), why="other words").job_id
    assert spec().job_id != spec(version=3).job_id != spec(dry_run=True).job_id
    assert spec().job_id != spec(merchants=["a"]).job_id
    assert ReprocessSpec.from_doc(spec().to_doc()) == spec()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"last_day": date(2026, 3, 1)}, "before --from"),
        ({"version": 0}, "--version"),
        ({"why": " "}, "--why"),
        ({"merchants": []}, "no merchant"),
        ({"log_start": NOW, "log_end": NOW}, "empty"),
        ({"last_day": D1 + timedelta(days=4000)}, "at most"),
    ],
)
def test_bad_specs_say_what_to_change(changes: dict[str, object], message: str) -> None:
    with pytest.raises(SpecInvalid, match=message):
        spec(**changes)


def frame(ids: list[str], received: list[int], times: list[int]) -> pd.DataFrame:
    return pd.DataFrame({EVENT_ID: ids, RECEIVED_TIME_US: received, EVENT_TIME_US: times})


def test_union_keeps_one_row_per_event_the_later_received_copy() -> None:
    history = frame(["a", "b"], [10, 10], [2, 1])
    live = frame(["b", "c"], [20, 5], [1, 3])
    got = union_of_days(history, live)
    assert got[EVENT_ID].tolist() == ["b", "a", "c"]  # ordered by (event time, event id)
    assert got[RECEIVED_TIME_US].tolist() == [20, 10, 5]
    assert union_of_days(history.iloc[:0], live) is live


def row(cube: str, grain: Grain, dims: tuple[str, ...], events: int, pageviews: int) -> RollupRow:
    key = RollupKey("m", cube, grain, datetime(2026, 3, 7, tzinfo=UTC), dims, 2)
    return RollupRow(key, Metrics(events=events, pageviews=pageviews), False, NOW)


def test_totals_are_checked_against_the_raw_events() -> None:
    derived = pd.DataFrame({IS_BOT: [False, False, True], NAME: ["page_view", "purchase", "page_view"]})
    good = [row("total", Grain.DAY, (), 2, 1), row("total", Grain.HOUR, (), 2, 1)]
    report = DayReport("m", "2026-03-07", 2, 1)
    check_totals(report, derived, good)
    assert (report.events, report.counted_events, report.pageviews, report.failed) == (3, 2, 1, [])
    bad = DayReport("m", "2026-03-07", 2, 1)
    check_totals(bad, derived, [row("total", Grain.DAY, (), 3, 1), row("total", Grain.HOUR, (), 2, 2)])
    assert bad.failed == ["day events 3 != 2 non-bot events read"]


def test_diff_names_each_changed_cell_and_sums_per_cube_and_metric() -> None:
    active = [row("device", Grain.DAY, ("desktop",), 10, 5), row("device", Grain.DAY, ("mobile",), 4, 4)]
    new = [row("device", Grain.DAY, ("desktop",), 7, 3), row("device", Grain.DAY, ("mobile",), 4, 4),
           row("device", Grain.DAY, ("tablet",), 3, 2), row("device", Grain.HOUR, ("tablet",), 3, 2)]  # fmt: skip
    report = DayReport("m", "2026-03-07", 2, 1)
    diff_days(report, active, new)
    assert report.changes == [
        ["device", "desktop", "events", 10, 7],
        ["device", "tablet", "events", 0, 3],
        ["device", "desktop", "pageviews", 5, 3],
        ["device", "tablet", "pageviews", 0, 2],
    ]
    assert report.change_totals == {"device.events": [2, 10, 10], "device.pageviews": [2, 5, 5]}
