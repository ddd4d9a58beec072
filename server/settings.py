"""One security configuration per database: the settings every server on a store must share.

Two replicas on one database with different settings would serve one configuration's promises with the
other's behaviour: an anonymous replica handing out a secured replica's auctions, an unsigned result
where clients expect a signed one, auctions cleared under another market policy. So the first server to
start on a store records its settings in `security_settings` (migration 4), and every later server (a
replica, or the same one restarted) compares its own: a difference refuses the start (exit 2, one line
naming the setting, the recorded value and this server's) unless it is started with `--adopt-settings`,
which makes this server's settings the recorded ones, says so loudly and records who and when (in the
table and in the audit trail). Whatever the settings, a server that does not authenticate callers never
starts on a database whose client registry has clients.
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import json
import logging
import os
import socket
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("dkw.server")

#: The settings compared, and the flag of `dkw serve` that sets each (for the refusal's advice).
FLAGS = {
    "authentication": "--clients FILE, or --authenticate with --database",
    "signing_key": "--signing-key",
    "policy_sha256": "--policy",
    "tls": "--tls-cert/--tls-key",
    "mutual_tls": "--tls-client-ca",
}


class SettingsMismatch(ValueError):
    """This server's security settings differ from the store's recorded ones (one line, for exit 2)."""


@dataclass(frozen=True)
class Adopted:
    """A setting `--adopt-settings` changed: from the recorded value to this server's."""

    name: str
    recorded: str
    now: str


def policy_sha256(policy_data: dict[str, Any]) -> str:
    """The effective market policy's hash (the shipped one with `--policy` merged over it), over its
    canonical JSON: the same rules give the same hash whatever the file's layout."""
    text = json.dumps(policy_data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def current_settings(secure: Any, signer: Any, policy_data: dict[str, Any]) -> dict[str, str]:
    """This server's settings as text, from `dkw serve`'s ServeSecurity, its Signer and its policy."""
    return {
        "authentication": "on" if secure.authenticated else "off",
        "signing_key": signer.key_id if signer is not None else "none",
        "policy_sha256": policy_sha256(policy_data),
        "tls": "on" if secure.tls_cert else "off",
        "mutual_tls": "on" if secure.tls_client_ca else "off",
    }


def operator() -> str:
    """Who adopts or first records the settings: the OS user, the host and the process."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid {os.getuid()}"
    return f"{user}@{socket.gethostname()}:{os.getpid()}"


def _short(name: str, value: str) -> str:
    return value[:16] if name == "policy_sha256" else value


def reconcile(storage: Any, current: dict[str, str], *, adopt: bool = False,
              who: str | None = None) -> list[Adopted]:
    """Record `current` where the store has no settings yet, or compare it with the recorded ones.
    Raises SettingsMismatch (one line) on a difference without `adopt`, and whenever this server does not
    authenticate on a store whose registry has clients. Returns the settings `adopt` changed. Runs under
    the lock that serialises migrations, so two servers starting together record one configuration."""
    who = who or operator()
    with storage._tx() as cur:
        storage._before_migrate(cur)
        rows = storage._all(cur, "SELECT name, value, recorded_at, recorded_by FROM security_settings")
        recorded = {name: (value, at, by) for name, value, at, by in rows}
        if current["authentication"] == "off":
            clients = storage._all(cur, "SELECT COUNT(*) FROM clients")[0][0]
            if clients:
                raise SettingsMismatch(
                    f"this database's client registry has {clients} client(s), and this server does not "
                    "authenticate callers: start it with --authenticate (it would serve their auctions to "
                    "anyone), or remove the clients first (dkw clients remove --database URL ID)")
        differ = [Adopted(name, recorded[name][0], value) for name, value in current.items()
                  if name in recorded and recorded[name][0] != value]
        if differ and not adopt:
            raise SettingsMismatch(_mismatch_line(differ, recorded))
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        for name, value in current.items():
            if name not in recorded:
                storage._all(cur, "INSERT INTO security_settings (name, value, recorded_at, recorded_by)"
                             " VALUES (%s, %s, %s, %s)", name, value, now, who)
        for change in differ:
            storage._all(cur, "UPDATE security_settings SET value = %s, recorded_at = %s, recorded_by = %s"
                         " WHERE name = %s", change.now, now, who, change.name)
    for change in differ:
        log.warning("--adopt-settings: the recorded security setting %s changed from %s to %s by %s; every "
                    "other server on this database must now match it", change.name,
                    _short(change.name, change.recorded), _short(change.name, change.now), who)
    return differ


def _mismatch_line(differ: list[Adopted], recorded: dict[str, tuple[str, str, str]]) -> str:
    parts = [f"{d.name} is {_short(d.name, d.recorded)} in the database (recorded {recorded[d.name][1][:19]} by "
             f"{recorded[d.name][2]}) but {_short(d.name, d.now)} here ({FLAGS.get(d.name, d.name)})" for d in differ]
    return ("this server's security settings differ from the ones recorded in its database: " + "; ".join(parts)
            + ". Start it with the recorded settings, or give --adopt-settings to make this server's the "
            "recorded ones (every other server on the database must then match them)")


def recorded_settings(storage: Any) -> dict[str, tuple[str, str, str]]:
    """name → (value, recorded_at, recorded_by): what a server starting on `storage` is compared with."""
    with storage._tx() as cur:
        rows = storage._all(cur, "SELECT name, value, recorded_at, recorded_by FROM security_settings")
    return {name: (value, at, by) for name, value, at, by in rows}


def record_adoption(audit: Any, adopted: list[Adopted], who: str | None = None) -> None:
    """Put an `--adopt-settings` change in the audit trail too, where admins look (ListAuditRecords)."""
    if audit is None or not adopted:
        return
    import grpc

    from dkw.server.audit import new_record

    detail = "; ".join(f"{a.name}: {_short(a.name, a.recorded)} -> {_short(a.name, a.now)}" for a in adopted)
    audit.append(new_record(who or operator(), "local", "AdoptSettings", "", grpc.StatusCode.OK, detail))


def check_at_start(storage: Any, secure: Any, signer: Any, policy_path: str | None) -> list[Adopted]:
    """`dkw serve`'s settings against its store's (see `reconcile`); raises SettingsMismatch or PolicyError."""
    from dkw.clearing.rules import load_policy

    return reconcile(storage, current_settings(secure, signer, load_policy(policy_path).data),
                     adopt=secure.adopt_settings)
