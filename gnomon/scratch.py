"""Scratch deployments on shared real engines (tests and benchmarks): dropping one when it is done.

A scratch deployment is a whole Gnomon region squeezed into engines other deployments also use: its own CQL
keyspace (and the `<keyspace>_history` twin a reprocess creates) and its own Pulsar topics, named with a
`topic_suffix` (`{namespace}/{stream}{suffix}` for every `Stream`).
"""

from __future__ import annotations

from dataclasses import replace

from gnomon.eventlog import Stream
from gnomon.settings import CommonSettings


def drop_scratch_deployment(common: CommonSettings, topic_suffix: str) -> None:
    """Drop the keyspace of `common.cql` and its `_history` twin (IF EXISTS) and the topics of every stream with
    `topic_suffix`. Tries every step; then raises the first failure (e.g. a topic that was never created).

    Refuses an empty suffix: those are the region's real topics, never a scratch deployment's."""
    if not topic_suffix:
        raise ValueError("drop_scratch_deployment needs the deployment's topic suffix (refusing the real topics)")
    from gnomon.eventlog.pulsar_admin import PulsarAdmin
    from gnomon.rollups.cql_engine import CqlEngine

    failures: list[Exception] = []
    for name in (common.cql.keyspace, f"{common.cql.keyspace}_history"):
        try:
            engine = CqlEngine(replace(common.cql, keyspace=name))
            try:
                engine.drop_keyspace()
            finally:
                engine.close()
        except Exception as exc:  # keep going: the other steps still free their resources
            failures.append(exc)
    admin = PulsarAdmin(common.pulsar.admin_url)
    for stream in Stream:
        try:
            admin.delete_partitioned_topic(f"{common.pulsar.namespace}/{stream.value}{topic_suffix}")
        except Exception as exc:
            failures.append(exc)
    if failures:
        raise failures[0]
