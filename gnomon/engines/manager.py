"""Bring the local engines up and down, report their status.

`up` is idempotent: a running, ready engine is left alone; a dead one (e.g. after kill -9) is restarted on its
existing data. `down` signals exactly the pids it recorded. Every failure raises EngineError carrying the tail of
the engine's log and a hint.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass

from gnomon.engines import processes, readiness, specs
from gnomon.engines.errors import EngineError
from gnomon.engines.jars import ensure_jars, ensure_offloaders
from gnomon.engines.java import java17
from gnomon.engines.layout import EngineLayout
from gnomon.engines.pulsar_admin import ensure_namespace
from gnomon.engines.specs import EngineSpec
from gnomon.settings import PulsarSettings

Report = Callable[[str], None]


@dataclass(frozen=True)
class EngineState:
    """What `status` knows about one engine."""

    name: str
    title: str
    pid: int | None
    ready: bool
    rss_bytes: int
    ports: tuple[int, ...]
    log_file: str
    data_dir: str


@dataclass(frozen=True)
class StartResult:
    name: str
    started: bool  # False: it was already up
    seconds: float
    pid: int


def fetch(layout: EngineLayout) -> dict[str, str]:
    """Resolve every engine's jars and Pulsar's offloader NAR (no-op when cached); returns name → directory
    (one entry per engine, plus "pulsar-offloaders")."""
    resolved = {
        s.name: str(ensure_jars(layout.recipes, layout.jar_cache, s.name, s.version_property))
        for s in specs.all_specs(layout)
    }
    resolved["pulsar-offloaders"] = str(ensure_offloaders(layout.recipes, layout.jar_cache))
    return resolved


def state(layout: EngineLayout, spec: EngineSpec) -> EngineState:
    pid = processes.live_pid(spec.pid_file(layout))
    return EngineState(
        name=spec.name,
        title=spec.title,
        pid=pid,
        ready=pid is not None and readiness.ready(layout, spec.name),
        rss_bytes=processes.rss_bytes(pid) if pid else 0,
        ports=spec.ports,
        log_file=str(spec.log_file(layout)),
        data_dir=str(spec.data_dir(layout)),
    )


def status(layout: EngineLayout) -> list[EngineState]:
    return [state(layout, s) for s in specs.all_specs(layout)]


def _fail(layout: EngineLayout, spec: EngineSpec, why: str) -> EngineError:
    log = spec.log_file(layout)
    return EngineError(
        f"{spec.title} {why}.\n--- last lines of {log} ---\n{processes.tail(log)}\n---\n"
        f"hint: read the log above; `gnomon engines logs {spec.name}` shows more; "
        f"`gnomon engines up --wipe` starts from empty data if the data directory is damaged"
    )


def _wait_ready(layout: EngineLayout, spec: EngineSpec, pid: int, report: Report) -> None:
    deadline = time.monotonic() + layout.start_timeout_s
    next_note = time.monotonic() + 15
    while not readiness.ready(layout, spec.name):
        if not processes.alive(pid):
            raise _fail(layout, spec, f"exited during start-up (pid {pid})")
        if time.monotonic() > deadline:
            processes.stop(pid, grace_s=5)
            raise _fail(layout, spec, f"was not ready within {layout.start_timeout_s} s and was stopped")
        if time.monotonic() > next_note:
            report(f"  still waiting for {spec.name} ...")
            next_note += 15
        time.sleep(0.5)


def _launch(layout: EngineLayout, spec: EngineSpec, report: Report) -> tuple[int, bool]:
    """Start ``spec`` in the background unless it already runs; returns (pid, started_now). Does not wait."""
    running = processes.live_pid(spec.pid_file(layout))
    if running is not None:
        return running, False
    busy = [p for p in spec.ports if processes.port_open(layout.host, p)]
    if busy:
        raise EngineError(
            f"{spec.title} cannot start: port(s) {busy} on {layout.host} are taken by another process "
            f"(not one gnomon started). Stop it, or choose other ports with GNOMON_PULSAR_PORT / "
            f"GNOMON_PULSAR_HTTP_PORT / GNOMON_BOOKIE_PORT / GNOMON_CQL_PORT / GNOMON_CASSANDRA_STORAGE_PORT"
        )
    java = java17(layout.java17_home)
    lib = ensure_jars(layout.recipes, layout.jar_cache, spec.name, spec.version_property)
    if spec.name == "pulsar":
        ensure_offloaders(layout.recipes, layout.jar_cache)  # standalone.conf names its offloadersDirectory
    specs.render_config(layout, spec)
    cmd = specs.command(layout, spec, java, lib)
    report(f"{spec.name}: starting {spec.title} (log: {spec.log_file(layout)})")
    pid = processes.start(
        cmd,
        cwd=spec.data_dir(layout),
        log_file=spec.log_file(layout),
        pid_file=spec.pid_file(layout),
        main_class=spec.main_class,
        marker=str(spec.conf_dir(layout)),
    )
    return pid, True


def _await_launch(
    layout: EngineLayout, spec: EngineSpec, pid: int, started: bool, began: float, report: Report
) -> StartResult:
    """Block until a launched (or found running) engine is ready; a found one that dies is started once more."""
    try:
        _wait_ready(layout, spec, pid, report)
    except EngineError:
        if started:
            raise
        # It was running but never became ready (e.g. caught while shutting down): start it afresh, once.
        report(f"{spec.name}: pid {pid} went away before it was ready; starting it again")
        pid, started = _launch(layout, spec, report)
        _wait_ready(layout, spec, pid, report)
    return StartResult(spec.name, started, time.monotonic() - began, pid)


def up(layout: EngineLayout, pulsar: PulsarSettings, report: Report, wipe: bool = False) -> list[StartResult]:
    """Start every engine that is not running (optionally on wiped data), all at once, and block until each is
    ready; then prepare Gnomon's Pulsar namespace. StartResult.seconds counts from the start of `up`."""
    if wipe:
        down(layout, report)
        for spec in specs.all_specs(layout):
            shutil.rmtree(spec.data_dir(layout), ignore_errors=True)
            report(f"{spec.name}: wiped {spec.data_dir(layout)}")
    began = time.monotonic()
    launched = [(spec, *_launch(layout, spec, report)) for spec in specs.all_specs(layout)]  # start in parallel
    results = [_await_launch(layout, spec, pid, started, began, report) for spec, pid, started in launched]
    ensure_namespace(pulsar.admin_url, pulsar.tenant, pulsar.namespace)
    return results


def down(layout: EngineLayout, report: Report) -> list[str]:
    """Stop the engines gnomon started (by recorded pid) and wait until their ports are closed."""
    stopped: list[str] = []
    for spec in specs.all_specs(layout):
        pid = processes.live_pid(spec.pid_file(layout))
        if pid is None:
            spec.pid_file(layout).unlink(missing_ok=True)
            continue
        report(f"{spec.name}: stopping pid {pid}")
        killed = processes.stop(pid)
        spec.pid_file(layout).unlink(missing_ok=True)
        stopped.append(spec.name + (" (killed after grace period)" if killed else ""))
        deadline = time.monotonic() + 20
        while any(processes.port_open(layout.host, p) for p in spec.ports):
            if time.monotonic() > deadline:
                raise EngineError(f"{spec.title} stopped but a port of {spec.ports} is still open")
            time.sleep(0.2)
    return stopped
