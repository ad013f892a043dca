"""What every Gnomon gRPC server shares: a drain-aware server wrapper, the TLS/mTLS settings (GNOMON_TLS_*) and
their credentials, health + reflection, and binding the listening port."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from gnomon.settings import EnvReader, SettingsError


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


def tls_files_from_env(reader: EnvReader) -> tuple[Path | None, Path | None, Path | None]:
    """(certificate, key, client CA) from GNOMON_TLS_CERT / _KEY / _CLIENT_CA, as absolute paths (None: unset)."""
    cert, key, client_ca = (reader.optional(name) for name in ("TLS_CERT", "TLS_KEY", "TLS_CLIENT_CA"))
    return _path(cert), _path(key), _path(client_ca)


def _path(raw: str | None) -> Path | None:
    return Path(raw).expanduser().resolve() if raw else None


def check_tls_files(cert: Path | None, key: Path | None, client_ca: Path | None) -> None:
    """Raises SettingsError unless certificate and key are both set or both unset, a client CA (mTLS) comes
    with them, and every file named exists."""
    if (cert is None) != (key is None):
        raise SettingsError("GNOMON_TLS_CERT and GNOMON_TLS_KEY must be set together (PEM files)")
    if client_ca is not None and cert is None:
        raise SettingsError("GNOMON_TLS_CLIENT_CA (mTLS) needs GNOMON_TLS_CERT and GNOMON_TLS_KEY too")
    for path in (cert, key, client_ca):
        if path is not None and not path.is_file():
            raise SettingsError(f"TLS file {path} does not exist")


def server_credentials(cert: Path | None, key: Path | None, client_ca: Path | None) -> grpc.ServerCredentials | None:
    """TLS credentials from PEM files (None when no certificate is configured); mTLS when a client CA is given."""
    if cert is None or key is None:
        return None
    ca = client_ca.read_bytes() if client_ca else None
    return grpc.ssl_server_credentials(
        [(key.read_bytes(), cert.read_bytes())], root_certificates=ca, require_client_auth=ca is not None
    )


def add_health_and_reflection(
    server: grpc.Server, services: Iterable[str], reflected: Iterable[str] | None = None
) -> health.HealthServicer:
    """Serve grpc.health.v1.Health (SERVING for "" and each of `services`) and server reflection of `reflected`
    (default: `services`; only services whose descriptors are in the default pool) plus the two standard ones;
    returns the health servicer (DrainingServer flips it on stop)."""
    names = list(services)
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ["", *names]:
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    shown = names if reflected is None else list(reflected)
    reflection.enable_server_reflection([*shown, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    return health_servicer


def bind(server: grpc.Server, address: str, cert: Path | None, key: Path | None, client_ca: Path | None) -> int:
    """Listen on `address` (TLS when a certificate is given, see `server_credentials`); returns the bound port
    (the chosen one for port 0). Raises RuntimeError naming the address when it cannot be bound."""
    credentials = server_credentials(cert, key, client_ca)
    try:
        if credentials is None:
            port = server.add_insecure_port(address)
        else:
            port = server.add_secure_port(address, credentials)
    except RuntimeError as exc:
        raise RuntimeError(f"cannot listen on {address}: {exc}") from exc
    if port == 0:
        raise RuntimeError(f"cannot listen on {address}")
    return port
