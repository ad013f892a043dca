"""`create_server(settings, deps) -> (server, port)`: the query service's gRPC server, not yet started.

Served: gnomon.v1.QueryService (read-token auth and merchant isolation by `ReadTokenInterceptor`),
grpc.health.v1.Health and server reflection. TLS (and mTLS with a client CA) when the settings name
certificate files, as in the collector.

Backpressure: `workers` threads; at most `max_concurrent_rpcs` calls admitted by gRPC (beyond: gRPC answers
RESOURCE_EXHAUSTED at once). Shutdown: `server.stop(grace)` first flips health to NOT_SERVING (load balancers
stop routing), then refuses new calls and lets calls in flight finish for up to `grace` seconds.
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

from aggregator.eventstore import EventStore
from collector_svc.auth import KeyCache
from gnomon.control.port import ControlStore
from gnomon.rollups import RollupStore, VersionRegistry
from gnomon.telemetry import Telemetry
from gnomon.v1 import query_pb2_grpc
from query_svc.auth import QUERY_SERVICE, ReadTokenInterceptor
from query_svc.engine import EngineConfig, QueryEngine
from query_svc.ga4 import GA4_SERVICE, add_ga4_service
from query_svc.metrics import QueryMetrics
from query_svc.servicer import TRACER_NAME, QueryServicer
from query_svc.settings import QuerySettings

MAX_RESPONSE_BYTES = 256 * 1024 * 1024  # 100k rows of several dimensions and metrics fit comfortably


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class QueryDeps:
    """What the query service reads; owned (opened and closed) by the caller. Without `event_store`,
    Realtime answers UNAVAILABLE."""

    store: RollupStore
    registry: VersionRegistry
    control: ControlStore
    telemetry: Telemetry
    event_store: EventStore | None = None
    clock: Callable[[], datetime] = field(default=utc_now)  # UTC-aware "now", injectable for tests


class QueryServer(grpc.Server):
    """A grpc.Server whose `stop` reports NOT_SERVING before draining, and frees its threads afterwards.
    `engine` is exposed for introspection (cache statistics)."""

    def __init__(
        self, server: grpc.Server, health_servicer: health.HealthServicer, pool: ThreadPoolExecutor, engine: QueryEngine
    ) -> None:
        self._server = server
        self._health = health_servicer
        self._pool = pool
        self.engine = engine

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

        threading.Thread(target=release_threads, name="query-stop", daemon=True).start()
        return stopped

    def wait_for_termination(self, timeout: float | None = None) -> bool:
        return self._server.wait_for_termination(timeout)


def _credentials(settings: QuerySettings) -> grpc.ServerCredentials | None:
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    ca = settings.tls_client_ca.read_bytes() if settings.tls_client_ca else None
    return grpc.ssl_server_credentials(
        [(settings.tls_key.read_bytes(), settings.tls_cert.read_bytes())],
        root_certificates=ca,
        require_client_auth=ca is not None,
    )


def create_server(settings: QuerySettings, deps: QueryDeps) -> tuple[QueryServer, int]:
    """Build the server and bind its port (port 0 picks a free one); call `start()` on the result.

    Raises RuntimeError when the address cannot be bound.
    """
    metrics = QueryMetrics(deps.telemetry)
    engine = QueryEngine(
        deps.store,
        deps.registry,
        deps.control,
        event_store=deps.event_store,
        config=EngineConfig(
            max_limit=settings.max_limit,
            cache_entries=settings.cache_entries,
            cache_ttl_s=settings.cache_ttl_s,
            window_cache_rows=settings.window_cache_rows,
            key_events=settings.key_events,
        ),
        clock=deps.clock,
        tracer=deps.telemetry.tracer(TRACER_NAME),
        on_cache_lookup=metrics.cache_lookup,
    )
    pool = ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="query")
    keys = KeyCache(deps.control, settings.auth_cache_ttl_s)
    server = grpc.server(
        pool,
        interceptors=[ReadTokenInterceptor(keys)],
        options=[("grpc.max_send_message_length", MAX_RESPONSE_BYTES)],
        maximum_concurrent_rpcs=settings.max_concurrent_rpcs,
    )
    query_pb2_grpc.add_QueryServiceServicer_to_server(QueryServicer(engine, deps.telemetry, metrics), server)
    add_ga4_service(server, engine, keys, telemetry=deps.telemetry, metrics=metrics)  # same port, same engine
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", QUERY_SERVICE, GA4_SERVICE):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection([QUERY_SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
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
    return QueryServer(server, health_servicer, pool, engine), port
