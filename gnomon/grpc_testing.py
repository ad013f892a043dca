"""Helpers for tests and benchmarks that talk to a real Gnomon gRPC server over a local channel."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import grpc


def bearer(secret: str) -> tuple[tuple[str, str], ...]:
    """Call metadata carrying a key or token as `authorization: Bearer <secret>`."""
    return (("authorization", f"Bearer {secret}"),)


@contextmanager
def serving(server: grpc.Server, port: int) -> Iterator[grpc.Channel]:
    """Start `server` (bound to `port` on 127.0.0.1) and yield an insecure channel to it; on exit close the
    channel and stop the server at once (no grace), waiting up to 10 s for it to stop."""
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield channel
    finally:
        channel.close()
        server.stop(0).wait(10)
