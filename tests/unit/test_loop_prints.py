"""Window fingerprints from a day's columns (`loop_prints.column_prints`) and rows of chosen windows only
(`rows.build_rows(windows=...)`): what the live loop uses to skip unchanged windows and write the others."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime

import numpy as np
import pytest

from aggregator.compute import aggregate_day
from aggregator.cubes import DEFAULT_CUBES
from aggregator.derive import derive
from aggregator.loop_prints import ColumnWindows, WindowKey, column_prints, group_windows
from aggregator.rows import CubeBlock, DayRollups, build_rows
from bench.aggregate_compute import synthetic_day
from gnomon.rollups.dims import CodedDims

DAY = date(2026, 3, 10)
ZONE = "America/New_York"
COMPUTED = datetime(2026, 3, 11, 12, tzinfo=UTC)
MID_DAY = datetime(2026, 3, 10, 18, tzinfo=UTC)  # 14:00 local: later hour windows and the day are provisional


@pytest.fixture(scope="module")
def day() -> DayRollups:
    raw = synthetic_day(events=20_000, clients=800, pages=300, day=DAY, zone=ZONE, merchant_id="m-prints", seed=3)
    return aggregate_day(
        derive(raw), merchant_id="m-prints", zone=ZONE, day=DAY, key_events=frozenset({"purchase"}),
        cubes=DEFAULT_CUBES, currency="USD", max_values=50,
    )  # fmt: skip


def replace_block(day: DayRollups, index: int, block: CubeBlock) -> DayRollups:
    blocks = list(day.blocks)
    blocks[index] = block
    return dataclasses.replace(day, blocks=tuple(blocks))


def permuted(block: CubeBlock, order: np.ndarray) -> CubeBlock:
    """The same rows in another order."""
    at = order.tolist()
    changes: dict[str, object] = {}
    for field in dataclasses.fields(CubeBlock):
        value = getattr(block, field.name)
        if isinstance(value, np.ndarray):
            changes[field.name] = value[order]
        elif isinstance(value, list):
            changes[field.name] = [value[i] for i in at]
        elif isinstance(value, CodedDims):
            changes[field.name] = CodedDims(value.codes[order], value.values)
    return dataclasses.replace(block, **changes)  # type: ignore[arg-type]


def window_of(block: CubeBlock, row: int) -> WindowKey:
    return (block.cube.name, block.grain.value, int(block.window_start_us[row]) // 1_000_000)


def test_prints_cover_exactly_the_windows_with_rows(day: DayRollups) -> None:
    rows = day.rows(version=1, computed_at=COMPUTED, closed_before=MID_DAY)
    prints = column_prints(day, MID_DAY)
    assert set(prints) == set(group_windows(rows))
    assert len(prints) > 100
    by_window = group_windows(rows)
    for key, (_, provisional) in prints.items():
        assert provisional == any(r.provisional for r in by_window[key])
        assert provisional == all(r.provisional for r in by_window[key])


def test_prints_ignore_the_order_of_rows(day: DayRollups) -> None:
    before = column_prints(day, MID_DAY)
    shuffled = day
    rng = np.random.default_rng(0)
    for i, block in enumerate(day.blocks):
        shuffled = replace_block(shuffled, i, permuted(block, rng.permutation(len(block))))
    assert column_prints(shuffled, MID_DAY) == before


def test_any_change_of_a_window_changes_its_print_and_no_other(day: DayRollups) -> None:
    before = column_prints(day, MID_DAY)
    index = next(i for i, b in enumerate(day.blocks) if b.cube.name == "page" and len(b) > 10)
    block = day.blocks[index]
    row = len(block) // 2
    target = window_of(block, row)
    events = block.events.copy()
    events[row] += 1
    users = list(block.users)
    users[row] = users[row][:-1] + bytes([users[row][-1] ^ 1])
    codes = block.dims.codes.copy()
    codes[row] = len(block.dims.values)
    dims = CodedDims(codes, [*block.dims.values, ("/not-a-page-of-this-day",)])
    for changed in (
        dataclasses.replace(block, events=events),
        dataclasses.replace(block, users=users),
        dataclasses.replace(block, dims=dims),
    ):
        after = column_prints(replace_block(day, index, changed), MID_DAY)
        assert {k for k in before if before[k] != after[k]} == {target}


def test_closing_a_window_changes_its_print(day: DayRollups) -> None:
    before = column_prints(day, MID_DAY)
    after = column_prints(day, datetime(2026, 3, 12, tzinfo=UTC))
    newly_closed = {k for k, (_, provisional) in before.items() if provisional}
    assert newly_closed
    assert {k for k in before if before[k] != after[k]} == newly_closed
    assert not any(provisional for _, provisional in after.values())


def test_columns_of_chosen_windows_equal_those_windows_of_all_rows(day: DayRollups) -> None:
    stamp = {"version": 2, "computed_at": COMPUTED, "closed_before": MID_DAY}
    every = group_windows(build_rows(day, **stamp))  # type: ignore[arg-type]
    chosen = [*sorted(every)[::7], ("page", "hour", 0)]  # and a window without rows
    got = ColumnWindows(day, 2, COMPUTED, MID_DAY).columns(chosen)
    assert set(got) == set(chosen) - {("page", "hour", 0)}
    assert any(r.provisional for k in got for r in every[k]) and not all(r.provisional for k in got for r in every[k])
    for key, block in got.items():
        assert block.rows() == every[key]  # same rows, same order
    assert build_rows(day, **stamp, windows=[]) == []  # type: ignore[arg-type]
