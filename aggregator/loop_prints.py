"""Window fingerprints: what the loop remembers about the rollup windows it wrote, so unchanged windows are skipped.

A window is (cube, grain, window_start); its fingerprint is a stable 64-bit hash of its content (dims, metrics,
provisional flag; not computed_at) plus its provisional flag. `WindowPrints` packs a merchant-day's fingerprints
into three numpy arrays (~17 bytes per window instead of ~200 for a dict of tuples): the loop keeps them for tens
of thousands of merchant-days. Window keys are hashed too (64 bits; a collision would need ~2^32 windows in
one day), so a packed set cannot name its windows: when a window disappears from a recomputation, the writer
lists the stored windows instead (`loop_tasks.write_day`). Hashes use blake2b, never `hash()`: they must agree
across processes.

Fingerprints come straight from the columns of `aggregator.rows.DayRollups` (`column_prints`: no object per
row); `ColumnWindows` then slices out the columns of the windows that changed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise

import numpy as np
import numpy.typing as npt
import pandas as pd

from aggregator.rows import CubeBlock, DayRollups, window_columns
from aggregator.timezones import to_us
from gnomon.rollups import RollupRow
from gnomon.rollups.columns import RollupColumns
from gnomon.rollups.dims import encode_dims
from gnomon.rollups.model import require_utc

WindowKey = tuple[str, str, int]  # cube, grain value, window_start in Unix seconds
Fingerprint = tuple[int, bool]  # content hash, provisional


def window_hash(key: WindowKey) -> int:
    """A stable signed 64-bit hash of a window key."""
    cube, grain, start = key
    digest = hashlib.blake2b(f"{cube}\x1f{grain}\x1f{start}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


def column_prints(rollups: DayRollups, closed_before: datetime) -> dict[WindowKey, Fingerprint]:
    """The fingerprint of every window of `rollups` (stamped provisional as `DayRollups.rows` would with
    `closed_before`), from its columns: independent of the order of rows within a block, changed by any change
    of a window's dims, counters, sketches or provisional flag."""
    closed_us = to_us(require_utc(closed_before, "closed_before"))
    prints: dict[WindowKey, Fingerprint] = {}
    for block in rollups.blocks:
        if len(block):
            prints.update(_block_prints(block, closed_us))
    return prints


def _block_prints(block: CubeBlock, closed_us: int) -> dict[WindowKey, Fingerprint]:
    """Per window of one block: rows sorted by their dims' storage encoding, hashed window by window."""
    distinct = np.asarray([encode_dims(dims) for dims in block.dims.values], dtype=object)  # once per value
    texts = distinct[block.dims.codes]
    ranks, _ = pd.factorize(texts, sort=True)
    order = np.lexsort((ranks, block.window_start_us))
    starts = block.window_start_us[order]
    bounds = [0, *(np.flatnonzero(starts[1:] != starts[:-1]) + 1).tolist(), len(order)]
    rows = order.tolist()
    sorted_texts = texts[order].tolist()
    counters = np.stack(block.counters(), axis=1)[order]
    users = [block.users[i] for i in rows]
    new_users = [block.new_users[i] for i in rows]
    lengths = np.stack(
        [np.fromiter(map(len, users), np.int64, len(rows)), np.fromiter(map(len, new_users), np.int64, len(rows))],
        axis=1,
    )
    grain = block.grain.value
    out: dict[WindowKey, Fingerprint] = {}
    for a, b in pairwise(bounds):
        provisional = bool(block.window_end_us[order[a]] > closed_us)
        h = hashlib.blake2b(digest_size=8)
        h.update("\n".join(sorted_texts[a:b]).encode("utf-8", "surrogatepass"))
        h.update(counters[a:b].tobytes())
        h.update(lengths[a:b].tobytes())
        h.update(b"".join(users[a:b]))
        h.update(b"".join(new_users[a:b]))
        h.update(b"\x01" if provisional else b"\x00")
        start_s = int(starts[a]) // 1_000_000
        out[(block.cube.name, grain, start_s)] = (int.from_bytes(h.digest(), "little", signed=True), provisional)
    return out


def group_windows(rows: Sequence[RollupRow]) -> dict[WindowKey, list[RollupRow]]:
    """Rows grouped by (cube, grain, window start in Unix seconds), each group in input order."""
    groups: dict[WindowKey, list[RollupRow]] = {}
    for row in rows:
        k = row.key
        groups.setdefault((k.cube, k.grain.value, int(k.window_start.timestamp())), []).append(row)
    return groups


@dataclass(frozen=True)
class ColumnWindows:
    """A recomputed merchant-day as `loop_tasks.write_day` needs it: the fingerprints of its windows
    (`column_prints`) and the rows of the windows asked for, as columns (stamped as
    `DayRollups.rows(version=, computed_at=, closed_before=)` stamps them)."""

    rollups: DayRollups
    version: int
    computed_at: datetime
    closed_before: datetime

    def prints(self) -> dict[WindowKey, Fingerprint]:
        return column_prints(self.rollups, self.closed_before)

    def columns(self, windows: Collection[WindowKey]) -> dict[WindowKey, RollupColumns]:
        """The rows of each of `windows` that has rows, as one `RollupColumns` per window."""
        return window_columns(
            self.rollups, version=self.version, computed_at=self.computed_at, closed_before=self.closed_before,
            windows=set(windows),
        )  # fmt: skip


@dataclass(frozen=True)
class WindowPrints:
    """The fingerprints of one merchant-day's windows, packed (see the module docstring)."""

    keys: npt.NDArray[np.int64]  # window_hash of each window
    prints: npt.NDArray[np.int64]  # content hash
    provisional: npt.NDArray[np.bool_]

    @classmethod
    def pack(cls, prints: Mapping[WindowKey, Fingerprint]) -> WindowPrints:
        keys = np.fromiter((window_hash(k) for k in prints), dtype=np.int64, count=len(prints))
        values = np.fromiter((p for p, _ in prints.values()), dtype=np.int64, count=len(prints))
        flags = np.fromiter((f for _, f in prints.values()), dtype=np.bool_, count=len(prints))
        return cls(keys, values, flags)

    def unpack(self) -> dict[int, Fingerprint]:
        """window_hash -> fingerprint."""
        return {
            int(k): (int(p), bool(f))
            for k, p, f in zip(self.keys.tolist(), self.prints.tolist(), self.provisional.tolist(), strict=True)
        }

    def __len__(self) -> int:
        return len(self.keys)
