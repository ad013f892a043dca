"""The Rust decode of LoggedBatch payloads (`gnomon_fastpath.decode_logged`) as an event frame.

`decode_columns(payloads, with_event_bytes=...)` gives the frame `aggregator.decode.decode_batches` documents, built
from Arrow buffers the extension fills (no Python object per field), or None when the extension is not
installed or does not decide one of the payloads: the caller then decodes them with upb, which names any
problem. Differences from the upb path, by contract: `EVENT_BYTES` holds each event's bytes as logged, which
equal upb's re-serialization up to the order of fields and map entries (both parse to the same message).

Pure and thread-safe; the extension releases the GIL while it parses.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from functools import cache
from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

from aggregator.frame import (
    CLIENT_ID,
    CURRENCY,
    EVENT_BYTES,
    EVENT_ID,
    EVENT_TIME_US,
    IP,
    LOCALE,
    MERCHANT_ID,
    NAME,
    PAGE_PATH,
    PAGE_TITLE,
    PAGE_URL,
    RAW_COLUMNS,
    RECEIVED_TIME_US,
    REFERRER,
    REVENUE_MICROS,
    USER_AGENT,
    USER_ID,
    UTM_CAMPAIGN,
    UTM_MEDIUM,
    UTM_SOURCE,
)
from aggregator.page_paths import fill_page_paths

MODULE: Final = "gnomon_fastpath"
STRING_COLUMNS: Final = (
    MERCHANT_ID, EVENT_ID, NAME, CLIENT_ID, USER_ID, PAGE_URL, PAGE_PATH, PAGE_TITLE, REFERRER, USER_AGENT, IP,
    LOCALE, UTM_SOURCE, UTM_MEDIUM, UTM_CAMPAIGN, CURRENCY,
)  # fmt: skip
"""The extension's string columns, in its order (collector_svc/fastpath/src/logged.rs)."""


@cache
def native_decoder() -> Any | None:
    """`gnomon_fastpath.decode_logged`, or None when the extension is not importable."""
    try:
        return importlib.import_module(MODULE).decode_logged
    except (ImportError, AttributeError):
        return None


def decode_columns(payloads: Sequence[bytes], *, with_event_bytes: bool) -> pd.DataFrame | None:
    """The frame of `payloads` (with EVENT_BYTES when asked for), or None (see the module docstring)."""
    decode = native_decoder()
    answer = None if decode is None else decode(list(payloads), with_event_bytes)
    if answer is None:
        return None
    n, strings, event_time, received, revenue, event_bytes = answer
    arrays = {
        name: pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))
        for name, (data, offsets) in zip(STRING_COLUMNS, strings, strict=True)
    }
    arrays[PAGE_PATH] = _filled_paths(arrays[PAGE_PATH], arrays[PAGE_URL])
    ints = {EVENT_TIME_US: event_time, RECEIVED_TIME_US: received, REVENUE_MICROS: revenue}
    data: dict[str, Any] = {}
    for name in RAW_COLUMNS:
        if name in ints:
            data[name] = np.frombuffer(ints[name], dtype="<i8").astype(np.int64)
        else:
            data[name] = pd.array(arrays[name], dtype="str")
    if with_event_bytes:
        data[EVENT_BYTES] = np.empty(n, dtype=object)
        data[EVENT_BYTES][:] = event_bytes
    return pd.DataFrame(data, copy=False)


def _filled_paths(paths: Any, urls: Any) -> Any:
    """`paths` with each "" replaced by the path of its row's URL (`page_paths`; Python work only for those
    rows' distinct URLs)."""
    empty = pc.equal(paths, "")
    if not pc.any(empty).as_py():
        return paths
    rows = np.flatnonzero(empty.to_numpy(zero_copy_only=False))
    urls_of_rows = pc.take(urls, pa.array(rows)).to_pylist()
    filled = fill_page_paths([""] * len(urls_of_rows), urls_of_rows)
    return pc.replace_with_mask(paths, empty, pa.array(filled, type=pa.large_string()))
