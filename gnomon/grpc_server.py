"""What every Gnomon gRPC server shares: a drain-aware server wrapper and TLS/mTLS credentials from PEM files."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health


class DrainingServer(grpc.Server):
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

        threading.Thread(target=release_threads, name="grpc-server-stop", daemon=True).start()
        return stopped

    def wait_for_termination(self, timeout: float | None = None) -> bool:
        return self._server.wait_for_termination(timeout)


def server_credentials(cert: Path | None, key: Path | None, client_ca: Path | None) -> grpc.ServerCredentials | None:
    """TLS credentials from PEM files (None when no certificate is configured); mTLS when a client CA is given."""
    if cert is None or key is None:
        return None
    ca = client_ca.read_bytes() if client_ca else None
    return grpc.ssl_server_credentials(
        [(key.read_bytes(), cert.read_bytes())], root_certificates=ca, require_client_auth=ca is not None
    )
