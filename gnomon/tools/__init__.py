"""Developer tools run through `make` (code generation and checks)."""
