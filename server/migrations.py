"""The storage schema, versioned: an ordered list of migrations applied forward when a server starts.

Each migration has the SQL for both backends (SQLite, the embedded default, and PostgreSQL, for replicas)
and is applied once, in order, inside one transaction that also records it in `schema_migrations`. A
server refuses a database whose recorded version is newer than the last migration it knows (an older
binary must not write into a schema it does not understand). To change the schema, append a migration;
never edit one that has shipped.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sqlite: str
    postgres: str


class SchemaTooNew(RuntimeError):
    """The database was migrated by a newer dkw than this one."""


_AUCTIONS = """
CREATE TABLE IF NOT EXISTS auctions (
    seq {serial},
    auction_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    idempotency_key TEXT UNIQUE,
    document_auction_id TEXT NOT NULL,
    trading_date TEXT NOT NULL,
    input_sha256 TEXT NOT NULL,
    received_at TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0,
    options TEXT NOT NULL,
    document {blob} NOT NULL,
    result TEXT,
    status TEXT,
    objective_yen {real},
    mip_gap {real},
    solve_seconds {real},
    solver TEXT,
    finished_at TEXT
);
CREATE INDEX IF NOT EXISTS auctions_state ON auctions (state, seq);
"""

# Who is clearing an auction and until when (seconds since the epoch, by the database's clock where it
# has one), a cancel asked from any replica, and the latest progress snapshot for watchers elsewhere.
_LEASES = """
ALTER TABLE auctions ADD COLUMN lease_owner TEXT;
ALTER TABLE auctions ADD COLUMN lease_expires_at {real};
ALTER TABLE auctions ADD COLUMN cancel_requested TEXT;
ALTER TABLE auctions ADD COLUMN progress TEXT;
ALTER TABLE auctions ADD COLUMN progress_seq INTEGER NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS auctions_lease ON auctions (state, lease_expires_at);
"""

# Who submitted an auction (dkw.server.auth's client id) and the audit trail (dkw.server.audit), one record per
# call. A store written between the security release and versioning may have the column already: an ADD
# COLUMN of a column that exists is skipped (see `migrate`).
_CLIENTS_AND_AUDIT = """
ALTER TABLE auctions ADD COLUMN submitted_by TEXT;
CREATE INDEX IF NOT EXISTS auctions_submitted_by ON auctions (submitted_by, state);
CREATE TABLE IF NOT EXISTS audit_records (
    record_id TEXT PRIMARY KEY,
    at TEXT NOT NULL,
    client_id TEXT NOT NULL,
    peer TEXT NOT NULL,
    method TEXT NOT NULL,
    auction_id TEXT NOT NULL,
    status_code TEXT NOT NULL,
    detail TEXT NOT NULL
);
"""

# Replicas on one database share one client registry (dkw.server.registry: `dkw clients add --database`)
# and one security configuration, recorded by the first server to start (dkw.server.settings).
_REGISTRY_AND_SETTINGS = """
CREATE TABLE IF NOT EXISTS clients (
    client_id TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    token_id TEXT NOT NULL UNIQUE,
    token_hash TEXT NOT NULL,
    max_active INTEGER,
    created_at TEXT NOT NULL,
    rotated_at TEXT
);
CREATE TABLE IF NOT EXISTS security_settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    recorded_by TEXT NOT NULL
);
"""

# Graceful drain (docs/replicas.md): the best incumbent of a run a draining replica handed back, which the
# next replica starts from; and the replica that handled each audited call.
_HANDBACK_AND_AUDIT_SERVER = """
ALTER TABLE auctions ADD COLUMN handed_back TEXT;
ALTER TABLE audit_records ADD COLUMN server TEXT NOT NULL DEFAULT ''
"""

_SQLITE = {"serial": "INTEGER PRIMARY KEY AUTOINCREMENT", "blob": "BLOB", "real": "REAL"}
_POSTGRES = {"serial": "BIGSERIAL PRIMARY KEY", "blob": "BYTEA", "real": "DOUBLE PRECISION"}

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "auctions and results", _AUCTIONS.format(**_SQLITE), _AUCTIONS.format(**_POSTGRES)),
    Migration(2, "leases, cancel requests and stored progress", _LEASES.format(**_SQLITE),
              _LEASES.format(**_POSTGRES)),
    Migration(3, "submitted_by and the audit trail", _CLIENTS_AND_AUDIT, _CLIENTS_AND_AUDIT),
    Migration(4, "the client registry and the recorded security settings", _REGISTRY_AND_SETTINGS,
              _REGISTRY_AND_SETTINGS),
    Migration(5, "handed-back incumbents and the replica of each audit record", _HANDBACK_AND_AUDIT_SERVER,
              _HANDBACK_AND_AUDIT_SERVER),
)
LATEST = MIGRATIONS[-1].version

MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at TEXT NOT NULL
)
"""


def statements(script: str) -> list[str]:
    """A migration's statements, one by one (neither driver runs a multi-statement string with params)."""
    return [s.strip() for s in script.split(";") if s.strip()]


_ADD_COLUMN = re.compile(r"ALTER TABLE (\w+) ADD COLUMN (\w+)", re.I)
_COLUMNS_SQL = {
    "sqlite": "SELECT name FROM pragma_table_info(%s)",
    "postgres": "SELECT column_name FROM information_schema.columns WHERE table_name = %s"
                " AND table_schema = current_schema()",
}


def migrate(execute: Callable[..., list[tuple]], backend: str, now: str,
            migrations: tuple[Migration, ...] = MIGRATIONS) -> list[int]:
    """Apply the pending migrations through `execute(sql, params) -> rows` (inside the caller's
    transaction, which holds whatever lock keeps two starting servers apart). Returns the versions applied.
    An ADD COLUMN of a column the table has already (added before the schema was versioned) is skipped."""
    execute(MIGRATIONS_TABLE.strip(), ())
    current = execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", ())[0][0]
    known = migrations[-1].version
    if current > known:
        raise SchemaTooNew(f"the database's schema is at version {current}, newer than this dkw knows "
                           f"({known}): upgrade dkw before serving from it")
    applied = []
    for m in migrations:
        if m.version <= current:
            continue
        for sql in statements(m.sqlite if backend == "sqlite" else m.postgres):
            added = _ADD_COLUMN.match(sql)
            if added and added.group(2) in {row[0] for row in execute(_COLUMNS_SQL[backend], (added.group(1),))}:
                continue
            execute(sql, ())
        execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (%s, %s, %s)",
                (m.version, m.name, now))
        applied.append(m.version)
    return applied
