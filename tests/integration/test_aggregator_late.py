"""Window closing and late events: provisional rows while a window is open, final once its end + the allowed lateness
passes the watermark (also without new events of that merchant), and late / out-of-order events re-open and
correct their (already final) windows. Nothing is dropped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gnomon.rollups import Grain
from tests.integration.test_aggregator_harness import (
    MERCHANTS,
    AggEnv,
    agg_env_fixture,  # noqa: F401 - the agg_env fixture
    assert_matches_truth,
    batches,
    event,
    logged,
    traffic,
)

T = datetime(2026, 4, 2, 6, 0, tzinfo=UTC)  # UTC merchant: hours 06:00 .. 09:59 get events
NO_IDLE = ("--once", "--no-idle-watermark", "--lateness", "300")


def hours(agg_env: AggEnv, merchant_id: str = "shop-utc") -> dict[datetime, tuple[int, bool]]:
    rows = agg_env.store().read(merchant_id, "total", Grain.HOUR, T - timedelta(hours=6), T + timedelta(hours=12), 1)
    return {r.key.window_start: (r.metrics.events, r.provisional) for r in rows}


def test_windows_close_at_watermark_plus_lateness_and_late_events_correct_them(agg_env: AggEnv) -> None:
    agg_env.add_merchants()
    events = traffic("shop-utc", "EUR", n=240, start=T, span=timedelta(hours=4), seed=1)
    events = [e for e in events if "Googlebot" not in e.user_agent]
    payloads = batches("shop-utc", events, 40)
    agg_env.publish(list(reversed(payloads)))  # out of order: newest batch first
    assert agg_env.run(*NO_IDLE).returncode == 0
    # watermark = newest received (09:59 + 5 s): closed_before = 09:55 -> hours ending <= 09:00 final, 09:00 open
    got = hours(agg_env)
    assert sorted(got) == [T + timedelta(hours=h) for h in range(4)]
    assert [p for _, (_, p) in sorted(got.items())] == [False, False, False, True]
    day = agg_env.store().read("shop-utc", "total", Grain.DAY, T - timedelta(days=1), T + timedelta(days=1), 1)
    assert [r.provisional for r in day] == [True]

    # Another merchant's events move the watermark past 10:05: the UTC merchant's open windows close without
    # any new event of its own (the durable day mark brings the day back).
    other = logged("shop-kol", [event("k1", T + timedelta(hours=4, minutes=30))], T + timedelta(hours=4, minutes=31))
    agg_env.publish([other])
    assert agg_env.run(*NO_IDLE).returncode == 0
    assert [p for _, (_, p) in sorted(hours(agg_env).items())] == [False, False, False, False]

    # Late events for 06:xx and 07:xx, received hours later, plus a repeat of an early event: both hour windows
    # and the day are corrected (and stay final); the repeat counts once.
    late = [event(f"late-{i}", T + timedelta(minutes=10 + 40 * i), client=f"late{i}") for i in range(3)]
    late_payload = logged("shop-utc", [*late, events[0]], T + timedelta(hours=6))
    before = hours(agg_env)
    agg_env.publish([late_payload])
    result = agg_env.run(*NO_IDLE)
    assert result.returncode == 0, result.stderr[-3000:]
    after = hours(agg_env)
    assert after[T] == (before[T][0] + 2, False)
    assert after[T + timedelta(hours=1)] == (before[T + timedelta(hours=1)][0] + 1, False)
    assert after[T + timedelta(hours=2)] == before[T + timedelta(hours=2)]
    everything = [*payloads, other, late_payload]
    assert_matches_truth(agg_env.store(), everything, final=False)


def test_an_event_for_a_day_already_closed_reopens_that_day(agg_env: AggEnv) -> None:
    agg_env.add_merchants({"shop-ny": MERCHANTS["shop-ny"]})
    first = batches("shop-ny", [event("a", T), event("b", T + timedelta(minutes=5))], 10)
    agg_env.publish(first)
    assert agg_env.run().returncode == 0  # idle watermark = now: the whole day (in 2026-04) is final
    late = logged("shop-ny", [event("c", T + timedelta(minutes=7), client="c9")], datetime.now(UTC))
    agg_env.publish([late])
    assert agg_env.run().returncode == 0
    day = agg_env.store().read("shop-ny", "total", Grain.DAY, T - timedelta(days=1), T + timedelta(days=1), 1)
    assert [(r.metrics.events, r.provisional) for r in day] == [(3, False)]
