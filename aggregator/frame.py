"""The event frame: the columnar form of raw events that every aggregator step passes along.

One row per event, one pandas DataFrame per merchant-day (or per micro-batch before it is split). Raw columns come
from `gnomon.v1.LoggedBatch` (see `aggregator.decode`); derived columns are added by `aggregator.derive.derive`.
Times are int64 microseconds since the Unix epoch, UTC (vectorizable; convert at the edges only).
"""

from __future__ import annotations

from typing import Final

# Raw columns, as the collector logged them.
MERCHANT_ID: Final = "merchant_id"  # str
EVENT_ID: Final = "event_id"  # str, dedup key within a merchant
NAME: Final = "name"  # str, e.g. page_view, purchase
EVENT_TIME_US: Final = "event_time_us"  # int64 µs UTC
RECEIVED_TIME_US: Final = "received_time_us"  # int64 µs UTC (collector stamp, same for a whole batch)
CLIENT_ID: Final = "client_id"  # str
USER_ID: Final = "user_id"  # str, "" when absent
PAGE_URL: Final = "page_url"
PAGE_PATH: Final = "page_path"  # "" when absent; derived from page_url by decode when empty
PAGE_TITLE: Final = "page_title"
REFERRER: Final = "referrer"
USER_AGENT: Final = "user_agent"
IP: Final = "ip"  # already truncated by the collector (/24, /48)
LOCALE: Final = "locale"
UTM_SOURCE: Final = "utm_source"
UTM_MEDIUM: Final = "utm_medium"
UTM_CAMPAIGN: Final = "utm_campaign"
REVENUE_MICROS: Final = "revenue_micros"  # int64, 0 when absent
CURRENCY: Final = "currency"  # ISO 4217, "" when absent

RAW_COLUMNS: Final = (
    MERCHANT_ID, EVENT_ID, NAME, EVENT_TIME_US, RECEIVED_TIME_US, CLIENT_ID, USER_ID, PAGE_URL, PAGE_PATH,
    PAGE_TITLE, REFERRER, USER_AGENT, IP, LOCALE, UTM_SOURCE, UTM_MEDIUM, UTM_CAMPAIGN, REVENUE_MICROS, CURRENCY,
)  # fmt: skip
INT_COLUMNS: Final = frozenset({EVENT_TIME_US, RECEIVED_TIME_US, REVENUE_MICROS})
EVENT_BYTES: Final = "event_bytes"
"""Optional column: the serialized `gnomon.v1.Event` of each row (bytes), as the event store keeps it."""

# Derived columns (aggregator.derive.derive adds them; categoricals except is_bot).
DEVICE_CATEGORY: Final = "device_category"
BROWSER: Final = "browser"
OS: Final = "os"
IS_BOT: Final = "is_bot"  # bool
COUNTRY: Final = "country"  # ISO alpha-2 or "(not set)"
COUNTRY_NAME: Final = "country_name"
REGION: Final = "region"
CITY: Final = "city"
SOURCE: Final = "source"
MEDIUM: Final = "medium"
SOURCE_MEDIUM: Final = "source_medium"
CHANNEL: Final = "channel"

DERIVED_COLUMNS: Final = (
    DEVICE_CATEGORY, BROWSER, OS, IS_BOT, COUNTRY, COUNTRY_NAME, REGION, CITY, SOURCE, MEDIUM, SOURCE_MEDIUM, CHANNEL,
)  # fmt: skip
