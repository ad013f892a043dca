"""The event log port (`port`), its adapters (`embedded`, `pulsar_log`) and `open_event_log`."""

from gnomon.eventlog.factory import open_event_log
from gnomon.eventlog.port import (
    EventLog,
    EventLogError,
    LogBackpressure,
    LogConsumer,
    LogUnavailable,
    OutgoingMessage,
    Position,
    Record,
    Stream,
    partition_for_key,
)

__all__ = [
    "EventLog",
    "EventLogError",
    "LogBackpressure",
    "LogConsumer",
    "LogUnavailable",
    "OutgoingMessage",
    "Position",
    "Record",
    "Stream",
    "open_event_log",
    "partition_for_key",
]
