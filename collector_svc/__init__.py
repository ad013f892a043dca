"""Ingestion service: authenticates, validates, stamps and durably logs merchants' event batches.

Entry point: `collector_svc.server.create_server(settings, deps)`.
"""
