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

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

import grpc

from collector_svc.auth import COLLECTOR_SERVICE, WriteKeyInterceptor
from collector_svc.handler import BatchHandler
from collector_svc.metrics import CollectorMetrics
from collector_svc.servicer import CollectorServicer
from collector_svc.settings import CollectorSettings
from collector_svc.validation import MAX_BATCH_BYTES
from gnomon.control.admin_service import ADMIN_SERVICE, AdminServicer, AdminTokenInterceptor
from gnomon.control.key_cache import KeyCache
from gnomon.control.port import ControlStore
from gnomon.eventlog.port import EventLog
from gnomon.grpc_server import DrainingServer, add_health_and_reflection, bind
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


class CollectorServer(DrainingServer):
    """The collector's server: drains in-flight batches on `stop` (see DrainingServer)."""


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
    health_servicer = add_health_and_reflection(server, services)
    port = bind(server, settings.address, settings.tls_cert, settings.tls_key, settings.tls_client_ca)
    return CollectorServer(server, health_servicer, pool), port
