"""Where the loop's day jobs run: Dask (production) or inline (unit tests, tools).

Affinity: each merchant has a preferred Dask worker (a hash of its id over the sorted worker addresses), so the
worker that recomputed a merchant-day last time usually gets it again and finds it in its `loop_cache.DayCache`.
The preference is loose (`allow_other_workers=True`): the scheduler may still move a task to an idle worker.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, Protocol

from aggregator.loop_tasks import DayJob, Resources, TaskContext, TaskOutcome, process_jobs

Group = tuple[Sequence[DayJob], str | None]  # jobs of one task, preferred worker


class TaskRunner(Protocol):
    """Runs groups of day jobs, one task per group; returns their outcomes in order (raises on failure)."""

    def workers(self) -> dict[str, int]:
        """Worker id -> threads (task slots)."""
        ...

    def run(self, context: TaskContext, groups: Sequence[Group]) -> list[TaskOutcome]: ...


def preferred_worker(merchant_id: str, workers: Sequence[str]) -> str:
    """The worker a merchant's days go to by default (stable while the set of workers is). A cryptographic hash,
    not CRC-32: the log's partitions are CRC-32 of the merchant, and a cycle often holds the records of a few
    partitions only; a correlated hash would send all of them to the same worker."""
    digest = hashlib.blake2b(merchant_id.encode("utf-8"), digest_size=8).digest()
    return workers[int.from_bytes(digest, "little") % len(workers)]


class DaskRunner:
    """One Dask task per group (`loop_tasks.run_task`); workers open their own stores from the settings.

    `run` waits at most `timeout_s` for the tasks (then cancels them and raises TimeoutError, and the loop
    retries the cycle): a cluster that lost its workers must not block the loop, and a stop, forever.
    """

    def __init__(self, client: Any, *, timeout_s: float = 600.0) -> None:
        self._client = client
        self._timeout_s = timeout_s

    def workers(self) -> dict[str, int]:
        threads: dict[str, int] = {str(k): int(v) for k, v in self._client.nthreads().items()}
        return threads or {"": 1}

    def run(self, context: TaskContext, groups: Sequence[Group]) -> list[TaskOutcome]:
        from aggregator.loop_tasks import run_task

        futures = []
        for jobs, worker in groups:
            targets = [worker] if worker else None
            # The jobs carry the cycle's new rows (megabytes): send them straight to the worker, not through the
            # scheduler inside the task graph.
            [data] = self._client.scatter([list(jobs)], workers=targets, direct=True, hash=False)
            futures.append(
                self._client.submit(run_task, context, data, pure=False, workers=targets, allow_other_workers=True)
            )
        from distributed import wait

        try:
            wait(futures, timeout=self._timeout_s)  # type: ignore[no-untyped-call]
        except TimeoutError:
            self._client.cancel(futures)
            raise TimeoutError(f"Dask tasks unfinished after {self._timeout_s} s (workers lost?)") from None
        outcomes: list[TaskOutcome] = self._client.gather(futures)
        return outcomes


class InlineRunner:
    """Runs the groups in this thread with given resources (unit tests, tools; not for production)."""

    def __init__(self, resources: Resources) -> None:
        self.resources = resources

    def workers(self) -> dict[str, int]:
        return {"inline": 1}

    def run(self, context: TaskContext, groups: Sequence[Group]) -> list[TaskOutcome]:
        return [process_jobs(self.resources, context, jobs) for jobs, _ in groups]
