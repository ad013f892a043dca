"""A small CQL schema migrator: numbered `.cql` files under version control, applied once each, in order.

Files are named `NNNN_name.cql` (NNNN = 0001, 0002, ... without gaps) and hold `;`-terminated statements,
comments allowed (`--`, `//`, `/* */`). Applied migrations are recorded in the keyspace's `schema_migrations`
table, keyed by (component, migration_id) so other components can share the table, with the file's sha256:

- applying is idempotent: recorded migrations are skipped, so a second run applies nothing;
- a recorded migration whose file changed raises MigrationError (never edit an applied migration: add one);
- a recorded migration unknown to this code (a newer Gnomon applied it; rolling upgrade) is tolerated;
- DDL uses IF NOT EXISTS, so a migration interrupted after some statements is simply re-run whole; an
  `ALTER TABLE t ADD c type` (which not every CQL server accepts with IF NOT EXISTS) is skipped when the
  keyspace's table already has column `c`, and its "already exists" error is ignored (another process added
  the column between the check and the statement).

The keyspace itself is environment-specific (datacenter, replication factor) and is created here in code with
NetworkTopologyStrategy, not in a migration file. Every call blocks; driver errors propagate to the caller.
Concurrent first-time start-ups are tolerated by IF NOT EXISTS, but deployments should migrate from one
process before starting the others (Scylla/Cassandra dislike concurrent schema changes).
"""

from __future__ import annotations

import hashlib
import importlib.resources
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from cassandra import InvalidRequest

from gnomon.rollups.errors import MigrationError

COMPONENT = "rollups"
FILE_RE = re.compile(r"(\d{4})_([a-z0-9_]+)\.cql")
KEYSPACE_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,47}")
DATACENTER_RE = re.compile(r"[A-Za-z0-9_.-]{1,100}")
DDL_TIMEOUT_S = 60.0
ADD_COLUMN_RE = re.compile(r"ALTER\s+TABLE\s+(\w+)\s+ADD\s+(\w+)\s+\w+", re.IGNORECASE)

MIGRATIONS_TABLE = """CREATE TABLE IF NOT EXISTS schema_migrations (
    component text,
    migration_id int,
    name text,
    checksum text,
    applied_at timestamp,
    PRIMARY KEY ((component), migration_id)
)"""


@dataclass(frozen=True)
class Migration:
    number: int
    name: str  # the file name
    statements: tuple[str, ...]
    checksum: str  # sha256 hex of the file's bytes


def default_directory() -> Traversable:
    """The migrations shipped with this package (`gnomon/rollups/migrations`)."""
    return importlib.resources.files("gnomon.rollups").joinpath("migrations")


def split_statements(text: str) -> list[str]:
    """The `;`-separated statements of a CQL script, without comments; `;` inside quotes does not split.

    Raises MigrationError on an unterminated string or block comment.
    """
    statements: list[str] = []
    current: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in "'\"":
            j = i + 1
            while True:
                j = text.find(ch, j)
                if j < 0:
                    raise MigrationError(f"unterminated {ch} string at offset {i}")
                if j + 1 < n and text[j + 1] == ch:  # doubled quote escapes itself
                    j += 2
                    continue
                break
            current.append(text[i : j + 1])
            i = j + 1
        elif text.startswith(("--", "//"), i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            if j < 0:
                raise MigrationError(f"unterminated /* comment at offset {i}")
            current.append(" ")
            i = j + 2
        elif ch == ";":
            statements.append("".join(current).strip())
            current = []
            i += 1
        else:
            current.append(ch)
            i += 1
    statements.append("".join(current).strip())
    return [s for s in statements if s]


def load_migrations(directory: Traversable | Path | None = None) -> list[Migration]:
    """The migrations of `directory` (default: the packaged ones), ordered by number.

    Raises MigrationError for a misnamed `.cql` file, a gap or duplicate in the numbering, or an empty file.
    """
    folder: Traversable | Path = default_directory() if directory is None else directory
    found: list[Migration] = []
    for entry in folder.iterdir():
        if not entry.name.endswith(".cql"):
            continue
        match = FILE_RE.fullmatch(entry.name)
        if match is None:
            raise MigrationError(f"migration file {entry.name!r} must be named NNNN_lowercase_name.cql")
        data = entry.read_bytes()
        statements = tuple(split_statements(data.decode("utf-8")))
        if not statements:
            raise MigrationError(f"migration {entry.name} holds no statement")
        found.append(Migration(int(match.group(1)), entry.name, statements, hashlib.sha256(data).hexdigest()))
    found.sort(key=lambda m: m.number)
    numbers = [m.number for m in found]
    if numbers != list(range(1, len(found) + 1)):
        raise MigrationError(f"migrations must be numbered 1..n without gaps or duplicates, found {numbers}")
    return found


def ensure_keyspace(session: Any, keyspace: str, local_datacenter: str, replication_factor: int) -> None:
    """CREATE KEYSPACE IF NOT EXISTS with NetworkTopologyStrategy {local_datacenter: replication_factor}.

    An existing keyspace keeps its replication (changing it is an operator's ALTER KEYSPACE + repair).
    """
    if not KEYSPACE_RE.fullmatch(keyspace):
        raise MigrationError(f"CQL keyspace {keyspace!r} must match {KEYSPACE_RE.pattern}")
    if not DATACENTER_RE.fullmatch(local_datacenter):
        raise MigrationError(f"CQL datacenter {local_datacenter!r} must match {DATACENTER_RE.pattern}")
    if not 1 <= replication_factor <= 9:
        raise MigrationError(f"replication factor {replication_factor} must be between 1 and 9")
    session.execute(
        f"CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = "
        f"{{'class': 'NetworkTopologyStrategy', '{local_datacenter}': {replication_factor}}}",
        timeout=DDL_TIMEOUT_S,
    )


def applied_migrations(session: Any, keyspace: str, component: str = COMPONENT) -> dict[int, tuple[str, str]]:
    """{migration_id: (name, checksum)} recorded in `keyspace.schema_migrations` for `component`."""
    if not KEYSPACE_RE.fullmatch(keyspace):
        raise MigrationError(f"CQL keyspace {keyspace!r} must match {KEYSPACE_RE.pattern}")
    table = f"{keyspace}.schema_migrations"  # keyspace checked above: an identifier, never input text
    session.execute(MIGRATIONS_TABLE.replace("schema_migrations", table, 1), timeout=DDL_TIMEOUT_S)
    rows = session.execute(
        f"SELECT migration_id, name, checksum FROM {table} WHERE component = %s",  # noqa: S608
        (component,),
    )
    return {int(r[0]): (str(r[1]), str(r[2])) for r in rows}


def apply_migrations(
    session: Any,
    keyspace: str,
    migrations: list[Migration] | None = None,
    component: str = COMPONENT,
) -> list[str]:
    """Apply the migrations not yet recorded, in order; returns the names applied now ([] when up to date).

    The session's current keyspace is set to `keyspace` (statements in files are unqualified).
    Raises MigrationError when a recorded migration's file has changed.
    """
    todo = load_migrations() if migrations is None else migrations
    done = applied_migrations(session, keyspace, component)
    for m in todo:
        recorded = done.get(m.number)
        if recorded is not None and recorded[1] != m.checksum:
            raise MigrationError(
                f"migration {m.name} changed after it was applied (recorded {recorded[0]} sha256 {recorded[1][:12]},"
                f" file sha256 {m.checksum[:12]}); add a new migration instead of editing an applied one"
            )
    session.set_keyspace(keyspace)
    applied: list[str] = []
    for m in todo:
        if m.number in done:
            continue
        for statement in m.statements:
            _apply_statement(session, keyspace, statement)
        session.execute(
            "INSERT INTO schema_migrations (component, migration_id, name, checksum, applied_at)"
            " VALUES (%s, %s, %s, %s, %s)",
            (component, m.number, m.name, m.checksum, datetime.now(UTC)),
        )
        applied.append(m.name)
    return applied


def _apply_statement(session: Any, keyspace: str, statement: str) -> None:
    """Execute one migration statement; an `ALTER TABLE t ADD c` whose column exists already (added by an
    interrupted earlier run, or by another process migrating at the same moment) is left as it is."""
    add = ADD_COLUMN_RE.match(statement.strip())
    if add is not None and _has_column(session, keyspace, add):
        return
    try:
        session.execute(statement, timeout=DDL_TIMEOUT_S)
    except InvalidRequest as exc:
        if add is None or not ("already exists" in str(exc) or _has_column(session, keyspace, add)):
            raise


def _has_column(session: Any, keyspace: str, add: re.Match[str]) -> bool:
    """Whether the table of an `ALTER TABLE t ADD c type` (`ADD_COLUMN_RE` match) already has column c."""
    rows = session.execute(
        "SELECT column_name FROM system_schema.columns WHERE keyspace_name = %s AND table_name = %s",
        (keyspace, add.group(1).lower()),
    )
    return add.group(2).lower() in {str(r[0]) for r in rows}
