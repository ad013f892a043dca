"""Is an engine ready to serve? Pulsar: its admin API answers `ok` to the broker health check.
Cassandra: a CQL query succeeds through scylla-driver. Each probe is one quick attempt, never raising.
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.request

from gnomon.engines.layout import EngineLayout
from gnomon.engines.processes import port_open


def pulsar_ready(layout: EngineLayout) -> bool:
    url = f"http://{layout.host}:{layout.pulsar_http_port}/admin/v2/brokers/health"
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return bool(resp.status == 200 and resp.read().strip() == b"ok")
    except (urllib.error.URLError, OSError, ValueError):
        return False


def cassandra_ready(layout: EngineLayout) -> bool:
    if not port_open(layout.host, layout.cql_port):
        return False
    from cassandra.cluster import Cluster  # imported lazily: slow import, only needed here

    logging.getLogger("cassandra").setLevel(logging.CRITICAL)
    cluster = Cluster([layout.host], port=layout.cql_port, connect_timeout=5, control_connection_timeout=5)
    try:
        session = cluster.connect()
        row = session.execute("SELECT release_version FROM system.local", timeout=5).one()
        return row is not None
    except Exception:  # the driver raises many types while the node is still starting
        return False
    finally:
        cluster.shutdown()


def ready(layout: EngineLayout, engine: str) -> bool:
    return pulsar_ready(layout) if engine == "pulsar" else cassandra_ready(layout)
