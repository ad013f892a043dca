"""Real engines on one machine: Apache Pulsar standalone and Apache Cassandra, run from Maven Central jars.

`gnomon engines up|down|status|logs` is the user-facing command (gnomon.cli.engines_cmd); this package knows how
to resolve the jars (jars), pick a JDK (java), render configs and command lines (specs), manage processes
(processes) and wait for readiness (readiness).
"""
