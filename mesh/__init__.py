"""Mesh: process orchestration (`gnomon up`), health checks, and later regions and routing."""
