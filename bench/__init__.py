"""Benchmarks: each prints its figures and, where DESIGN.md sets a target, the ratio against a same-run baseline."""
