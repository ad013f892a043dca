"""Upgrades of older embedded rollup files to the current schema (`sqlite_db.SCHEMA_VERSION`).

Schema 1 stored one SQLite row per rollup row (tables `rollups` and `rollup_windows`); schema 2 stores one pack
per window (`rollup_packs`, `gnomon.rollups.sqlite_packs`). `upgrade` runs inside the transaction that opens the
file (`gnomon.sqlite_wal.WalDatabase`), so a file is either fully converted or left as it was. Blocks while it
converts (one pass over the old rows, streamed window by window).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from itertools import groupby
from operator import itemgetter
from typing import Any

from gnomon.rollups.sqlite_packs import STORE_PACK, Pack, RowValues

_KEY = "merchant_id, cube, grain, version, window_start"
_OLD_ROWS = (
    f"SELECT {_KEY}, dims, events, pageviews, sessions, engaged_sessions, bounces, session_duration_ms,"  # noqa: S608
    " revenue_micros, key_events, users, new_users, provisional, computed_at_ms"
    f" FROM rollups ORDER BY {_KEY}, dims"
)


def upgrade(conn: sqlite3.Connection, found: int) -> None:
    """Bring a rollup file of schema `found` up to the current schema, inside the caller's transaction."""
    if found < 2:
        _packs_from_rows(conn)


def _packs_from_rows(conn: sqlite3.Connection) -> None:
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "rollups" in tables:
        conn.executemany(STORE_PACK, _packs(conn.execute(_OLD_ROWS)))
        conn.execute("DROP TABLE rollups")
    if "rollup_windows" in tables:
        conn.execute("DROP TABLE rollup_windows")


def _packs(old_rows: sqlite3.Cursor) -> Iterator[tuple[Any, ...]]:
    for window, rows in groupby(old_rows, key=itemgetter(0, 1, 2, 3, 4)):
        values: dict[str, RowValues] = {r[5]: (tuple(r[6:14]), r[14], r[15], r[16], r[17]) for r in rows}
        yield (*window, *Pack.of_rows(values).values())
