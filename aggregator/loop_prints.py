"""Window fingerprints: what the loop remembers about the rollup windows it wrote, so unchanged windows are skipped.

A window is (cube, grain, window_start); its fingerprint is a stable 64-bit hash of its content (dims, metrics,
provisional flag; not computed_at) plus its provisional flag. `WindowPrints` packs a merchant-day's fingerprints
into three numpy arrays (~17 bytes per window instead of ~200 for a dict of tuples): the loop keeps them for tens
of thousands of merchant-days. Window keys are hashed too (64 bits; a collision would need ~2^32 windows in
one day), so a packed set cannot name its windows: when a window disappears from a recomputation, the writer
lists the stored windows instead (`loop_tasks.write_day`). Hashes use blake2b, never `hash()`: they must agree
across processes.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gnomon.rollups import RollupRow

WindowKey = tuple[str, str, int]  # cube, grain value, window_start in Unix seconds
Fingerprint = tuple[int, bool]  # content hash, provisional

_COUNTERS = struct.Struct("<8q?")


def window_hash(key: WindowKey) -> int:
    """A stable signed 64-bit hash of a window key."""
    cube, grain, start = key
    digest = hashlib.blake2b(f"{cube}\x1f{grain}\x1f{start}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


def fingerprint(rows: Sequence[RollupRow]) -> Fingerprint:
    """(stable 64-bit hash of a window's content, whether the window is provisional)."""
    h = hashlib.blake2b(digest_size=8)
    provisional = False
    for row in sorted(rows, key=lambda r: r.key.dims):
        m = row.metrics
        provisional = provisional or row.provisional
        h.update("\x1f".join(row.key.dims).encode("utf-8", "surrogatepass") + b"\x1e")
        h.update(
            _COUNTERS.pack(
                m.events,
                m.pageviews,
                m.sessions,
                m.engaged_sessions,
                m.bounces,
                m.session_duration_ms,
                m.revenue_micros,
                m.key_events,
                row.provisional,
            )
        )
        h.update(struct.pack("<II", len(m.users), len(m.new_users)) + m.users + m.new_users)
    return int.from_bytes(h.digest(), "little", signed=True), provisional


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
