"""Choose the EventLog adapter from the process settings."""

from __future__ import annotations

from gnomon.eventlog.port import EventLog
from gnomon.settings import CommonSettings, EngineMode

EMBEDDED_SUBDIR = "eventlog"


def open_event_log(settings: CommonSettings, *, producer_name: str, partitions: int = 4) -> EventLog:
    """Open the event log of this region: embedded SQLite under `data_dir/eventlog`, or Pulsar.

    `producer_name` names this process's Pulsar producers (stable and unique per process, e.g.
    `collector-<host>-<n>`, so broker-side deduplication works); the embedded log ignores it. `partitions`
    applies only when the streams are created. Blocking; raises LogUnavailable when the engine is unreachable.
    """
    if settings.engine_mode is EngineMode.EMBEDDED:
        from gnomon.eventlog.embedded import EmbeddedEventLog

        return EmbeddedEventLog(settings.data_dir / EMBEDDED_SUBDIR, partitions=partitions)
    from gnomon.eventlog.pulsar_log import PulsarEventLog

    return PulsarEventLog(settings.pulsar, producer_name=producer_name, partitions=partitions)
