"""Who may call the service: the clients file, token hashes, the three roles and what each may call.

A clients file (`dkw serve --clients FILE`), or the database's client registry (`dkw serve --database URL
--authenticate`, dkw.server.registry), lists each client's id, role and a scrypt hash of its token; a token
is never stored. A token reads `dkw_<token id>_<secret>`: the token id (not secret) finds the one
client whose hash to check, so a call costs one scrypt, and a verified token is remembered (by its
SHA-256) until the clients change. The server re-reads the file when its modification time changes, and
the database's registry every `REGISTRY_TTL_S` seconds, so `dkw clients add` (rotation) and `dkw clients
remove` take effect without a restart (on every replica, with the registry in the database).

With mutual TLS a client certificate whose subject common name (CN) is a client's id names that client
when the call carries no token.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CLIENTS_FORMAT = "dkw-clients/1"
SUBMITTER, READER, ADMIN = "submitter", "reader", "admin"
ROLES = (SUBMITTER, READER, ADMIN)
log = logging.getLogger("dkw.server")
ANONYMOUS = "anonymous"

#: scrypt cost: 16 MiB of memory and some 50 ms per check, once per token and server (verified tokens
#: are remembered); stored with each hash so it can be raised later without invalidating old tokens.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
#: Seconds a server trusts its copy of the database's client registry: a token rotated or removed on one
#: replica stops working on every replica within this long.
REGISTRY_TTL_S = 2.0

#: Methods of dkw.v1.Clearing and the roles that may call them. A submitter sees only the auctions it
#: submitted (the service checks ownership); a method missing here (one added later) is admin-only.
METHOD_ROLES: dict[str, frozenset[str]] = {
    "Clear": frozenset({SUBMITTER, ADMIN}),
    "SubmitAuction": frozenset({SUBMITTER, ADMIN}),
    "Validate": frozenset({SUBMITTER, ADMIN}),
    "GetResult": frozenset(ROLES),
    "ListAuctions": frozenset(ROLES),
    "WatchClearing": frozenset(ROLES),
    "CancelClearing": frozenset({SUBMITTER, ADMIN}),
    "ListAuditRecords": frozenset({ADMIN}),
}


class ClientsFileError(ValueError):
    """The clients file cannot be read or is malformed; the message names the file and the field."""


@dataclass(frozen=True, slots=True)
class Client:
    id: str
    role: str
    token_id: str
    token_hash: str  # "scrypt$N$r$p$<salt b64>$<hash b64>"
    created_at: str = ""
    max_active: int | None = None  # this client's cap on auctions queued or running; None: the server's
    rotated_at: str = ""  # when its token was last replaced ("" if never)

    def to_json(self) -> dict[str, Any]:
        doc = {"id": self.id, "role": self.role, "token_id": self.token_id, "token_hash": self.token_hash,
               "created_at": self.created_at}
        if self.max_active is not None:
            doc["max_active"] = self.max_active
        if self.rotated_at:
            doc["rotated_at"] = self.rotated_at
        return doc


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated caller of one call. `restricted` is False when the server has no clients file
    (today's loopback-only behaviour: every caller may do everything)."""

    id: str
    role: str
    restricted: bool = True
    max_active: int | None = None

    def owns_only(self) -> bool:
        """True when the caller may see only the auctions it submitted."""
        return self.restricted and self.role == SUBMITTER


#: The caller when no clients file is given.
OPEN_CALLER = Caller(ANONYMOUS, ADMIN, restricted=False)


def hash_token(token: str, *, salt: bytes | None = None, n: int = SCRYPT_N, r: int = SCRYPT_R,
               p: int = SCRYPT_P) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(token.encode(), salt=salt, n=n, r=r, p=p, maxmem=256 * 1024 * 1024, dklen=32)
    return f"scrypt${n}${r}${p}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def token_matches(token: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(token.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                                maxmem=256 * 1024 * 1024, dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def new_token() -> tuple[str, str]:
    """(token id, token): the id is stored in plain to find the client, the secret only as a hash."""
    token_id = secrets.token_hex(6)
    return token_id, f"dkw_{token_id}_{secrets.token_urlsafe(32)}"


def _token_id(token: str) -> str | None:
    parts = token.split("_", 2)
    return parts[1] if len(parts) == 3 and parts[0] == "dkw" else None


# ---- the clients file -----------------------------------------------------------------------------


def read_clients(path: str | Path) -> dict[str, Client]:
    """The clients by id; raises ClientsFileError naming the file and the bad field."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ClientsFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ClientsFileError(f"{path}: not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != CLIENTS_FORMAT or not isinstance(doc.get("clients"), list):
        raise ClientsFileError(f'{path}: expected {{"format": "{CLIENTS_FORMAT}", "clients": [...]}}')
    clients: dict[str, Client] = {}
    for i, c in enumerate(doc["clients"]):
        where = f"{path}: clients[{i}]"
        if not isinstance(c, dict):
            raise ClientsFileError(f"{where}: must be an object")
        for key in ("id", "role", "token_id", "token_hash"):
            if not isinstance(c.get(key), str) or not c[key]:
                raise ClientsFileError(f"{where}.{key}: must be a non-empty string, got {c.get(key)!r}")
        if c["role"] not in ROLES:
            raise ClientsFileError(f"{where}.role: {c['role']!r} is not one of {', '.join(ROLES)}")
        if c["id"] in clients:
            raise ClientsFileError(f"{where}.id: {c['id']!r} appears twice")
        if not c["token_hash"].startswith("scrypt$"):
            raise ClientsFileError(f"{where}.token_hash: not a scrypt hash (plain tokens are never stored)")
        limit = c.get("max_active")
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
            raise ClientsFileError(f"{where}.max_active: must be a whole number ≥ 1, got {limit!r}")
        clients[c["id"]] = Client(c["id"], c["role"], c["token_id"], c["token_hash"], c.get("created_at", ""),
                                  limit, c.get("rotated_at", ""))
    return clients


def write_clients(path: str | Path, clients: Mapping[str, Client]) -> None:
    """Replace the file atomically (a server re-reading it never sees half a file), readable by the owner only."""
    path = Path(path)
    doc = {"format": CLIENTS_FORMAT, "clients": [c.to_json() for c in sorted(clients.values(), key=lambda c: c.id)]}
    if not path.parent.is_dir():  # else mkstemp's error names its temporary file, not the directory
        raise ClientsFileError(f"{path}: the directory {path.parent} does not exist; create it first (mkdir -p "
                               f"{path.parent})")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def add_client(path: str | Path, client_id: str, role: str, max_active: int | None = None) -> str:
    """Create or rotate `client_id` in a clients file (a new token replaces the old one); returns the new
    token. A rotation keeps `created_at` and sets `rotated_at`."""
    path = Path(path)
    clients = read_clients(path) if path.exists() else {}
    token_id, token = new_token()
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    old = clients.get(client_id)
    clients[client_id] = Client(client_id, role, token_id, hash_token(token), old.created_at if old else now,
                                max_active, now if old else "")
    write_clients(path, clients)
    return token


# ---- authenticating a call ------------------------------------------------------------------------


class AuthError(Exception):
    """No or a wrong credential (UNAUTHENTICATED)."""


class Authenticator:
    """Finds the caller of a call from its `authorization: Bearer` metadata or its client certificate,
    against a clients file (`clients_path`) or a registry with `load()` (dkw.server.registry.DatabaseRegistry)."""

    def __init__(self, clients_path: str | Path | None, *, registry: Any = None, ttl_s: float = REGISTRY_TTL_S):
        self.path = Path(clients_path) if clients_path else None
        self.registry = registry
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._clients: dict[str, Client] = {}
        self._by_token_id: dict[str, Client] = {}
        self._verified: dict[bytes, str] = {}  # sha256(token) → client id
        self._mtime: float | None = None
        self._loaded_at = 0.0
        self._load_failing = False
        if registry is not None:
            self._use(registry.load())  # fails before the server starts if the database cannot be read
            if not self._clients:
                log.warning("the database's client registry is empty: every call is refused until a client is "
                            "added (dkw clients add --database URL ID --role ROLE)")
        elif self.path is not None:
            self._reload()  # raises ClientsFileError before the server starts

    @property
    def enabled(self) -> bool:
        return self.path is not None or self.registry is not None

    def _use(self, clients: dict[str, Client]) -> None:
        self._loaded_at = time.monotonic()
        if clients == self._clients:
            return
        self._clients = clients
        self._by_token_id = {c.token_id: c for c in clients.values()}
        self._verified = {}

    def _reload(self) -> None:
        self._use(read_clients(self.path))
        self._mtime = self.path.stat().st_mtime_ns

    def _current(self) -> None:
        """Re-read the file if it changed; a file broken meanwhile keeps the last good clients. The
        database's registry is re-read once `ttl_s` has passed; while it cannot be read the last copy
        stays in force (the calls themselves need the database too, and fail on their own)."""
        if self.registry is not None:
            if time.monotonic() - self._loaded_at < self.ttl_s:
                return
            try:
                clients = self.registry.load()
            except Exception as exc:  # the database is away: StorageUnavailable, or a driver's error
                self._loaded_at = time.monotonic()  # try again after another ttl_s, not on every call
                if not self._load_failing:
                    log.error("the client registry cannot be read, keeping the previous %d client(s): %s",
                              len(self._clients), type(exc).__name__)
                self._load_failing = True
                return
            if self._load_failing:
                log.info("the client registry can be read again: %d client(s)", len(clients))
            self._load_failing = False
            self._use(clients)
            return
        try:
            mtime = self.path.stat().st_mtime_ns
        except OSError:
            return
        if mtime != self._mtime:
            try:
                self._reload()
                log.info("clients file %s re-read: %d client(s)", self.path, len(self._clients))
            except ClientsFileError as exc:
                self._mtime = mtime  # logged once per change; the last good list stays in force
                log.error("clients file changed but cannot be used, keeping the previous %d client(s): %s",
                          len(self._clients), exc)

    def authenticate(self, metadata: Sequence[tuple[str, Any]] | None,
                     auth_context: Mapping[str, Sequence[bytes]] | None) -> Caller:
        if not self.enabled:
            return OPEN_CALLER
        token = None
        for key, value in metadata or ():
            if key == "authorization":
                if isinstance(value, bytes):
                    value = value.decode(errors="replace")
                scheme, _, rest = value.partition(" ")
                if scheme.lower() != "bearer" or not rest.strip():
                    raise AuthError("the authorization metadata must read 'Bearer TOKEN'")
                token = rest.strip()
        with self._lock:
            self._current()
            if token is not None:
                client = self._check_token(token)
                if client is None:
                    raise AuthError("unknown or revoked token")
                return Caller(client.id, client.role, max_active=client.max_active)
            names = [cn.decode(errors="replace") for cn in (auth_context or {}).get("x509_common_name", ())]
            for cn in names:
                client = self._clients.get(cn)
                if client is not None:
                    return Caller(client.id, client.role, max_active=client.max_active)
        if names:  # a certificate from the trusted CA, for a client nobody registered (or one removed)
            raise AuthError(f"the client certificate's CN {names[0]!r} names no registered client: register it "
                            f"(`dkw clients add {self.path} {names[0]} --role ROLE`) or send a token")
        raise AuthError("no credentials: send 'authorization: Bearer TOKEN' metadata (dkw --token or DKW_TOKEN)")

    def _check_token(self, token: str) -> Client | None:
        key = hashlib.sha256(token.encode()).digest()
        known = self._verified.get(key)
        if known is not None and known in self._clients:
            return self._clients[known]
        client = self._by_token_id.get(_token_id(token) or "")
        if client is None or not token_matches(token, client.token_hash):
            return None
        self._verified[key] = client.id
        return client


def allowed(caller: Caller, method: str) -> bool:
    return not caller.restricted or caller.role in METHOD_ROLES.get(method, frozenset({ADMIN}))
