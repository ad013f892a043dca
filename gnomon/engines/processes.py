"""Start, identify and stop engine processes by pid, and check ports.

A pid file is trusted only if that pid is alive AND its command line still names the engine's main class and its
directory: a recycled pid is never signalled.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from gnomon.engines.errors import EngineError


@dataclass(frozen=True)
class PidRecord:
    pid: int
    main_class: str
    marker: str  # a path that must appear in the process's command line (its conf dir)


def cmdline(pid: int) -> str:
    """The process's command line joined by spaces, or '' if it is gone.

    /proc/<pid>/cmdline reads empty for a moment while a process execs or its memory map is busy (seen with the
    JVM at start-up), so an empty read is retried a few times before it counts.
    """
    for _ in range(20):
        try:
            line = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return ""
        if line:
            return line
        time.sleep(0.05)
    return ""


def read_pid(pid_file: Path) -> PidRecord | None:
    try:
        raw = json.loads(pid_file.read_text())
        return PidRecord(pid=int(raw["pid"]), main_class=str(raw["main_class"]), marker=str(raw["marker"]))
    except (OSError, ValueError, KeyError):
        return None


def live_pid(pid_file: Path) -> int | None:
    """The pid recorded in ``pid_file`` if that process is alive and is the engine we started, else None."""
    record = read_pid(pid_file)
    if record is None:
        return None
    line = cmdline(record.pid)
    if record.main_class in line and record.marker in line and not _is_zombie(record.pid):
        return record.pid
    return None


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return not Path(f"/proc/{pid}").exists()


def start(cmd: list[str], cwd: Path, log_file: Path, pid_file: Path, main_class: str, marker: str) -> int:
    """Start ``cmd`` detached (own session, stdin closed, output appended to ``log_file``); record its pid."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        log.write(f"\n==== gnomon engines: starting at {time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    pid_file.write_text(json.dumps({"pid": proc.pid, "main_class": main_class, "marker": marker}))
    return proc.pid


def reap(pid: int) -> None:
    """Collect the exit status if ``pid`` is our child (so it does not linger as a zombie)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (reaping it first if it is our exited child)."""
    reap(pid)
    return Path(f"/proc/{pid}").exists() and not _is_zombie(pid)


def stop(pid: int, grace_s: float = 45.0) -> bool:
    """SIGTERM, then SIGKILL after ``grace_s``. Returns True if it had to kill. Blocks until the pid is gone."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if not alive(pid):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while alive(pid):
        if time.monotonic() > deadline:
            raise EngineError(f"process {pid} survived SIGKILL for 10 s")
        time.sleep(0.1)
    return True


def port_open(host: str, port: int, timeout_s: float = 0.5) -> bool:
    """True if something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid`` from /proc (0 if gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a text file ('' if missing)."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 200_000))
            return "\n".join(f.read().decode(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
