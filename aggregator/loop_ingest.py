"""The loop's ingest step: log records -> the event frame to store, with each event's merchant-local day.

    ingested = ingest(records, directory)

decode (`aggregator.decode`: Rust, or upb) -> look the merchants up (unknown: dropped and counted; their
records are still committed by the loop) -> local day per event (`aggregator.loop_days`, vectorized per
(merchant, UTC hour)) -> drop repeated (merchant, day, event_id) within the batch, keeping the copy received
last (the event store's rule, so the result does not depend on which copy came first). A record that is not a
LoggedBatch is skipped and counted (it can never become decodable; holding the group back for it would stop
every merchant).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from aggregator.decode import DecodeFailed, decode_batches
from aggregator.eventstore import DAY
from aggregator.frame import EVENT_BYTES, EVENT_ID, EVENT_TIME_US, MERCHANT_ID, RECEIVED_TIME_US
from aggregator.loop_days import local_days
from aggregator.loop_merchants import MerchantDirectory, MerchantInfo
from gnomon.eventlog import Record

log = logging.getLogger(__name__)

IDENTITY = [MERCHANT_ID, DAY, EVENT_ID]


@dataclass
class Ingested:
    """The events of a batch of records, ready for `EventStore.upsert`, and what was dropped."""

    frame: pd.DataFrame  # RAW_COLUMNS + DAY + EVENT_BYTES; known merchants only; one row per identity
    merchants: dict[str, MerchantInfo] = field(default_factory=dict)
    new_events: dict[tuple[str, int], int] = field(default_factory=dict)  # (merchant, day number) -> rows
    decoded: int = 0
    duplicates: int = 0
    unknown_events: int = 0
    undecodable: int = 0
    max_received_us: int | None = None  # over every decoded event (the watermark's input)


def _decode(records: Sequence[Record]) -> tuple[pd.DataFrame, int]:
    payloads = [r.payload for r in records]
    try:
        return decode_batches(payloads, with_event_bytes=True), 0
    except DecodeFailed:
        pass
    frames: list[pd.DataFrame] = []
    bad = 0
    for record in records:
        try:
            frames.append(decode_batches([record.payload], with_event_bytes=True))
        except DecodeFailed as exc:
            bad += 1
            log.error("skipping log record %s: %s", record.position.encode(), exc)
    return pd.concat(frames, ignore_index=True), bad


def latest_copies(frame: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """One row per `keys`: the copy received last (the event store's rule; equal received times: the later row),
    kept in the frame's row order, with a fresh index."""
    latest = frame.sort_values(RECEIVED_TIME_US, kind="stable").drop_duplicates(list(keys), keep="last")
    return latest.sort_index().reset_index(drop=True)


def ingest(records: Sequence[Record], directory: MerchantDirectory) -> Ingested:
    """Decode, attach days, dedup. Raises what the control store raises (the loop retries the cycle)."""
    frame, bad = _decode(records)
    out = Ingested(frame=frame, decoded=len(frame), undecodable=bad)
    if frame.empty:
        frame[DAY] = np.zeros(0, dtype=np.int32)
        return out
    out.max_received_us = int(frame[RECEIVED_TIME_US].max())
    merchant_ids = frame[MERCHANT_ID]
    out.merchants = directory.lookup(merchant_ids.unique().tolist())
    known = merchant_ids.isin(list(out.merchants))
    if not bool(known.all()):
        unknown = merchant_ids[~known]
        out.unknown_events = len(unknown)
        for merchant_id, count in unknown.value_counts().items():
            log.warning("skipping %d events of unknown merchant %r", count, merchant_id)
        frame = frame[known.to_numpy()].reset_index(drop=True)
    zones = {m: info.zone for m, info in out.merchants.items()}
    frame[DAY] = local_days(frame[MERCHANT_ID], frame[EVENT_TIME_US].to_numpy(), zones)
    repeated = frame.duplicated(IDENTITY, keep=False)
    if bool(repeated.any()):
        before = len(frame)
        frame = latest_copies(frame, IDENTITY)
        out.duplicates = before - len(frame)
    out.frame = frame
    if not frame.empty:
        counts = frame.groupby([MERCHANT_ID, DAY], sort=True).size()
        out.new_events = {
            (str(m), int(d)): int(n)
            for m, d, n in zip(
                counts.index.get_level_values(0), counts.index.get_level_values(1), counts.to_numpy(), strict=True
            )
        }
    assert EVENT_BYTES in frame.columns
    return out
