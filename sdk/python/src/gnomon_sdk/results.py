"""What the client reports: `Stats` counters and the outcome of `flush`/`close` (`FlushResult`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Stats:
    """Counters since the client started (events unless noted). `pending` is a gauge."""

    tracked: int = 0  # events `track` accepted
    sent: int = 0  # events in batches the collector answered (= accepted + duplicate + rejected)
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    failed: int = 0  # given up: non-retryable status, retries exhausted (no spool), dropped at close
    retries: int = 0  # Collect calls that failed with a retryable status and were retried
    batches: int = 0  # Collect calls answered
    spooled: int = 0  # events written to the spool (every tracked event when spool_dir is set)
    spilled: int = 0  # spooled events not kept in memory because the memory queue was full
    recovered: int = 0  # events found in the spool at start-up (resent first)
    pending: int = 0  # tracked or recovered and not yet settled (in memory, in flight or in the spool)


@dataclass(frozen=True)
class FlushResult:
    """What `flush`/`close` achieved for the events tracked before the call.

    complete: every one of them was acknowledged (accepted, duplicate, rejected) or given up (see `on_error`).
    pending: how many still wait for an acknowledgement. durable: those are fsync'd in the spool.
    timed_out: the timeout ended the wait.
    """

    complete: bool
    pending: int
    durable: bool
    timed_out: bool
