"""The few Pulsar admin REST calls the event log needs, over urllib (no extra dependency): topics and
deduplication, plus tiered-storage offload of a topic partition (roll the ledger, offload, wait) for tools and tests.

Every call is blocking with a timeout and raises LogUnavailable when the broker cannot be reached or answers
with an unexpected status; the message says which call failed and what the broker said.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from gnomon.eventlog.port import LogUnavailable


@dataclass(frozen=True)
class OffloadResult:
    """What `PulsarAdmin.offload_partition` did to one topic partition."""

    topic: str  # "tenant/ns/name-partition-N"
    offloaded_ledgers: tuple[int, ...]  # every ledger of the partition now marked offloaded, oldest first
    retained_ledger: int  # the ledger the offload stopped before (the partition's current, open ledger)
    seconds: float


class PulsarAdmin:
    """A minimal client of the admin API v2 at `admin_url` (e.g. http://127.0.0.1:8080)."""

    def __init__(self, admin_url: str, timeout_s: float = 10.0) -> None:
        parsed = urllib.parse.urlparse(admin_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"Pulsar admin URL must be http(s)://host:port, got {admin_url!r}")
        self.admin_url = admin_url.rstrip("/")
        self.timeout_s = timeout_s

    def request(self, method: str, path: str, body: object = None) -> tuple[int, Any]:
        """Send one request; return (status, decoded JSON body or None); 4xx statuses are not raised.

        Raises LogUnavailable on connection errors, timeouts and 5xx statuses.
        """
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(  # noqa: S310 - the scheme is checked to be http(s) in __init__
            self.admin_url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:  # noqa: S310 - http(s) only
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        except (urllib.error.URLError, OSError) as exc:
            raise LogUnavailable(f"Pulsar admin {method} {self.admin_url}{path} failed: {exc}") from exc
        if status >= 500:
            raise LogUnavailable(f"Pulsar admin {method} {path}: HTTP {status} {raw[:300]!r}")
        try:
            decoded = json.loads(raw) if raw.strip() else None
        except ValueError:
            decoded = raw.decode(errors="replace")
        return status, decoded

    def _expect(self, what: str, status: int, body: Any, ok: tuple[int, ...]) -> None:
        if status not in ok:
            raise LogUnavailable(f"Pulsar admin: {what} answered HTTP {status}: {body!r}")

    def ensure_deduplication(self, namespace: str) -> None:
        """Make sure broker-side message deduplication is on for `namespace` ("tenant/name")."""
        path = f"/admin/v2/namespaces/{namespace}/deduplication"
        status, body = self.request("GET", path)
        if status == 404:
            raise LogUnavailable(f"Pulsar namespace {namespace!r} does not exist; start it with `gnomon engines up`")
        self._expect(f"reading deduplication of {namespace}", status, body, (200, 204))
        if body is True:
            return
        status, body = self.request("POST", path, True)
        self._expect(f"enabling deduplication on {namespace}", status, body, (200, 204))

    def partition_count(self, topic: str) -> int:
        """Partitions of `topic` ("tenant/ns/name", persistent); 0 if it is missing or not partitioned."""
        status, body = self.request("GET", f"/admin/v2/persistent/{topic}/partitions")
        if status == 404:
            return 0
        self._expect(f"reading partitions of {topic}", status, body, (200,))
        return int(body.get("partitions", 0)) if isinstance(body, dict) else 0

    def ensure_partitioned_topic(self, topic: str, partitions: int) -> int:
        """Create partitioned `topic` with `partitions` unless it exists; return its partition count.

        Raises LogUnavailable if the namespace is missing or the name is taken by a non-partitioned topic.
        """
        existing = self.partition_count(topic)
        if existing > 0:
            return existing
        status, body = self.request("PUT", f"/admin/v2/persistent/{topic}/partitions", partitions)
        if status == 404:
            namespace = topic.rsplit("/", 1)[0]
            raise LogUnavailable(f"Pulsar namespace {namespace!r} does not exist; start it with `gnomon engines up`")
        self._expect(f"creating partitioned topic {topic}", status, body, (200, 204, 409))
        existing = self.partition_count(topic)
        if existing < 1:
            raise LogUnavailable(
                f"Pulsar topic {topic!r} exists but is not partitioned (auto-created?); delete it, then retry"
            )
        return existing

    def partitioned_stats(self, topic: str) -> dict[str, Any]:
        """The aggregated stats of partitioned `topic` (backlog per subscription etc.)."""
        status, body = self.request("GET", f"/admin/v2/persistent/{topic}/partitioned-stats")
        self._expect(f"reading stats of {topic}", status, body, (200,))
        return body if isinstance(body, dict) else {}

    def delete_partitioned_topic(self, topic: str) -> None:
        """Delete partitioned `topic` and its data, even with clients attached (for tests and tools)."""
        status, body = self.request("DELETE", f"/admin/v2/persistent/{topic}/partitions?force=true")
        self._expect(f"deleting {topic}", status, body, (200, 204, 404))

    # ---- tiered storage (offload) ------------------------------------------------------------------------
    # `topic` below is one persistent topic as the admin API names it: "tenant/ns/name", or
    # "tenant/ns/name-partition-N" for one partition of a partitioned topic. The broker must have an offloader
    # configured (`gnomon engines up` configures the filesystem offloader); otherwise the offload calls fail.

    def internal_stats(self, topic: str) -> dict[str, Any]:
        """The managed-ledger view of `topic` (`ledgers`: [{ledgerId, entries, size, offloaded}, ...], oldest
        first, the last one being the open ledger). Loads the topic on the broker if it is not loaded."""
        status, body = self.request("GET", f"/admin/v2/persistent/{topic}/internalStats")
        self._expect(f"reading internal stats of {topic}", status, body, (200,))
        return body if isinstance(body, dict) else {}

    def managed_ledger_info(self, topic: str) -> dict[str, Any]:
        """The stored metadata of `topic`'s ledgers: `ledgerInfo` [{ledgerId, entries, size, offloadContext:
        {complete, bookkeeperDeleted, uidMsb, uidLsb, ...}}, ...]. `bookkeeperDeleted` tells that the bookie copy
        of an offloaded ledger is gone (only the offloaded copy is left)."""
        status, body = self.request("GET", f"/admin/v2/persistent/{topic}/internal-info")
        self._expect(f"reading managed-ledger info of {topic}", status, body, (200,))
        return body if isinstance(body, dict) else {}

    def unload_topic(self, topic: str) -> None:
        """Unload `topic` from its broker: its open ledger is closed, and the next use of the topic (a client
        reconnecting, any admin call that loads it) opens a new ledger. Connected clients reconnect by themselves.
        This is how a ledger is rolled over on demand, so that its entries can be offloaded."""
        status, body = self.request("PUT", f"/admin/v2/persistent/{topic}/unload")
        self._expect(f"unloading {topic}", status, body, (200, 204))

    def trigger_offload(self, topic: str, ledger_id: int, entry_id: int = 0) -> None:
        """Ask the broker to offload every closed ledger of `topic` that lies before (`ledger_id`, `entry_id`).

        Returns once the broker accepted the request (HTTP 204); the offload runs in the background (see
        `offload_status`). Raises LogUnavailable if it is refused, e.g. 409 while another offload of the topic
        runs, or no offloader is configured.
        """
        body = {"ledgerId": ledger_id, "entryId": entry_id, "partitionIndex": -1}
        status, answer = self.request("PUT", f"/admin/v2/persistent/{topic}/offload", body)
        self._expect(f"triggering the offload of {topic} before {ledger_id}:{entry_id}", status, answer, (200, 204))

    def offload_status(self, topic: str) -> dict[str, Any]:
        """The status of `topic`'s last offload: {"status": "NOT_RUN"|"RUNNING"|"SUCCESS"|"ERROR",
        "lastError": str, "firstUnoffloadedMessage": {ledgerId, entryId, ...}}."""
        status, body = self.request("GET", f"/admin/v2/persistent/{topic}/offload")
        self._expect(f"reading the offload status of {topic}", status, body, (200,))
        return body if isinstance(body, dict) else {}

    def trim_topic(self, topic: str) -> None:
        """Run the topic's ledger trimming now (it otherwise runs every retentionCheckIntervalInSeconds): this
        deletes ledgers beyond retention and the bookie copies of offloaded ledgers older than the deletion lag
        that no durable cursor (a subscription, the deduplication cursor) still points into."""
        status, body = self.request("POST", f"/admin/v2/persistent/{topic}/trim")
        self._expect(f"trimming {topic}", status, body, (200, 204))

    def offload_partition(self, topic: str, timeout_s: float = 60.0, poll_s: float = 0.2) -> OffloadResult:
        """Roll `topic`'s open ledger over and offload every closed ledger, then wait for the offload to finish.

        Blocking, for up to `timeout_s` in all: unloads the topic (closing its ledger), reloads it (a new, empty
        ledger opens), triggers the offload of all ledgers before that new one and polls `offload_status` every
        `poll_s` seconds. Returns the ledgers the broker then reports as offloaded. Raises LogUnavailable if the
        offload reports ERROR or does not end within `timeout_s`. Messages published while this runs land in
        the new ledger, which stays on the bookies. The bookie copies are deleted later (deletion lag, trim).
        """
        started = time.monotonic()
        deadline = started + timeout_s
        self.unload_topic(topic)
        ledgers = self.internal_stats(topic).get("ledgers") or []
        if not ledgers:
            raise LogUnavailable(f"Pulsar topic {topic} has no ledger after reloading it")
        retained = int(ledgers[-1]["ledgerId"])
        self.trigger_offload(topic, retained, 0)
        while True:
            report = self.offload_status(topic)
            state = report.get("status")
            if state == "SUCCESS":
                break
            if state == "ERROR":
                raise LogUnavailable(f"offloading {topic} failed: {report.get('lastError')!r}")
            if time.monotonic() > deadline:
                raise LogUnavailable(f"offloading {topic} did not finish within {timeout_s} s (last: {report!r})")
            time.sleep(poll_s)
        stats = self.internal_stats(topic).get("ledgers") or []
        offloaded = tuple(int(ls["ledgerId"]) for ls in stats if ls.get("offloaded"))
        return OffloadResult(topic, offloaded, retained, time.monotonic() - started)
