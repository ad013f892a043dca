"""Gnomon fast paths (Rust): the collector's screen of a serialized gnomon.v1.EventBatch, which re-encodes its
events, the aggregator's decode of LoggedBatch payloads into columns (`decode_logged`), and its HLL sketch
images (`hll_images`, aggregator.hll.build_sketches).

`Screen.scan` answers None when it does not decide the batch (unparseable by its strict reader, empty, too
many events, too large): the caller runs the pure-Python path, which parses with upb and names the problem.
Otherwise a `Scanned`, whose `flagged` events must be judged by the Python steps (collector_svc.validation).
"""

from collections.abc import Sequence
from typing import Any, TypeAlias, final

_Buffer: TypeAlias = Any  # an object with the buffer protocol (a NumPy array, memoryview, array.array, ...)

@final
class Screen:
    def __init__(
        self,
        *,
        max_events: int,
        max_bytes: int,
        max_event_id: int,
        max_name: int,
        max_other: int,
        max_user_agent: int,
        max_url: int,
        max_title: int,
        max_params: int,
        max_param_value: int,
    ) -> None: ...
    def scan(self, batch: bytes, oldest_s: int, newest_s: int) -> Scanned | None:
        """Screen one serialized EventBatch (event_time.seconds accepted in [oldest_s, newest_s])."""

@final
class Scanned:
    @property
    def batch_id(self) -> str: ...
    @property
    def event_ids(self) -> list[str]:
        """Every event_id in batch order (also of invalid events)."""
    @property
    def flagged(self) -> list[int]:
        """Ascending indexes of the events to judge in Python: invalid, or not decided by the fast path."""
    @property
    def empty_ip(self) -> bool:
        """Some event has no ip: the connection's truncated address is needed (`fallback_ip`)."""
    @property
    def dup_ids(self) -> bool:
        """Some event_id occurs more than once in the batch."""
    def __len__(self) -> int: ...
    def event_bytes(self, index: int) -> bytes:
        """Event `index` as received (full ip included): for parsing a flagged event, never for storing."""
    def logged_batch(self, header: bytes, drop: Sequence[int], ips: dict[int, str], fallback_ip: str) -> bytes:
        """`header` + every event not in `drop` as LoggedBatch.events entries, re-encoded as upb does.

        The ip written: `ips[i]` if given (required for a kept flagged event), else the event's own ip
        truncated to /24 or /48, else (none sent) `fallback_ip`. Raises ValueError / IndexError on misuse.
        """
    def truncated_ip(self, index: int) -> str | None:
        """The ip event `index` gets without an override: its network, "" (none sent), None (flagged)."""

def truncate_ip(text: str) -> str | None:
    """Same as collector_svc.iptrunc.truncate_ip."""

def decode_logged(
    payloads: Sequence[bytes], with_event_bytes: bool
) -> tuple[int, list[tuple[bytes, bytes]], bytes, bytes, bytes, list[bytes] | None] | None:
    """(n, strings, event_time_us, received_time_us, revenue_micros, event_bytes) of the payloads, or None when
    the upb path must decode them. `strings`: one (UTF-8 data, n + 1 little-endian int64 offsets) pair per string
    column in aggregator.decode_fast.STRING_COLUMNS order; the int columns: n little-endian int64 each;
    `event_bytes`: each event as logged, None unless asked for."""

def hll_images(
    group_codes: _Buffer, codes: _Buffer, values: _Buffer, n_groups: int, lg_k: int, tgt_type: int
) -> list[bytes] | None:
    """One compact DataSketches HLL image per group 0..n_groups-1, byte-identical to
    aggregator.hll.build_sketches_numpy: item i (group `group_codes[i]`) is the coupon `values[codes[i]]`, or
    ignored when `codes[i]` < 0. `group_codes`, `codes`: 1-d int64 buffers; `values`: 1-d uint32 buffer;
    `tgt_type`: 0, 1, 2 = HLL_4, HLL_6, HLL_8. None when `values` is not strictly ascending and nonzero (the
    caller builds with NumPy). Raises ValueError as build_sketches does (lg_k outside 4..21, lengths, group
    codes outside 0..n_groups-1, codes outside `values`), BufferError for buffers of another type."""
