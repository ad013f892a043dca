"""Rollup rows as columns (`RollupColumns`): how the aggregator hands a cube's rows to a RollupStore without a
`RollupRow` object per row (`RollupStore.replace_window_columns`, `SqliteRollupStore.write_columns`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

from gnomon.rollups.errors import RollupInvalid
from gnomon.rollups.model import COUNTER_FIELDS, Grain, Metrics, RollupKey, RollupRow

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class RollupColumns:
    """Rows of one (merchant, cube, grain, version) as columns: row i has window start `window_start_s[i]` (Unix
    seconds), `dims[i]` (a `gnomon.rollups.dims.CodedDims` avoids a tuple per row), counter `counters[j][i]` for
    the j-th of `model.COUNTER_FIELDS` (events .. key_events), sketches `users[i]` / `new_users[i]` and
    `provisional[i]`; every row is stamped `computed_at`. Not validated here: the stores validate what they write
    (RollupInvalid), in bulk where they can."""

    merchant_id: str
    cube: str
    grain: Grain
    version: int
    window_start_s: npt.NDArray[np.int64]
    dims: Sequence[tuple[str, ...]]
    counters: tuple[npt.NDArray[np.int64], ...]
    users: Sequence[bytes]
    new_users: Sequence[bytes]
    provisional: npt.NDArray[np.bool_]
    computed_at: datetime

    def __len__(self) -> int:
        return len(self.dims)

    def rows(self) -> list[RollupRow]:
        """The rows as validated `RollupRow`s (for adapters that write row by row); raises RollupInvalid when a
        value is invalid or the columns' lengths differ."""
        n = len(self)
        columns = (self.window_start_s, *self.counters, self.users, self.new_users, self.provisional)
        if len(self.counters) != len(COUNTER_FIELDS) or any(len(c) != n for c in columns):
            raise RollupInvalid(f"every column of a block must hold {n} values and counters {len(COUNTER_FIELDS)}")
        starts = [_EPOCH + timedelta(seconds=s) for s in np.asarray(self.window_start_s).tolist()]
        counters = [np.asarray(c).tolist() for c in self.counters]
        flags = np.asarray(self.provisional).tolist()
        return [
            RollupRow(
                RollupKey(self.merchant_id, self.cube, self.grain, start, dims, self.version),
                Metrics(ev, pv, se, en, bo, du, rv, ke, users, new_users),
                provisional,
                self.computed_at,
            )
            for start, dims, users, new_users, provisional, ev, pv, se, en, bo, du, rv, ke in zip(  # COUNTER_FIELDS
                starts, self.dims, self.users, self.new_users, flags, *counters, strict=True
            )
        ]
