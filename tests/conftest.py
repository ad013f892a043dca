"""Session fixtures shared by every test package.

`real_engines` brings Pulsar and Cassandra up through the project's own command (`gnomon engines up`), reusing
engines that are already running, and stops them at the end only if this session started them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import hypothesis
import pytest

from gnomon.engines import manager
from gnomon.engines.layout import EngineLayout
from gnomon.eventlog.pulsar_admin import PulsarAdmin
from gnomon.settings import CommonSettings

# Property tests check contracts, not speed: a CPU stall on a loaded CI machine must not fail an example
# (Hypothesis's default 200 ms deadline would), and deterministic runs (fixed seed per test) keep CI repeatable.
hypothesis.settings.register_profile(
    "gnomon", deadline=None, derandomize=True, suppress_health_check=[hypothesis.HealthCheck.too_slow]
)
hypothesis.settings.load_profile("gnomon")

GNOMON = [sys.executable, "-m", "gnomon.cli.main"]


@dataclass(frozen=True)
class RealEngines:
    layout: EngineLayout
    settings: CommonSettings  # engine_mode=real, pointing at the local engines
    started_by_session: bool


def gnomon_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run the `gnomon` CLI as a user would; output captured as text."""
    return subprocess.run([*GNOMON, *args], capture_output=True, text=True, timeout=timeout, check=False)


def delete_pulsar_namespace(admin: PulsarAdmin, namespace: str) -> None:
    """Delete an emptied test ``namespace``. The broker may hold the namespace's system topic (__change_events,
    topic policies) for a moment after the last topic is gone and answer 409 "non empty": retried for 30 s."""
    deadline = time.monotonic() + 30
    while True:
        status, body = admin.request("DELETE", f"/admin/v2/namespaces/{namespace}")
        if status != 409 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert status in (200, 204), body


@pytest.fixture(scope="session")
def real_engines() -> Iterator[RealEngines]:
    layout = EngineLayout.from_env()
    already_up = all(s.ready for s in manager.status(layout))
    if not already_up:
        done = gnomon_cli("engines", "up")
        assert done.returncode == 0, f"`gnomon engines up` failed:\n{done.stdout}\n{done.stderr}"
    settings = CommonSettings.from_env({**os.environ, "GNOMON_ENGINES": "real"})  # keeps port overrides
    yield RealEngines(layout=layout, settings=settings, started_by_session=not already_up)
    if not already_up:
        gnomon_cli("engines", "down")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked `lifecycle` stop and kill engines: run them after everything else."""
    items.sort(key=lambda item: item.get_closest_marker("lifecycle") is not None)


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]
