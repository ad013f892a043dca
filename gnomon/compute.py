"""Dask for Gnomon: an embedded LocalCluster, or a dask.distributed scheduler chosen in settings.

`dask_client(settings)` is the only way processes get a Dask client, so the embedded/distributed choice is made in
one place. LocalCluster workers are processes (not threads): aggregation is CPU-bound Python/NumPy work.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from distributed import Client, LocalCluster

from gnomon.settings import DaskSettings


@contextmanager
def dask_client(settings: DaskSettings) -> Iterator[Client]:
    """Yield a connected Client; close it (and the LocalCluster, if we made one) on exit.

    Blocks until the cluster has its workers (LocalCluster) or the scheduler answers (distributed; raises
    OSError/TimeoutError naming the address when unreachable).
    """
    if settings.scheduler_address:
        with Client(settings.scheduler_address, timeout=30) as client:  # type: ignore[no-untyped-call]
            yield client
        return
    with (
        LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=settings.local_workers,
            threads_per_worker=settings.threads_per_worker,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,  # type: ignore[no-untyped-call]
    ):
        client.wait_for_workers(settings.local_workers)
        yield client
