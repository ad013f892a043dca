"""Realtime from raw events: per-minute active users and events, bots excluded, midnight crossing."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from aggregator import frame as f
from aggregator.eventstore import DayMark
from aggregator.timezones import to_us
from query_svc.errors import InvalidQuery, UnknownName
from query_svc.model import MatchType, RealtimeRequest, StringMatch
from query_svc.reader import Deadline
from query_svc.realtime import BotFilter, run_realtime

ZONE = ZoneInfo("Asia/Kolkata")
NOW = datetime(2026, 3, 10, 18, 40, 20, tzinfo=UTC)  # 00:10:20 on the 11th in Kolkata
CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0"
    " Mobile/15E148 Safari/604.1"
)
BOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


class FakeEventStore:
    """load_day only; the other EventStore methods are not used by realtime."""

    def __init__(self, days: dict[date, pd.DataFrame]) -> None:
        self.days = days
        self.loaded: list[date] = []

    def load_day(self, merchant_id: str, day: date) -> pd.DataFrame:
        self.loaded.append(day)
        frame = self.days.get(day)
        if frame is None:
            return pd.DataFrame({c: [] for c in f.RAW_COLUMNS})
        return frame[frame[f.MERCHANT_ID] == merchant_id].reset_index(drop=True)

    def day_fingerprint(self, merchant_id: str, day: date) -> tuple[int, int]:
        raise NotImplementedError

    def upsert(self, frame: pd.DataFrame) -> None:
        raise NotImplementedError

    def put_marks(self, add: Sequence[DayMark], remove: Sequence[DayMark]) -> None:
        raise NotImplementedError

    def marks(self) -> list[DayMark]:
        return []

    def save_watermark(self, name: str, watermark_us: int) -> None:
        raise NotImplementedError

    def load_watermark(self, name: str) -> int:
        return 0

    def close(self) -> None:
        pass


def events(rows: list[tuple[str, datetime, str, str, str]], merchant: str = "m1") -> pd.DataFrame:
    """(client, time, name, user agent, page path) per event."""
    data: dict[str, list[object]] = {c: [] for c in f.RAW_COLUMNS}
    for i, (client, at, name, ua, path) in enumerate(rows):
        values: dict[str, object] = {c: "" for c in f.RAW_COLUMNS}
        values.update(
            {
                f.MERCHANT_ID: merchant,
                f.EVENT_ID: f"e{i}",
                f.NAME: name,
                f.EVENT_TIME_US: to_us(at),
                f.RECEIVED_TIME_US: to_us(at),
                f.CLIENT_ID: client,
                f.USER_AGENT: ua,
                f.PAGE_PATH: path,
                f.REVENUE_MICROS: 0,
            }
        )
        for c in f.RAW_COLUMNS:
            data[c].append(values[c])
    return pd.DataFrame(data)


def ago(minutes: float) -> datetime:
    return NOW - timedelta(minutes=minutes)


@pytest.fixture(scope="module")
def bots() -> BotFilter:
    return BotFilter()


@pytest.fixture
def store() -> FakeEventStore:
    yesterday = events(
        [
            ("c1", ago(12), "page_view", CHROME, "/old"),  # 23:58 on the 10th: still in the last 30 minutes
            ("c9", ago(45), "page_view", CHROME, "/older"),  # outside the window
        ]
    )
    today = events(
        [
            ("c1", ago(0.1), "page_view", CHROME, "/a"),
            ("c2", ago(0.2), "purchase", IPHONE, "/a"),
            ("c2", ago(1.5), "page_view", IPHONE, "/b"),
            ("c3", ago(1.6), "page_view", CHROME, "/b"),
            ("bot", ago(0.3), "page_view", BOT, "/a"),
            ("bot", ago(2.0), "page_view", BOT, "/a"),
            ("c4", ago(9), "scroll", CHROME, "/a"),
        ]
    )
    other_merchant = events([("x", ago(1), "page_view", CHROME, "/a")], merchant="m2")
    return FakeEventStore({date(2026, 3, 10): yesterday, date(2026, 3, 11): pd.concat([today, other_merchant])})


def run(store: FakeEventStore, bots: BotFilter, request: RealtimeRequest):  # type: ignore[no-untyped-def]
    return run_realtime(
        request, zone=ZONE, now=NOW, store=store, bots=bots, key_events=frozenset({"purchase"}), max_limit=100,
        deadline=Deadline(),
    )  # fmt: skip


def test_minutes_users_and_events(store: FakeEventStore, bots: BotFilter) -> None:
    result = run(store, bots, RealtimeRequest("m1"))
    assert store.loaded == [date(2026, 3, 10), date(2026, 3, 11)]  # the window crosses local midnight
    assert len(result.minutes) == 30
    assert [m.minutes_ago for m in result.minutes] == list(range(29, -1, -1))
    by_minute = {m.minutes_ago: (m.active_users, m.event_count) for m in result.minutes}
    assert by_minute[0] == (2, 2)  # c1, c2 (the bot is excluded)
    assert by_minute[1] == (0, 0)  # 18:39:00-18:39:59: nothing
    assert by_minute[2] == (2, 2)  # c2, c3 at 18:38:50 and 18:38:44
    assert by_minute[9] == (1, 1)  # 18:31:20, in the minute that began 9 minutes before the current one
    assert by_minute[12] == (1, 1)  # 18:28:20, yesterday's local day
    assert sum(m.event_count for m in result.minutes) == result.event_count == 6
    assert result.active_users == 4  # c1..c4, exact distinct
    assert result.bots_excluded
    assert result.window_end == NOW
    assert result.window_start == datetime(2026, 3, 10, 18, 11, tzinfo=UTC)
    assert result.minutes[-1].minute_start == datetime(2026, 3, 10, 18, 40, tzinfo=UTC)


def test_breakdown_rows(store: FakeEventStore, bots: BotFilter) -> None:
    result = run(
        store,
        bots,
        RealtimeRequest(
            "m1", dimensions=("pagePath",), metrics=("activeUsers", "eventCount", "screenPageViews", "keyEvents")
        ),
    )
    assert [(r.dimensions, r.values) for r in result.rows] == [
        (("/a",), (3, 3, 1, 1)),
        (("/b",), (2, 2, 2, 0)),
        (("/old",), (1, 1, 1, 0)),
    ]
    assert result.row_count == 3
    devices = run(store, bots, RealtimeRequest("m1", dimensions=("deviceCategory", "minutesAgo")))
    assert (("mobile", "00"), (1, 1)) in [(r.dimensions, r.values) for r in devices.rows]


def test_filter_and_short_window(store: FakeEventStore, bots: BotFilter) -> None:
    only_b = StringMatch("pagePath", MatchType.EXACT, "/b")
    result = run(store, bots, RealtimeRequest("m1", dimension_filter=only_b, minutes=5))
    assert len(result.minutes) == 5
    assert (result.active_users, result.event_count) == (2, 2)
    assert store.loaded == [date(2026, 3, 11)]


def test_no_events(bots: BotFilter) -> None:
    result = run(FakeEventStore({}), bots, RealtimeRequest("m1", dimensions=("eventName",)))
    assert (result.active_users, result.event_count, result.rows, result.row_count) == (0, 0, (), 0)
    assert all(m.event_count == 0 for m in result.minutes)


def test_bad_requests(store: FakeEventStore, bots: BotFilter) -> None:
    with pytest.raises(InvalidQuery, match="minutes"):
        run(store, bots, RealtimeRequest("m1", minutes=31))
    with pytest.raises(UnknownName, match="'country'"):
        run(store, bots, RealtimeRequest("m1", dimensions=("country",)))
    with pytest.raises(UnknownName, match="'sessions'"):
        run(store, bots, RealtimeRequest("m1", metrics=("sessions",)))
