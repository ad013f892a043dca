"""The few Pulsar admin REST calls Gnomon needs: tenant, namespace with infinite retention and deduplication.

Every call is idempotent (409 Conflict = already there). Raises EngineError naming the call on other failures.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from gnomon.engines.errors import EngineError


def admin_call(admin_url: str, method: str, path: str, body: object | None = None) -> int:
    """One admin request; returns the HTTP status (2xx or 409). Blocks up to 30 s."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310 - admin URL comes from settings
        f"{admin_url.rstrip('/')}{path}", data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310
            return int(resp.status)
    except urllib.error.HTTPError as err:
        if err.code == 409:
            return 409
        detail = err.read().decode(errors="replace")[:300]
        raise EngineError(f"Pulsar admin {method} {path} failed: HTTP {err.code} {detail}") from err
    except (urllib.error.URLError, OSError) as err:
        raise EngineError(f"Pulsar admin {method} {path} unreachable at {admin_url}: {err}") from err


def ensure_namespace(admin_url: str, tenant: str, namespace: str, cluster: str = "standalone") -> None:
    """Create ``tenant`` and ``namespace`` ("tenant/name") with infinite retention and broker deduplication."""
    admin_call(admin_url, "PUT", f"/admin/v2/tenants/{tenant}", {"adminRoles": [], "allowedClusters": [cluster]})
    admin_call(admin_url, "PUT", f"/admin/v2/namespaces/{namespace}")
    admin_call(
        admin_url,
        "POST",
        f"/admin/v2/namespaces/{namespace}/retention",
        {"retentionTimeInMinutes": -1, "retentionSizeInMB": -1},
    )
    admin_call(admin_url, "POST", f"/admin/v2/namespaces/{namespace}/deduplication", True)


def get_json(admin_url: str, path: str) -> object:
    """GET an admin path and decode its JSON body."""
    try:
        with urllib.request.urlopen(f"{admin_url.rstrip('/')}{path}", timeout=30) as resp:  # noqa: S310
            return json.loads(resp.read() or b"null")
    except (urllib.error.URLError, OSError, ValueError) as err:
        raise EngineError(f"Pulsar admin GET {path} failed: {err}") from err
