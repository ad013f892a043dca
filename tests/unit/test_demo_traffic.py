"""`gnomon up --demo` traffic stays on the demo merchant's local "today", also just after its midnight."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from mesh.demo import DEMO_TRAFFIC_DAYS, DEMO_ZONE, traffic_days


@pytest.mark.parametrize(
    ("now", "seconds"),
    [
        (datetime(2026, 11, 26, 12, 0, tzinfo=UTC), DEMO_TRAFFIC_DAYS * 86_400),  # midday: the full span
        (datetime(2026, 11, 26, 23, 9, tzinfo=UTC), 9 * 60),  # 00:09 in Berlin: back to its midnight only
        (datetime(2026, 11, 26, 23, 0, 0, 400_000, tzinfo=UTC), 1.0),  # right at midnight: one second
        (datetime(2026, 3, 29, 0, 30, tzinfo=UTC), 90 * 60),  # 01:30 CET, the night clocks go forward
        (datetime(2026, 10, 25, 1, 30, tzinfo=UTC), DEMO_TRAFFIC_DAYS * 86_400),  # 02:30 CET, after the fall-back
        (datetime(2026, 10, 24, 22, 30, tzinfo=UTC), 30 * 60),  # 00:30 CEST
    ],
)
def test_traffic_reaches_back_at_most_to_local_midnight(now: datetime, seconds: float) -> None:
    days = traffic_days(now)
    assert days * 86_400 == pytest.approx(seconds)
    zone = ZoneInfo(DEMO_ZONE)
    if seconds > 1:  # the one-second floor (`gnomon send` needs a span) may reach just past midnight
        assert (now - timedelta(days=days)).astimezone(zone).date() == now.astimezone(zone).date()
