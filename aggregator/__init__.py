"""Aggregator: windowing, derivation, sessionization, rollups and reprocessing over the event log."""
