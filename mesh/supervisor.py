"""Run a set of Gnomon services as child processes: start in order, health-check, one log directory, clean stop.

Each service is a `gnomon …` command line. Its stdout/stderr go to `<log_dir>/<name>.log`. `Supervisor.start`
blocks until every service is healthy (gRPC health `SERVING`, or simply alive for services without a port) and
raises ServiceFailed with the tail of the log if one exits or does not become healthy in time. `stop` sends
SIGTERM to all (reverse start order), waits for the grace period, then SIGKILLs what is left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gnomon.engines.processes import tail


class ServiceFailed(RuntimeError):
    """A service exited or never became healthy; the message holds the tail of its log."""


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    args: tuple[str, ...]  # arguments after `gnomon`
    grpc_port: int | None = None  # health-checked when set
    env: Mapping[str, str] = field(default_factory=dict)


def grpc_healthy(port: int, timeout_s: float = 1.0) -> bool:
    """True if the gRPC health service on 127.0.0.1:port answers SERVING."""
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=timeout_s)
            return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
    except grpc.RpcError:
        return False


class Supervisor:
    """Starts, watches and stops the services of one `gnomon up`."""

    def __init__(self, log_dir: Path, base_env: Mapping[str, str] | None = None) -> None:
        self.log_dir = log_dir
        self.base_env = dict(os.environ if base_env is None else base_env)
        self.running: list[tuple[ServiceSpec, subprocess.Popen[bytes]]] = []

    def log_file(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def start(self, spec: ServiceSpec, timeout_s: float = 60.0) -> None:
        """Start ``spec`` and block until it is healthy. Raises ServiceFailed."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_file(spec.name).open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "gnomon.cli.main", *spec.args],
            env={**self.base_env, **spec.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        self.running.append((spec, proc))
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise ServiceFailed(self._why(spec, f"exited with code {proc.returncode} during start-up"))
            if spec.grpc_port is None or grpc_healthy(spec.grpc_port):
                return
            if time.monotonic() > deadline:
                raise ServiceFailed(self._why(spec, f"was not healthy within {timeout_s:.0f} s"))
            time.sleep(0.2)

    def _why(self, spec: ServiceSpec, what: str) -> str:
        log = self.log_file(spec.name)
        return f"{spec.name} {what}.\n--- last lines of {log} ---\n{tail(log, 30)}"

    def check(self) -> list[str]:
        """Names of services that have exited (empty while all run)."""
        return [spec.name for spec, proc in self.running if proc.poll() is not None]

    def stop(self, grace_s: float = 15.0) -> None:
        """SIGTERM every service (last started first), wait up to ``grace_s``, then SIGKILL the rest."""
        for _, proc in reversed(self.running):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for _, proc in reversed(self.running):
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.running.clear()
