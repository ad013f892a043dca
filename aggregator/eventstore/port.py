"""The EventStore port: the aggregator's durable, deduplicated copy of raw events, per merchant and local day.

Rollups are recomputed from it: after a micro-batch is stored, each affected (merchant, local day) is loaded
whole (`load_day`), derived and rolled up again, so the rows written are always a function of *every distinct
event* of that day, whatever was redelivered, duplicated or late. Two adapters implement the port and one
contract suite (tests/contract/test_eventstore_contract.py) runs against both: `SqliteEventStore` (embedded,
`<data_dir>/eventstore.sqlite3`) and `CqlEventStore` (a table in the rollups keyspace of Scylla/Cassandra).

Frames: `upsert` takes an event frame (`aggregator.frame.RAW_COLUMNS`) plus `DAY`, the merchant-local calendar day
of each event as days since 1970-01-01 (int). The caller computes `DAY` from the merchant's time zone
(`aggregator.loop_days.local_days`); the store never needs zones, but refuses (EventStoreInvalid) a DAY on which the
event cannot fall in any zone (UTC-12 .. UTC+14). The stored form of an event is its serialized
`gnomon.v1.Event` (column `aggregator.decode.EVENT_BYTES` when present, else rebuilt from the raw columns) plus
its event and received times; `load_day` decodes it back into the raw columns.

Contract (both adapters):
- Identity: (merchant_id, day, event_id). Storing the same event again changes nothing; that is the aggregator's
  exactly-once dedup. When two *different* payloads share an identity, the copy with the later received time
  wins, whatever order they are stored in (CQL: `USING TIMESTAMP received_time_us`, last write wins; SQLite:
  the same rule in the upsert). Copies with equal received times and different payloads are undefined.
- `upsert` returns only once every row is durable (SQLite: committed with synchronous=FULL; CQL: acknowledged at
  the settings' consistency level). It is not atomic: after a failure, some rows may be stored; retrying the
  same frame converges.
- `load_day` returns one row per distinct event_id of that merchant and day, ordered by (event_time_us, event_id).
- Day marks: durable reminders "this merchant-day still has open windows; recompute it once the watermark
  reaches `due_us`". A mark is identified by all of its fields; `put_marks(add, remove)` writes `add` then
  deletes `remove` (idempotent); `marks()` lists them all (several marks of one day may coexist; the caller
  takes the earliest).
- Watermarks: `save_watermark(name, us)` keeps the maximum ever saved under `name` (never goes back);
  `load_watermark(name)` returns it, 0 before the first save.
- Every method blocks; engine failures raise EventStoreUnavailable, malformed input EventStoreInvalid.
  Adapters are safe to use from several threads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Final, Protocol

import numpy as np
import pandas as pd

from aggregator.frame import EVENT_ID, EVENT_TIME_US, MERCHANT_ID, RECEIVED_TIME_US

DAY: Final = "day"
"""Frame column for `upsert`: the merchant-local calendar day of the event, as days since 1970-01-01 (int)."""

_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()


class EventStoreError(Exception):
    """Base class of the errors an EventStore raises on purpose."""


class EventStoreInvalid(EventStoreError, ValueError):
    """Malformed input (missing column, bad day); the message names it."""


class EventStoreUnavailable(EventStoreError):
    """The engine is down, timed out or failed; retrying later may succeed (every write is idempotent)."""


def day_number(day: date) -> int:
    """Days since 1970-01-01 of a calendar day (the `DAY` column's unit)."""
    return day.toordinal() - _EPOCH_ORDINAL


def day_of(number: int) -> date:
    """The calendar day `number` days after 1970-01-01."""
    return date.fromordinal(int(number) + _EPOCH_ORDINAL)


@dataclass(frozen=True, order=True)
class DayMark:
    """A merchant-day with windows still open: recompute it when the watermark reaches `due_us` (UTC µs)."""

    due_us: int
    merchant_id: str
    day: date


class EventStore(Protocol):
    """Raw events per merchant-local day, deduplicated by event_id; plus day marks and watermarks."""

    def upsert(self, frame: pd.DataFrame) -> None:
        """Store every row of `frame` (RAW_COLUMNS + DAY, optional EVENT_BYTES), idempotently. Blocking."""
        ...

    def load_day(self, merchant_id: str, day: date) -> pd.DataFrame:
        """Every distinct event of the merchant's local `day` as a RAW_COLUMNS frame. Blocking."""
        ...

    def day_fingerprint(self, merchant_id: str, day: date) -> tuple[int, int]:
        """A cheap summary of the day's stored content: (stored rows, sum of their received times mod 2**64).

        It changes whenever an event is added to the day or replaced by a later-received copy, so a reader can
        tell that a day it loaded is still current (reprocessing uses it to detect concurrent live writes)."""
        ...

    def put_marks(self, add: Sequence[DayMark], remove: Sequence[DayMark]) -> None:
        """Store the marks of `add`, then delete those of `remove` (exact matches). Blocking, idempotent."""
        ...

    def marks(self) -> list[DayMark]:
        """Every stored mark, ordered by (due_us, merchant_id, day)."""
        ...

    def save_watermark(self, name: str, watermark_us: int) -> None:
        """Keep max(stored, watermark_us) under `name`. Blocking."""
        ...

    def load_watermark(self, name: str) -> int:
        """The largest watermark saved under `name`, 0 when none."""
        ...

    def close(self) -> None:
        """Release connections and files. Idempotent."""
        ...


def received_fingerprint(received_us: Sequence[int]) -> tuple[int, int]:
    """`EventStore.day_fingerprint` of rows with these received times (shared by the adapters; vectorized: the
    unsigned 64-bit sum wraps, which is the mod 2**64)."""
    total = np.asarray(received_us, dtype=np.int64).view(np.uint64).sum(dtype=np.uint64)
    return len(received_us), int(total)


def check_frame(frame: pd.DataFrame) -> None:
    """Raise EventStoreInvalid unless `frame` has the columns `upsert` needs."""
    needed = (MERCHANT_ID, EVENT_ID, EVENT_TIME_US, RECEIVED_TIME_US, DAY)
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise EventStoreInvalid(f"upsert: frame lacks column(s) {missing}")
