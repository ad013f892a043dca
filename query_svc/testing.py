"""Helpers for tests and benchmarks of the query service: a running server, rollup rows to write."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import grpc

from gnomon.grpc_testing import bearer, serving
from gnomon.rollups import Grain, Metrics, RollupKey, RollupRow, sketch_of
from gnomon.v1 import query_pb2_grpc
from query_svc.server import QueryDeps, QueryServer, create_server
from query_svc.settings import QuerySettings

__all__ = ["COMPUTED_AT", "RunningQuery", "bearer", "rollup_row", "running_query_server"]

COMPUTED_AT = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class RunningQuery:
    server: QueryServer
    port: int
    channel: grpc.Channel
    stub: query_pb2_grpc.QueryServiceStub


@contextmanager
def running_query_server(settings: QuerySettings, deps: QueryDeps) -> Iterator[RunningQuery]:
    """Start a query server; on exit close the channel and stop the server at once (no grace)."""
    server, port = create_server(settings, deps)
    with serving(server, port) as channel:
        yield RunningQuery(server, port, channel, query_pb2_grpc.QueryServiceStub(channel))


def rollup_row(
    merchant_id: str,
    cube: str,
    grain: Grain,
    window_start: datetime,
    dims: tuple[str, ...] = (),
    *,
    users: Iterable[str] = (),
    new_users: Iterable[str] = (),
    version: int = 1,
    provisional: bool = False,
    events: int = 0,
    pageviews: int = 0,
    sessions: int = 0,
    engaged_sessions: int = 0,
    bounces: int = 0,
    session_duration_ms: int = 0,
    revenue_micros: int = 0,
    key_events: int = 0,
    computed_at: datetime = COMPUTED_AT,
) -> RollupRow:
    """One rollup row with sketches built from explicit user ids."""
    return RollupRow(
        RollupKey(merchant_id, cube, grain, window_start, dims, version),
        Metrics(
            events=events,
            pageviews=pageviews,
            sessions=sessions,
            engaged_sessions=engaged_sessions,
            bounces=bounces,
            session_duration_ms=session_duration_ms,
            revenue_micros=revenue_micros,
            key_events=key_events,
            users=sketch_of(users),
            new_users=sketch_of(new_users),
        ),
        provisional,
        computed_at,
    )
