"""Where the clients live: a clients file (`dkw serve --clients FILE`, one server on SQLite) or the
database's `clients` table (`dkw serve --database URL --authenticate`), which every replica on that
database reads, so a token added, rotated or removed on one replica holds for all of them.

Both forms hold the same `dkw.server.auth.Client` entries (an id, a role, a token id and a scrypt hash of the
token, never the token) and offer the same three operations to `dkw clients` and the `Authenticator`.
The table comes with migration 4 (`dkw.server.migrations`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from dkw.server.auth import Client, hash_token, new_token, read_clients, write_clients

_COLUMNS = "client_id, role, token_id, token_hash, max_active, created_at, rotated_at"


class ClientRegistry(Protocol):
    """The clients of one server (file) or of every replica on one database (table)."""

    #: Where they are, for messages: the file's path or "the database".
    where: str

    def load(self, missing_ok: bool = False) -> dict[str, Client]:
        """Every client by id (`missing_ok`: none from a clients file that does not exist yet)."""

    def put(self, client: Client) -> None:
        """Add `client`, or replace the entry with its id."""

    def remove(self, client_id: str) -> bool:
        """Remove one client; False when there was none by that id."""


class FileRegistry:
    """A clients file, replaced atomically on each change (a server re-reads it when its mtime changes)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.where = str(self.path)

    def load(self, missing_ok: bool = False) -> dict[str, Client]:
        return {} if missing_ok and not self.path.exists() else read_clients(self.path)

    def put(self, client: Client) -> None:
        clients = self.load(missing_ok=True)
        clients[client.id] = client
        write_clients(self.path, clients)

    def remove(self, client_id: str) -> bool:
        clients = read_clients(self.path)
        if clients.pop(client_id, None) is None:
            return False
        write_clients(self.path, clients)
        return True


class DatabaseRegistry:
    """The `clients` table of a store (PostgreSQL for replicas; SQLite works the same), through the
    store's own transactions, so it shares the store's connections and its retries."""

    where = "the database"

    def __init__(self, storage: Any):
        self.storage = storage  # dkw.server.storage.SqlStorage

    def _run(self, what: str, body: Any, write: bool = False) -> Any:
        """`body(cursor)` in one transaction, retried like every storage operation (dkw.server.resilience):
        each write here is idempotent (the same row deleted and put again, or deleted), so re-running one
        whose COMMIT went unanswered is safe. StorageUnavailable when the database stays away."""

        def once(_maybe_committed: bool) -> Any:
            with self.storage._tx(write) as cur:
                return body(cur)

        return self.storage.retrier.run(once, what=what)

    def load(self, missing_ok: bool = False) -> dict[str, Client]:
        rows = self._run("clients", lambda cur: self.storage._all(cur, f"SELECT {_COLUMNS} FROM clients ORDER BY client_id"))
        return {cid: Client(cid, role, token_id, token_hash, created_at, max_active, rotated_at or "")
                for cid, role, token_id, token_hash, max_active, created_at, rotated_at in rows}

    def count(self) -> int:
        return self._run("clients", lambda cur: self.storage._all(cur, "SELECT COUNT(*) FROM clients")[0][0])

    def put(self, client: Client) -> None:
        def body(cur: Any) -> None:
            self.storage._all(cur, "DELETE FROM clients WHERE client_id = %s", client.id)
            self.storage._all(cur, f"INSERT INTO clients ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                              client.id, client.role, client.token_id, client.token_hash, client.max_active,
                              client.created_at, client.rotated_at or None)

        self._run("clients add", body, write=True)

    def remove(self, client_id: str) -> bool:
        return bool(self._run("clients remove", lambda cur: self.storage._all(
            cur, "DELETE FROM clients WHERE client_id = %s RETURNING client_id", client_id), write=True))


def now_text() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def issue_token(registry: ClientRegistry, client_id: str, role: str,
                max_active: int | None = None) -> tuple[str, bool]:
    """Create `client_id` or rotate its token (the old one stops working); returns (the new token, whether
    the client existed). A rotation keeps the client's `created_at` and sets `rotated_at`."""
    existing = registry.load(missing_ok=True).get(client_id)
    token_id, token = new_token()
    now = now_text()
    client = Client(client_id, role, token_id, hash_token(token), now, max_active)
    if existing is not None:
        client = replace(client, created_at=existing.created_at or now, rotated_at=now)
    registry.put(client)
    return token, existing is not None
