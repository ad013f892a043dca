"""The baseline: a gRPC server with the same CollectorService proto that accepts everything and stores nothing.

It parses each EventBatch (as every gRPC Python server does) and answers one ACCEPTED status per event, so the
ratio collector / no-op shows what validation, stamping and the durable log cost on top of gRPC itself.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc

from gnomon.v1 import collector_pb2, collector_pb2_grpc

ACCEPTED = collector_pb2.EVENT_STATUS_ACCEPTED


class NoopCollector(collector_pb2_grpc.CollectorServiceServicer):
    def Collect(
        self, request: collector_pb2.EventBatch, context: grpc.ServicerContext
    ) -> collector_pb2.CollectResponse:
        n = len(request.events)
        return collector_pb2.CollectResponse(batch_id=request.batch_id, statuses=[ACCEPTED] * n, accepted=n)

    def CollectStream(
        self, request_iterator: Iterator[collector_pb2.EventBatch], context: grpc.ServicerContext
    ) -> Iterator[collector_pb2.CollectResponse]:
        for request in request_iterator:
            yield self.Collect(request, context)


def serve(port_file: Path) -> None:
    """Serve on 127.0.0.1 (any free port, written to ``port_file``) until terminated."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=16),
        options=[("grpc.max_receive_message_length", 8 << 20)],
    )
    collector_pb2_grpc.add_CollectorServiceServicer_to_server(NoopCollector(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    port_file.write_text(str(port))
    server.wait_for_termination()


if __name__ == "__main__":
    serve(Path(sys.argv[1]))
