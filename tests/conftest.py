"""Session fixtures shared by every test package.

`real_engines` brings Pulsar and Cassandra up through the project's own command (`gnomon engines up`), reusing
engines that are already running, and stops them at the end only if this session started them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gnomon.engines import manager
from gnomon.engines.layout import EngineLayout
from gnomon.settings import CommonSettings

GNOMON = [sys.executable, "-m", "gnomon.cli.main"]


@dataclass(frozen=True)
class RealEngines:
    layout: EngineLayout
    settings: CommonSettings  # engine_mode=real, pointing at the local engines
    started_by_session: bool


def gnomon_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run the `gnomon` CLI as a user would; output captured as text."""
    return subprocess.run([*GNOMON, *args], capture_output=True, text=True, timeout=timeout, check=False)


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
