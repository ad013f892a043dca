"""`gnomon up --demo` (what `make run` runs): the whole stack on the embedded engines, demo traffic through the
SDK, a report with that traffic, and a clean stop."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ports import free_port

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(360)
def test_up_demo_runs_the_stack_reports_the_traffic_and_stops(tmp_path: Path) -> None:
    ports = [str(free_port()) for _ in range(3)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GNOMON_")}
    argv = [
        sys.executable, "-m", "gnomon.cli.main", "up", "--demo", "--data", str(tmp_path / "data"),
        "--for-seconds", "40", "--collector-port", ports[0], "--query-port", ports[1], "--web-port", ports[2],
    ]  # fmt: skip
    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    assert "Gnomon is up (embedded engines" in out
    assert f"grpc://127.0.0.1:{ports[1]}" in out
    assert re.search(r"read token\s+gn_r_\S+", out), out[-3000:]
    totals = re.search(r"activeUsers.*?\n.*?\n\s*│\s*([\d,]+)\s*│\s*([\d,]+)\s*│\s*([\d,]+)", out, re.S)
    assert totals, out[-3000:]
    users, sessions, views = (int(x.replace(",", "")) for x in totals.groups())
    assert users > 0 and sessions > 0 and views > 0
    assert out.rstrip().endswith("stopped.")
    assert (tmp_path / "data" / "logs").is_dir()
