"""A bounded budget of in-flight publishes (messages and bytes), shared by the adapters."""

from __future__ import annotations

import threading

from gnomon.eventlog.port import LogBackpressure


class InFlightBudget:
    """Counts messages and payload bytes published but not yet settled (durable or failed).

    `acquire` never blocks: it raises LogBackpressure when the budget would be exceeded. A single message
    larger than `max_bytes` is still admitted when nothing else is in flight, so it cannot be starved.
    Thread-safe.
    """

    def __init__(self, max_messages: int, max_bytes: int) -> None:
        if max_messages < 1 or max_bytes < 1:
            raise ValueError(f"in-flight limits must be >= 1, got {max_messages} messages / {max_bytes} bytes")
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self._messages = 0
        self._bytes = 0
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)

    def acquire(self, messages: int, nbytes: int) -> None:
        """Reserve room for `messages` messages of `nbytes` bytes in total, or raise LogBackpressure."""
        with self._lock:
            too_many = self._messages + messages > self.max_messages
            too_big = self._bytes + nbytes > self.max_bytes and self._messages > 0
            if too_many or too_big:
                raise LogBackpressure(
                    f"{self._messages} messages / {self._bytes} bytes already in flight "
                    f"(limits {self.max_messages} / {self.max_bytes}); retry after backing off"
                )
            self._messages += messages
            self._bytes += nbytes

    def release(self, messages: int, nbytes: int) -> None:
        """Give back what `acquire` reserved, once the messages are settled."""
        with self._lock:
            self._messages -= messages
            self._bytes -= nbytes
            if self._messages <= 0:
                self._idle.notify_all()

    @property
    def in_flight(self) -> int:
        """Messages currently in flight."""
        with self._lock:
            return self._messages

    def wait_idle(self, timeout_s: float | None = None) -> bool:
        """Blocking: wait until nothing is in flight; False if `timeout_s` passed first."""
        with self._idle:
            return self._idle.wait_for(lambda: self._messages <= 0, timeout_s)
