"""`create_web_app(settings, deps)`: the ASGI app of the web server — QueryService over gRPC-web / Connect at
`/gnomon.v1.QueryService/*`, the dashboard at `/`, `GET /healthz` — with CORS for the configured origins.

The query engine is the query service's (`QueryEngine`, built here exactly as `query_svc.server.create_server`
builds it, or passed in to share one engine and cache with a gRPC server in the same process); calls go through
the gRPC `ReadTokenInterceptor` and `QueryServicer` (see `query_svc.web.bridge`).

CORS: only for `settings.cors_origins` (the dashboard served here is same-origin and needs none). Preflights allow
the headers gRPC-web and Connect clients send (authorization, content type, timeouts, user agent, trace context)
and responses expose grpc-status / grpc-message / grpc-status-details-bin, without which a browser on another
origin cannot read the result of a call.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Final

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from gnomon.control.key_cache import KeyCache
from query_svc.auth import QUERY_SERVICE, ReadTokenInterceptor
from query_svc.engine import QueryEngine
from query_svc.metrics import QueryMetrics
from query_svc.server import QueryDeps, build_engine
from query_svc.servicer import QueryServicer
from query_svc.web.bridge import QueryBridge
from query_svc.web.connect import QueryServiceConnectApp
from query_svc.web.settings import WebSettings
from query_svc.web.static import DashboardFiles

CORS_ALLOW_HEADERS: Final = (
    "authorization",
    "content-type",
    "x-grpc-web",
    "x-user-agent",
    "grpc-timeout",
    "connect-protocol-version",
    "connect-timeout-ms",
    "traceparent",
    "tracestate",
)
CORS_EXPOSE_HEADERS: Final = ("grpc-status", "grpc-message", "grpc-status-details-bin")
CORS_MAX_AGE_S: Final = 7200


@dataclass
class WebApp:
    """The ASGI app and what it owns (`executor`: the query threads, shut down by `close`)."""

    asgi: Starlette
    engine: QueryEngine
    connect: QueryServiceConnectApp
    executor: ThreadPoolExecutor

    def close(self) -> None:
        """Stop the query threads (waits for queries running on them). Idempotent."""
        self.executor.shutdown(wait=True, cancel_futures=True)


async def _healthz(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok\n")


def create_web_app(settings: WebSettings, deps: QueryDeps, engine: QueryEngine | None = None) -> WebApp:
    """Build the app; `engine` shares an existing QueryEngine (and its cache), otherwise one is built."""
    metrics = QueryMetrics(deps.telemetry)
    engine = engine or build_engine(settings.query, deps, metrics)
    servicer = QueryServicer(engine, deps.telemetry, metrics)
    interceptor = ReadTokenInterceptor(KeyCache(deps.control, settings.query.auth_cache_ttl_s))
    executor = ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="web-query")
    connect = QueryServiceConnectApp(
        QueryBridge(servicer, interceptor),
        executor,
        max_concurrent=settings.max_concurrent,
        default_timeout_s=settings.timeout_s,
    )
    middleware = []
    if settings.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_methods=["GET", "POST"],
                allow_headers=list(CORS_ALLOW_HEADERS),
                expose_headers=list(CORS_EXPOSE_HEADERS),
                max_age=CORS_MAX_AGE_S,
            )
        )
    asgi = Starlette(
        routes=[
            Route("/healthz", _healthz, methods=["GET"]),
            Mount(f"/{QUERY_SERVICE}", app=connect),
            Mount("/", app=DashboardFiles(settings.static_dir)),
        ],
        middleware=middleware,
    )
    return WebApp(asgi, engine, connect, executor)
