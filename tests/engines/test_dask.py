"""Dask as Gnomon uses it: settings choose an embedded LocalCluster (worker processes) or an existing
scheduler; both run a real computation whose result equals pandas on the same data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest

from gnomon.compute import dask_client
from gnomon.settings import DaskSettings

pytestmark = pytest.mark.dask_cluster


def frame() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 200_000
    return pd.DataFrame({"page": rng.integers(0, 500, n), "micros": rng.integers(0, 10_000_000, n)})


def check_groupby(settings: DaskSettings) -> None:
    """A groupby-sum computed on the cluster equals pandas on the same frame."""
    df = frame()
    expected = df.groupby("page")["micros"].sum()
    with dask_client(settings):
        got = dd.from_pandas(df, npartitions=8).groupby("page")["micros"].sum().compute()
    pd.testing.assert_series_equal(got.sort_index(), expected.sort_index())


def test_local_cluster_with_two_worker_processes() -> None:
    settings = DaskSettings(scheduler_address=None, local_workers=2, threads_per_worker=1)
    with dask_client(settings) as client:
        info = client.scheduler_info()["workers"]
        pids = set(client.run(os.getpid).values())
    assert len(info) == 2
    assert len(pids) == 2 and os.getpid() not in pids
    check_groupby(settings)


def _scheduler_address(scheduler_file: Path, deadline: float) -> str:
    """The address in the scheduler's file, once the file is there and whole (it is written, not renamed)."""
    while True:
        try:
            return str(json.loads(scheduler_file.read_text())["address"])
        except (FileNotFoundError, ValueError, KeyError):
            assert time.monotonic() < deadline, f"dask scheduler did not write {scheduler_file} in time"
            time.sleep(0.2)


@pytest.fixture
def scheduler_address(tmp_path: Path) -> Iterator[str]:
    """A separately started `dask scheduler` + `dask worker` pair on loopback; stopped afterwards."""
    scheduler_file = tmp_path / "scheduler.json"
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
         "--no-dashboard", "--scheduler-file", str(scheduler_file)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    worker = None
    try:
        address = _scheduler_address(scheduler_file, deadline=time.monotonic() + 60)
        worker = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file", str(scheduler_file),
             "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        yield address
    finally:
        for proc in (worker, scheduler):
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()


def test_separately_started_scheduler_and_worker(scheduler_address: str) -> None:
    settings = DaskSettings(scheduler_address=scheduler_address, local_workers=1, threads_per_worker=1)
    with dask_client(settings) as client:
        client.wait_for_workers(1, timeout=60)
    check_groupby(settings)
