"""`create_web_server(settings, deps) -> (server, port)`: the web app on uvicorn (HTTP/1.1), not yet started.

The listening socket is bound here (port 0 picks a free one), so the port is known before `start()`. `start()`
runs uvicorn's event loop on a thread and returns once it accepts connections; `stop(grace)` stops accepting,
lets calls in flight finish for up to `grace` seconds, then frees the query threads. TLS (and mTLS with a client
CA) with the query service's GNOMON_TLS_* files.
"""

from __future__ import annotations

import asyncio
import math
import socket
import ssl
import threading

import uvicorn

from query_svc.engine import QueryEngine
from query_svc.server import QueryDeps
from query_svc.web.app import WebApp, create_web_app
from query_svc.web.settings import WebSettings

START_TIMEOUT_S = 30.0


class WebServer:
    """uvicorn serving a `WebApp` on an already bound socket, on a background thread."""

    def __init__(self, app: WebApp, settings: WebSettings, sock: socket.socket) -> None:
        self.app = app
        self._settings = settings
        self._sock = sock
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None
        query = settings.query
        config = uvicorn.Config(
            app.asgi,
            lifespan="off",
            http="h11",
            log_level="warning",
            access_log=False,
            server_header=False,
            proxy_headers=False,
            timeout_graceful_shutdown=max(1, math.ceil(settings.grace_s)),
            ssl_certfile=query.tls_cert,
            ssl_keyfile=query.tls_key,
            ssl_ca_certs=query.tls_client_ca,
            ssl_cert_reqs=ssl.CERT_REQUIRED if query.tls_client_ca else ssl.CERT_NONE,
        )
        self._server = uvicorn.Server(config)

    @property
    def port(self) -> int:
        port: int = self._sock.getsockname()[1]
        return port

    @property
    def engine(self) -> QueryEngine:
        return self.app.engine

    def _run(self) -> None:
        try:
            asyncio.run(self._server.serve(sockets=[self._sock]))
        except BaseException as exc:  # reported by start()
            self._failure = exc

    def start(self) -> None:
        """Serve on a background thread; returns once connections are accepted. Raises RuntimeError."""
        self._thread = threading.Thread(target=self._run, name="web-server", daemon=True)
        self._thread.start()
        deadline = threading.Event()
        waited = 0.0
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"the web server failed to start: {self._failure!r}")
            if waited > START_TIMEOUT_S:
                raise RuntimeError(f"the web server did not start within {START_TIMEOUT_S} s")
            deadline.wait(0.01)
            waited += 0.01

    def stop(self, grace: float | None = None) -> None:
        """Stop accepting, let calls in flight finish (up to `grace` s, default the settings'), free threads.

        Blocks until done."""
        if grace is not None:  # uvicorn counts whole seconds, and None would mean "wait for ever"
            self._server.config.timeout_graceful_shutdown = max(1, math.ceil(grace))
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join((grace if grace is not None else self._settings.grace_s) + 10)
        self._sock.close()
        self.app.close()


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: any free one). Raises RuntimeError when it cannot bind."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise RuntimeError(f"cannot listen on {host}:{port}: {exc}") from exc
    sock.set_inheritable(True)
    return sock


def create_web_server(
    settings: WebSettings, deps: QueryDeps, engine: QueryEngine | None = None
) -> tuple[WebServer, int]:
    """Build the app and bind its port; call `start()` on the result. Raises RuntimeError when it cannot bind."""
    sock = bind(settings.host, settings.port)
    server = WebServer(create_web_app(settings, deps, engine), settings, sock)
    return server, server.port
