"""The aggregator's event store: durable, deduplicated raw events per merchant-local day (see `port`).

`open_event_store(settings)` picks the adapter by engine mode: `SqliteEventStore` under
`<data_dir>/eventstore.sqlite3` when embedded, `CqlEventStore` (tables in the rollups keyspace) when real.
The CQL driver is imported only when used.
"""

from __future__ import annotations

from aggregator.eventstore.port import (
    DAY,
    DayMark,
    EventStore,
    EventStoreError,
    EventStoreInvalid,
    EventStoreUnavailable,
    day_number,
    day_of,
)
from aggregator.eventstore.sqlite_store import EVENTSTORE_FILE_NAME, SqliteEventStore
from gnomon.settings import CommonSettings, EngineMode

__all__ = [
    "DAY",
    "EVENTSTORE_FILE_NAME",
    "DayMark",
    "EventStore",
    "EventStoreError",
    "EventStoreInvalid",
    "EventStoreUnavailable",
    "SqliteEventStore",
    "day_number",
    "day_of",
    "open_event_store",
]


def open_event_store(settings: CommonSettings) -> EventStore:
    """The event store of this region; blocks while connecting (real: creates tables when missing).

    Raises EventStoreUnavailable when the engine cannot be reached.
    """
    if settings.engine_mode is EngineMode.REAL:
        from aggregator.eventstore.cql_store import CqlEventStore

        return CqlEventStore.connect(settings.cql)
    return SqliteEventStore(settings.data_dir / EVENTSTORE_FILE_NAME)
