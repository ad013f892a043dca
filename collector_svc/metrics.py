"""The collector's OpenTelemetry instruments. Counted per batch (one `add` per outcome), never per event."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from collector_svc.validation import BatchProblem, Rejection
from gnomon.telemetry import Telemetry
from gnomon.v1 import collector_pb2 as cpb

METER_NAME = "gnomon.collector"


class CollectorMetrics:
    """Events accepted / duplicate / rejected{reason}, batches failed{code, problem}, ack latency."""

    def __init__(self, telemetry: Telemetry) -> None:
        meter = telemetry.meter(METER_NAME)
        self._accepted = meter.create_counter(
            "gnomon.collector.events.accepted", unit="{event}", description="events durably logged"
        )
        self._duplicate = meter.create_counter(
            "gnomon.collector.events.duplicate",
            unit="{event}",
            description="events answered DUPLICATE (recently accepted by this collector)",
        )
        self._rejected = meter.create_counter(
            "gnomon.collector.events.rejected",
            unit="{event}",
            description="events rejected, by RejectReason (kept in the bad-events log)",
        )
        self._batches_failed = meter.create_counter(
            "gnomon.collector.batches.failed",
            unit="{batch}",
            description="collect calls answered with an error status, by gRPC code or batch problem",
        )
        self._ack_latency = meter.create_histogram(
            "gnomon.collector.ack.latency",
            unit="s",
            description="from receiving a batch to answering it (after the log made it durable)",
        )

    def batch_done(self, accepted: int, duplicates: int, rejections: Iterable[Rejection], seconds: float) -> None:
        if accepted:
            self._accepted.add(accepted)
        if duplicates:
            self._duplicate.add(duplicates)
        for reason, count in Counter(r.reason for r in rejections).items():
            self._rejected.add(count, {"reason": cpb.RejectReason.Name(reason)})
        self._ack_latency.record(seconds)

    def batch_refused(self, code: str, problem: BatchProblem | None = None) -> None:
        attributes = {"code": code}
        if problem is not None:
            attributes["problem"] = problem.value
        self._batches_failed.add(1, attributes)
