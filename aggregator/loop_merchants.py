"""Merchant look-ups for the aggregator loop: time zone and currency per merchant id, cached.

A merchant's zone and currency are fixed at creation, so known merchants are cached for the process's life.
An unknown id is remembered as unknown for `retry_s` seconds (then asked again), so a stream of events of a
deleted or mistyped merchant costs one control-store read per `retry_s`, not one per batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from gnomon.control import ControlStore


@dataclass(frozen=True)
class MerchantInfo:
    merchant_id: str
    zone: str
    currency: str


class MerchantDirectory:
    """Cached `ControlStore.get_merchant`. Not thread-safe (the loop thread only). Store errors propagate."""

    def __init__(
        self,
        control: ControlStore,
        *,
        retry_s: float = 60.0,
        max_entries: int = 1_000_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._control = control
        self._retry_s = retry_s
        self._max_entries = max_entries
        self._clock = clock
        self._known: dict[str, MerchantInfo] = {}
        self._unknown: dict[str, float] = {}  # merchant id -> when to ask again

    def lookup(self, merchant_ids: Iterable[str]) -> dict[str, MerchantInfo]:
        """The known merchants among `merchant_ids` (unknown ones are absent from the result)."""
        now = self._clock()
        out: dict[str, MerchantInfo] = {}
        for merchant_id in set(merchant_ids):
            info = self._known.get(merchant_id)
            if info is None:
                retry_at = self._unknown.get(merchant_id)
                if retry_at is not None and now < retry_at:
                    continue
                info = self._fetch(merchant_id, now)
            if info is not None:
                out[merchant_id] = info
        return out

    def _fetch(self, merchant_id: str, now: float) -> MerchantInfo | None:
        merchant = self._control.get_merchant(merchant_id)
        if len(self._known) + len(self._unknown) >= self._max_entries:
            self._known.clear()
            self._unknown.clear()
        if merchant is None:
            self._unknown[merchant_id] = now + self._retry_s
            return None
        self._unknown.pop(merchant_id, None)
        info = MerchantInfo(merchant.merchant_id, merchant.time_zone, merchant.currency)
        self._known[merchant_id] = info
        return info
