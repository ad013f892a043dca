"""Load generator process: grpc.aio unary Collect calls with pre-serialized batches, bounded concurrency.

Requests go out as raw bytes and responses come back as raw bytes (no client-side protobuf work beyond
checking that every event was acknowledged), so the client costs as little CPU as possible on a 2-core machine.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import grpc

from bench.batches import BatchFactory
from gnomon.v1 import collector_pb2

COLLECT = "/gnomon.v1.CollectorService/Collect"


@dataclass(frozen=True)
class LoadResult:
    events_acked: int
    batches: int
    errors: dict[str, int]
    latencies_ms: list[float]
    seconds: float


async def _run(
    target: str, write_key: str, batch_size: int, concurrency: int, seconds: float, prefix: str
) -> LoadResult:
    factory = BatchFactory(batch_size, prefix)
    metadata = (("authorization", f"Bearer {write_key}"),)
    latencies: list[float] = []
    errors: dict[str, int] = {}
    acked = 0
    batches = 0
    async with grpc.aio.insecure_channel(target, options=[("grpc.max_send_message_length", 8 << 20)]) as channel:
        call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
            COLLECT, request_serializer=None, response_deserializer=None
        )
        await channel.channel_ready()
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal acked, batches
            while time.perf_counter() < deadline:
                payload = factory.next()
                began = time.perf_counter()
                try:
                    raw = await call(payload, metadata=metadata, timeout=30)
                except grpc.aio.AioRpcError as err:
                    errors[err.code().name] = errors.get(err.code().name, 0) + 1
                    await asyncio.sleep(0.01)
                    continue
                latencies.append((time.perf_counter() - began) * 1000)
                response = collector_pb2.CollectResponse.FromString(raw)
                acked += response.accepted
                batches += 1
                if response.accepted != batch_size:
                    errors["NOT_ALL_ACCEPTED"] = errors.get("NOT_ALL_ACCEPTED", 0) + 1

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    return LoadResult(acked, batches, errors, latencies, elapsed)


def run_load(target: str, write_key: str, batch_size: int, concurrency: int, seconds: float, prefix: str) -> LoadResult:
    """Blocking entry point for a worker process."""
    return asyncio.run(_run(target, write_key, batch_size, concurrency, seconds, prefix))
