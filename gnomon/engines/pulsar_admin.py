"""Gnomon's namespace on a Pulsar cluster: tenant, namespace, infinite retention, broker deduplication.

Built on the event log's minimal admin client; every call is idempotent (409 Conflict = already there) and
failures raise EngineError naming the call.
"""

from __future__ import annotations

from gnomon.engines.errors import EngineError
from gnomon.eventlog.port import LogUnavailable
from gnomon.eventlog.pulsar_admin import PulsarAdmin


def admin_call(admin_url: str, method: str, path: str, body: object | None = None) -> int:
    """One admin request; returns the HTTP status (2xx or 409). Blocks up to 30 s."""
    try:
        status, answer = PulsarAdmin(admin_url, timeout_s=30).request(method, path, body)
    except LogUnavailable as err:
        raise EngineError(str(err)) from err
    if status >= 300 and status != 409:
        raise EngineError(f"Pulsar admin {method} {path} failed: HTTP {status} {str(answer)[:300]}")
    return status


def ensure_namespace(admin_url: str, tenant: str, namespace: str, cluster: str = "standalone") -> None:
    """Create ``tenant`` and ``namespace`` ("tenant/name") with infinite retention and broker deduplication."""
    admin_call(admin_url, "PUT", f"/admin/v2/tenants/{tenant}", {"adminRoles": [], "allowedClusters": [cluster]})
    admin_call(admin_url, "PUT", f"/admin/v2/namespaces/{namespace}")
    retention = {"retentionTimeInMinutes": -1, "retentionSizeInMB": -1}
    admin_call(admin_url, "POST", f"/admin/v2/namespaces/{namespace}/retention", retention)
    admin_call(admin_url, "POST", f"/admin/v2/namespaces/{namespace}/deduplication", True)
