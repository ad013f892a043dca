"""Gnomon SDK: send analytics events to Gnomon collectors over gRPC.

    from gnomon_sdk import Client
    with Client("wk_...", ["collector.example:50051"], spool_dir="/var/spool/gnomon") as gnomon:
        gnomon.page("https://shop.example/", client_id="1234.5678", title="Home")
        gnomon.track("purchase", client_id="1234.5678", revenue=Decimal("12.34"), currency="EUR")

See `gnomon_sdk.client` for batching, retries and the durability guarantees, `gnomon_sdk.testing` for an
in-process fake collector.
"""

from gnomon_sdk._event import EventFields, new_event_id
from gnomon_sdk.client import Client
from gnomon_sdk.errors import (
    ClientClosed,
    DeliveryError,
    ErrorKind,
    GnomonError,
    QueueFull,
    SpoolFull,
    SpoolLocked,
)
from gnomon_sdk.results import FlushResult, Stats
from gnomon_sdk.spool import read_records

__version__ = "0.1.0"

__all__ = [
    "Client",
    "ClientClosed",
    "DeliveryError",
    "ErrorKind",
    "EventFields",
    "FlushResult",
    "GnomonError",
    "QueueFull",
    "SpoolFull",
    "SpoolLocked",
    "Stats",
    "__version__",
    "new_event_id",
    "read_records",
]
