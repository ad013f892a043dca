"""A TTL + LRU cache of API-key lookups by secret, shared by every service that authenticates bearer keys.

A revocation reaches a service within the TTL (misses are cached too, so a flood of bad keys does not reach the
store). Keys are looked up by the SHA-256 of the secret, as the control store keeps them.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from gnomon.control.port import ApiKey, ControlStore, hash_secret


class KeyCache:
    """TTL + LRU cache in front of `ControlStore.lookup_secret`. Thread-safe.

    `lookup` blocks on the store on a miss and lets ControlUnavailable through.
    """

    def __init__(
        self,
        store: ControlStore,
        ttl_s: float,
        max_entries: int = 100_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._ttl = ttl_s
        self._max = max_entries
        self._now = monotonic
        self._entries: OrderedDict[bytes, tuple[float, ApiKey | None]] = OrderedDict()
        self._lock = threading.Lock()

    def lookup(self, secret: str) -> ApiKey | None:
        digest = hash_secret(secret)
        now = self._now()
        with self._lock:
            hit = self._entries.get(digest)
            if hit is not None and hit[0] > now:
                self._entries.move_to_end(digest)
                return hit[1]
        key = self._store.lookup_secret(secret)
        if self._ttl > 0:
            with self._lock:
                self._entries[digest] = (now + self._ttl, key)
                self._entries.move_to_end(digest)
                while len(self._entries) > self._max:
                    self._entries.popitem(last=False)
        return key
