"""Control data: merchants and their API keys, behind the `ControlStore` port (see `gnomon.control.port`).

`open_control_store(settings)` picks the adapter for the engine mode: SQLite under `data_dir` when embedded,
Scylla/Cassandra when real. The CQL adapter is imported only when used.
"""

from __future__ import annotations

from gnomon.control.port import (
    ApiKey,
    ControlError,
    ControlInvalid,
    ControlStore,
    ControlUnavailable,
    CreatedKey,
    KeyKind,
    KeyNotFound,
    Merchant,
    MerchantExists,
    MerchantNotFound,
    ResolvedKey,
)
from gnomon.control.sqlite_store import CONTROL_FILE_NAME, SqliteControlStore
from gnomon.settings import CommonSettings, EngineMode

__all__ = [
    "ApiKey",
    "ControlError",
    "ControlInvalid",
    "ControlStore",
    "ControlUnavailable",
    "CreatedKey",
    "KeyKind",
    "KeyNotFound",
    "Merchant",
    "MerchantExists",
    "MerchantNotFound",
    "ResolvedKey",
    "SqliteControlStore",
    "open_control_store",
]


def open_control_store(settings: CommonSettings) -> ControlStore:
    """Open the control store of this deployment; blocks while connecting.

    Raises ControlUnavailable when the engine cannot be reached.
    """
    if settings.engine_mode is EngineMode.REAL:
        from gnomon.control.cql_store import CqlControlStore  # the driver is imported only when used

        return CqlControlStore(settings.cql)
    return SqliteControlStore(settings.data_dir / CONTROL_FILE_NAME)
