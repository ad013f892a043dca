"""`create_server(settings, deps) -> (server, port)`: the query service's gRPC server, not yet started.

Served: gnomon.v1.QueryService (read-token auth and merchant isolation by `ReadTokenInterceptor`),
grpc.health.v1.Health and server reflection. TLS (and mTLS with a client CA) when the settings name
certificate files, as in the collector.

Backpressure: `workers` threads; at most `max_concurrent_rpcs` calls admitted by gRPC (beyond: gRPC answers
RESOURCE_EXHAUSTED at once). Shutdown: `server.stop(grace)` first flips health to NOT_SERVING (load balancers
stop routing), then refuses new calls and lets calls in flight finish for up to `grace` seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

import grpc
from grpc_health.v1 import health

from aggregator.eventstore import EventStore
from gnomon.control.key_cache import KeyCache
from gnomon.control.port import ControlStore
from gnomon.grpc_server import DrainingServer, add_health_and_reflection, bind
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


class QueryServer(DrainingServer):
    """The query service's server (see DrainingServer); `engine` is exposed for introspection (cache statistics)."""

    def __init__(
        self, server: grpc.Server, health_servicer: health.HealthServicer, pool: ThreadPoolExecutor, engine: QueryEngine
    ) -> None:
        super().__init__(server, health_servicer, pool)
        self.engine = engine


def build_engine(settings: QuerySettings, deps: QueryDeps, metrics: QueryMetrics) -> QueryEngine:
    """The query engine every front end (gRPC, GA4, gRPC-web) serves from, configured from settings."""
    return QueryEngine(
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


def create_server(settings: QuerySettings, deps: QueryDeps) -> tuple[QueryServer, int]:
    """Build the server and bind its port (port 0 picks a free one); call `start()` on the result.

    Raises RuntimeError when the address cannot be bound.
    """
    metrics = QueryMetrics(deps.telemetry)
    engine = build_engine(settings, deps, metrics)
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
    # The GA4 service's messages come from google-analytics-data (proto-plus): no service descriptor to reflect.
    health_servicer = add_health_and_reflection(server, (QUERY_SERVICE, GA4_SERVICE), reflected=(QUERY_SERVICE,))
    port = bind(server, settings.address, settings.tls_cert, settings.tls_key, settings.tls_client_ca)
    return QueryServer(server, health_servicer, pool, engine), port
