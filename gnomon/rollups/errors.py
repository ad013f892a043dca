"""Errors raised on purpose by the rollup store and the processing-version registry."""

from __future__ import annotations


class RollupError(Exception):
    """Base class of every error a RollupStore or VersionRegistry raises on purpose."""


class RollupInvalid(RollupError, ValueError):
    """An argument is malformed; the message names it and says what is accepted."""


class RollupUnavailable(RollupError):
    """The engine cannot be reached, timed out or failed; retrying later may succeed.

    After a failed `write`/`replace_window` some rows may have been applied: retrying the same call converges,
    because every write is an idempotent overwrite.
    """


class MigrationError(RollupError):
    """The CQL schema cannot be brought up to date (a changed applied migration, a malformed file)."""
