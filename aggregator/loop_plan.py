"""Pure planning helpers of the aggregator loop: window closing and Dask task sizing (no I/O, no clock).

Window closing. The watermark is the largest received time seen (capped at the wall clock). A window is final
(not provisional) once `window end <= closed_before = watermark - allowed lateness`, i.e. once its end plus the
allowed lateness has passed the watermark. After a merchant-day is written, `next_due_us` says when its next
window will close: the loop keeps that as a durable day mark and recomputes the day when the watermark reaches it,
so the rows are re-emitted final even when no new event arrives. Events later than that simply re-open the day
(it is recomputed like any other; nothing is dropped).

Task sizing. Dask costs a few milliseconds per task (scheduling, pickling, a round trip); a task should carry
enough work that this stays under ~1 %, yet there should be enough tasks to keep every worker thread busy.
`plan_tasks` weighs each merchant-day by the events it will recompute (its last known size plus the new events)
plus a fixed per-day cost, makes `ceil(total / task_events)` tasks (at least 1, at most `slots`), and fills them
largest-first into the lightest task (LPT), so tasks are balanced.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from typing import Final, TypeVar

from aggregator.loop_days import day_bounds, from_us, to_us
from gnomon.rollups.model import hour_window_start

DAY_OVERHEAD_EVENTS: Final = 2_000
"""The fixed cost of a merchant-day (per-cube passes, ~25 windows written) in event-equivalents."""

T = TypeVar("T")


def next_due_us(day: date, zone: str, closed_before_us: int, lateness_us: int) -> int | None:
    """The watermark (µs) at which the next still-open window of local `day` closes, or None when every window of
    the day is already closed (the DAY window ends last, at the day's end)."""
    start, end = day_bounds(day, zone)
    end_us = to_us(end)
    if closed_before_us >= end_us:
        return None
    ref = max(from_us(closed_before_us), start)
    next_end = min(hour_window_start(ref, zone) + timedelta(hours=1), end)
    return to_us(next_end) + lateness_us


def closed_before_us(watermark_us: int, lateness_us: int) -> int:
    """`watermark - lateness`, floored to a whole second (window bounds are whole seconds)."""
    return (watermark_us - lateness_us) // 1_000_000 * 1_000_000


def plan_tasks(items: Sequence[T], weight: Callable[[T], int], *, slots: int, task_events: int) -> list[list[T]]:
    """Split `items` into balanced groups, one Dask task each (see the module docstring). Pure; order-stable."""
    if not items:
        return []
    weights = [max(0, weight(item)) + DAY_OVERHEAD_EVENTS for item in items]
    total = sum(weights)
    count = max(1, min(max(1, slots), len(items), math.ceil(total / max(1, task_events))))
    groups: list[list[T]] = [[] for _ in range(count)]
    loads = [0] * count
    for index in sorted(range(len(items)), key=lambda i: -weights[i]):
        lightest = min(range(count), key=loads.__getitem__)
        groups[lightest].append(items[index])
        loads[lightest] += weights[index]
    return [g for g in groups if g]
