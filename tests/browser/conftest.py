"""A live stack for the dashboard's browser tests: embedded stores in a tmp data dir holding KNOWN traffic (rollups
written straight into the RollupStore, raw events into the event store for Realtime), the gRPC query server and
the gRPC-web server with the built dashboard, and Debian's Chromium driven by playwright-core through node.

Needs what `make setup` installs: node + `npm ci` in dashboard/ and /usr/bin/chromium. The dashboard is built
(`npm run build`) when dist/ is older than its sources. Screenshots go to test-artifacts/ (gitignored).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from query_svc.web.browser import Browser, ensure_dashboard_built, missing_tools
from query_svc.web.testing import (
    CHROME_DESKTOP,
    SAFARI_IPHONE,
    Dashboard,
    RawEvent,
    generate_visits,
    raw_events,
    running_dashboard,
    visit_rollups,
)

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
DAYS_OF_TRAFFIC = 70  # the last 30 days and the 30 before them, and then some
VISITS_PER_DAY = 60
REALTIME_PAGES = ("/", "/products/item-0001", "/blog/post-0003")


def realtime_seed(now: datetime) -> list[RawEvent]:
    """12 visitors between 2 and 13 minutes ago: even ones on desktop Chrome, odd ones on an iPhone."""
    return [
        RawEvent(
            f"seed-{i}",
            now - timedelta(minutes=2 + i, seconds=7),
            REALTIME_PAGES[i % len(REALTIME_PAGES)],
            user_agent=SAFARI_IPHONE if i % 2 else CHROME_DESKTOP,
        )
        for i in range(12)
    ]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def dashboard_dist() -> Path:
    missing = missing_tools()
    if missing:
        pytest.fail("the browser tests need what `make setup` installs; missing: " + "; ".join(missing))
    return ensure_dashboard_built()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, dashboard_dist: Path) -> Iterator[Dashboard]:
    with running_dashboard(tmp_path_factory.mktemp("dashboard") / "data", static_dir=dashboard_dist) as d:
        now = datetime.now(UTC)
        today = now.astimezone(d.zone).date()
        days = [today - timedelta(days=i) for i in range(DAYS_OF_TRAFFIC)]
        visits = generate_visits(d.zone, days, now, visits_per_day=VISITS_PER_DAY)
        d.rollups.write(visit_rollups(d.merchant_id, d.zone, visits, now))
        d.events.upsert(raw_events(d.merchant_id, d.zone, realtime_seed(now), prefix="seed"))
        yield d


@pytest.fixture
def browser() -> Iterator[Browser]:
    with Browser() as b:
        b.launch(1280, 900)
        yield b
        errors = [e for e in b.errors() if not e.endswith("/favicon.ico")]  # asked for by /healthz only
    assert not errors, f"the page logged errors: {errors}"


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
