"""`create_server(settings, deps) -> (server, port)`: the collector's gRPC server, not yet started.

Served: gnomon.v1.CollectorService (write-key auth), gnomon.v1.AdminService (only when an admin token is set;
admin-token auth), grpc.health.v1.Health, and server reflection. TLS (and mTLS with a client CA) when the
settings name certificate files.

Backpressure: `workers` threads; at most `max_concurrent_rpcs` calls admitted by gRPC (beyond: gRPC answers
RESOURCE_EXHAUSTED at once); at most `max_in_flight_batches` batches in the pipeline (beyond: RESOURCE_EXHAUSTED
with RetryInfo). Nothing is queued without bound.

Shutdown: `server.stop(grace)` first flips health to NOT_SERVING (load balancers stop routing), then refuses
new calls and lets in-flight batches finish for up to `grace` seconds; a batch that finishes is durable and
answered, one cut off gets no ACK (the client retries; dedup downstream keeps it counted once).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from collector_svc.auth import COLLECTOR_SERVICE, KeyCache, WriteKeyInterceptor
from collector_svc.handler import BatchHandler
from collector_svc.metrics import CollectorMetrics
from collector_svc.servicer import CollectorServicer
from collector_svc.settings import CollectorSettings
from collector_svc.validation import MAX_BATCH_BYTES
from gnomon.control.admin_service import ADMIN_SERVICE, AdminServicer, AdminTokenInterceptor
from gnomon.control.port import ControlStore
from gnomon.eventlog.port import EventLog
from gnomon.telemetry import Telemetry
from gnomon.v1 import admin_pb2_grpc

# Batches up to twice the limit still reach the handler and get INVALID_ARGUMENT with field violations;
# larger messages are refused by gRPC itself (RESOURCE_EXHAUSTED) without being read into memory.
MAX_RECEIVE_BYTES = 2 * MAX_BATCH_BYTES + 64 * 1024


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class CollectorDeps:
    """What the collector talks to; owned (opened and closed) by the caller."""

    event_log: EventLog
    control: ControlStore
    telemetry: Telemetry
    clock: Callable[[], datetime] = field(default=utc_now)  # UTC-aware "now", injectable for tests


class CollectorServer(grpc.Server):
    """A grpc.Server whose `stop` reports NOT_SERVING before draining, and frees its threads afterwards."""

    def __init__(self, server: grpc.Server, health_servicer: health.HealthServicer, pool: ThreadPoolExecutor) -> None:
        self._server = server
        self._health = health_servicer
        self._pool = pool

    def add_generic_rpc_handlers(self, generic_rpc_handlers: Iterable[grpc.GenericRpcHandler]) -> None:
        self._server.add_generic_rpc_handlers(generic_rpc_handlers)

    def add_registered_method_handlers(
        self, service_name: str, method_handlers: Mapping[str, grpc.RpcMethodHandler[Any, Any]]
    ) -> None:
        self._server.add_registered_method_handlers(service_name, method_handlers)

    def add_insecure_port(self, address: str) -> int:
        return self._server.add_insecure_port(address)

    def add_secure_port(self, address: str, server_credentials: grpc.ServerCredentials) -> int:
        return self._server.add_secure_port(address, server_credentials)

    def start(self) -> None:
        self._server.start()

    def stop(self, grace: float | None) -> threading.Event:
        """Report NOT_SERVING, refuse new calls, let in-flight ones run up to `grace` s. Non-blocking."""
        self._health.enter_graceful_shutdown()
        stopped = self._server.stop(grace)

        def release_threads() -> None:
            stopped.wait()
            self._pool.shutdown(wait=False)

        threading.Thread(target=release_threads, name="collector-stop", daemon=True).start()
        return stopped

    def wait_for_termination(self, timeout: float | None = None) -> bool:
        return self._server.wait_for_termination(timeout)


def _credentials(settings: CollectorSettings) -> grpc.ServerCredentials | None:
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    ca = settings.tls_client_ca.read_bytes() if settings.tls_client_ca else None
    return grpc.ssl_server_credentials(
        [(settings.tls_key.read_bytes(), settings.tls_cert.read_bytes())],
        root_certificates=ca,
        require_client_auth=ca is not None,
    )


def create_server(settings: CollectorSettings, deps: CollectorDeps) -> tuple[CollectorServer, int]:
    """Build the server and bind its port (port 0 picks a free one); call `start()` on the result.

    Raises RuntimeError when the address cannot be bound.
    """
    metrics = CollectorMetrics(deps.telemetry)
    handler = BatchHandler(settings, deps.event_log, deps.clock, metrics)
    servicer = CollectorServicer(handler, deps.telemetry, metrics)
    interceptors: list[grpc.ServerInterceptor] = [
        WriteKeyInterceptor(KeyCache(deps.control, settings.auth_cache_ttl_s))
    ]
    if settings.admin_token:
        interceptors.append(AdminTokenInterceptor(settings.admin_token))
    pool = ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="collector")
    server = grpc.server(
        pool,
        interceptors=interceptors,
        options=[
            ("grpc.max_receive_message_length", MAX_RECEIVE_BYTES),
            ("grpc.so_reuseport", int(settings.reuse_port)),
        ],
        maximum_concurrent_rpcs=settings.max_concurrent_rpcs,
    )
    server.add_generic_rpc_handlers([servicer.generic_handler()])
    services = [COLLECTOR_SERVICE]
    if settings.admin_token:
        admin_pb2_grpc.add_AdminServiceServicer_to_server(AdminServicer(deps.control), server)
        services.append(ADMIN_SERVICE)
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ["", *services]:
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        [*services, health.SERVICE_NAME, reflection.SERVICE_NAME],
        server,
    )
    credentials = _credentials(settings)
    try:
        if credentials is None:
            port = server.add_insecure_port(settings.address)
        else:
            port = server.add_secure_port(settings.address, credentials)
    except RuntimeError as exc:
        raise RuntimeError(f"cannot listen on {settings.address}: {exc}") from exc
    if port == 0:
        raise RuntimeError(f"cannot listen on {settings.address}")
    return CollectorServer(server, health_servicer, pool), port
