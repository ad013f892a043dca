"""How both adapters turn frames into stored rows and stored rows back into frames (pure helpers)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Final

import numpy as np
import pandas as pd

from aggregator.decode import decode_batches, empty_frame, encode_events, logged_batch_of
from aggregator.eventstore.port import DAY, EventStoreInvalid, check_frame
from aggregator.frame import EVENT_BYTES, EVENT_ID, EVENT_TIME_US, MERCHANT_ID, RECEIVED_TIME_US

US_PER_HOUR: Final = 3_600_000_000
US_PER_DAY: Final = 24 * US_PER_HOUR


def stored_columns(frame: pd.DataFrame) -> tuple[list[str], list[int], list[str], list[int], list[int], list[bytes]]:
    """(merchant_ids, days, event_ids, event_time_us, received_time_us, event blobs) of `frame`, as Python lists.

    Raises EventStoreInvalid for missing columns or a negative day.
    """
    check_frame(frame)
    days = frame[DAY].to_numpy(dtype=np.int64)
    times = frame[EVENT_TIME_US].to_numpy(dtype=np.int64)
    if len(days):
        if int(days.min()) < 0:
            raise EventStoreInvalid("upsert: DAY must be days since 1970-01-01 (>= 0)")
        offset = times - days * US_PER_DAY  # µs from the day's UTC midnight: in [-14 h, 36 h) for UTC-12..UTC+14
        bad = (offset < -14 * US_PER_HOUR) | (offset >= 36 * US_PER_HOUR)
        if bool(bad.any()):
            i = int(np.flatnonzero(bad)[0])
            raise EventStoreInvalid(
                f"upsert: event {frame[EVENT_ID].iloc[i]!r} at {times[i]} µs cannot be on local day {days[i]}"
                " in any zone (UTC-12 .. UTC+14)"
            )
    blobs: list[bytes] = frame[EVENT_BYTES].tolist() if EVENT_BYTES in frame.columns else encode_events(frame)
    return (
        frame[MERCHANT_ID].tolist(),
        days.tolist(),
        frame[EVENT_ID].tolist(),
        times.tolist(),
        frame[RECEIVED_TIME_US].to_numpy(dtype=np.int64).tolist(),
        blobs,
    )


def day_frame(merchant_id: str, blobs: Sequence[bytes], received_us: Sequence[int]) -> pd.DataFrame:
    """The RAW_COLUMNS frame of stored events (already one per event_id), ordered by (event_time_us, event_id)."""
    if not blobs:
        return empty_frame()
    frame = decode_batches([logged_batch_of(merchant_id, blobs)])
    frame[RECEIVED_TIME_US] = np.asarray(received_us, dtype=np.int64)
    return frame.sort_values([EVENT_TIME_US, EVENT_ID], kind="stable", ignore_index=True)


def check_day(merchant_id: str, day: date) -> None:
    if not isinstance(merchant_id, str) or not merchant_id:
        raise EventStoreInvalid(f"merchant_id must be a non-empty string, got {merchant_id!r}")
    if not isinstance(day, date):
        raise EventStoreInvalid(f"day must be a datetime.date, got {day!r}")


def check_name(name: str) -> None:
    if not isinstance(name, str) or not name or len(name) > 200:
        raise EventStoreInvalid(f"watermark name must be a non-empty string of <= 200 characters, got {name!r}")
