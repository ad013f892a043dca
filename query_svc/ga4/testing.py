"""Helpers for tests: a query server serving BetaAnalyticsData too, and the official GA4 client over it.

`running_ga4_server` builds the server with `create_server` (which serves BetaAnalyticsData beside
gnomon.v1.QueryService on the same port) and returns the official client wired to it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import grpc
from google.analytics.data_v1beta import BetaAnalyticsDataClient
from google.analytics.data_v1beta.services.beta_analytics_data.transports import BetaAnalyticsDataGrpcTransport

from gnomon.v1 import query_pb2_grpc
from query_svc.server import QueryDeps, QueryServer, create_server
from query_svc.settings import QuerySettings


class _Details(NamedTuple):
    method: str
    timeout: float | None
    metadata: Any
    credentials: grpc.CallCredentials | None
    wait_for_ready: bool | None
    compression: grpc.Compression | None


class _CallDetails(_Details, grpc.ClientCallDetails):
    pass


class BearerInterceptor(grpc.UnaryUnaryClientInterceptor):
    """Adds `authorization: Bearer <token>` to every unary call (what a GA4 client's credentials would add)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def intercept_unary_unary(
        self, continuation: Callable[[grpc.ClientCallDetails, Any], Any], details: grpc.ClientCallDetails, request: Any
    ) -> Any:
        metadata = [*(details.metadata or ()), ("authorization", f"Bearer {self._token}")]
        new = _CallDetails(
            details.method,
            details.timeout,
            metadata,
            details.credentials,
            details.wait_for_ready,
            details.compression,
        )
        return continuation(new, request)


@dataclass
class RunningGa4:
    server: QueryServer
    port: int
    channel: grpc.Channel
    stub: query_pb2_grpc.QueryServiceStub
    _channels: list[grpc.Channel] = field(default_factory=list)

    def client(self, token: str | None) -> BetaAnalyticsDataClient:
        """The official GA4 client, unchanged, over a channel that sends `token` (None: no token)."""
        channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        self._channels.append(channel)
        if token is not None:
            channel = grpc.intercept_channel(channel, BearerInterceptor(token))
        return BetaAnalyticsDataClient(transport=BetaAnalyticsDataGrpcTransport(channel=channel))


@contextmanager
def running_ga4_server(settings: QuerySettings, deps: QueryDeps) -> Iterator[RunningGa4]:
    """Start a query server with the GA4 service; on exit close the channels and stop the server at once."""
    server, port = create_server(settings, deps)
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    running = RunningGa4(server, port, channel, query_pb2_grpc.QueryServiceStub(channel))
    try:
        yield running
    finally:
        for extra in running._channels:
            extra.close()
        channel.close()
        server.stop(0).wait(10)
