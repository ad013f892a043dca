"""The few Pulsar admin REST calls the event log needs, over urllib (no extra dependency).

Every call is blocking with a timeout and raises LogUnavailable when the broker cannot be reached or answers
with an unexpected status; the message says which call failed and what the broker said.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from gnomon.eventlog.port import LogUnavailable


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
