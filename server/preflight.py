"""Checks `dkw serve` makes before it opens anything, so a wrong setting is refused in one line that names
the flag, the value and the fix, instead of failing later in a library's words."""

from __future__ import annotations

import re

#: The URL schemes libpq (psycopg) reads as PostgreSQL.
POSTGRESQL_SCHEMES = ("postgresql", "postgres")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def check_database_url(url: str) -> None:
    """Raise ValueError unless `url` is a PostgreSQL URL (or a libpq `key=value` connection string). The
    message names the scheme only: the rest of a URL may hold a password."""
    match = _SCHEME.match(url.strip())
    if match is None:
        if "=" in url:  # host=... dbname=...: libpq's other form, checked when it connects
            return
        raise ValueError("--database: not a URL; give postgresql://USER@HOST/DATABASE (for SQLite give --data DIR "
                         "instead of --database)")
    scheme = match.group(1).lower()
    if scheme not in POSTGRESQL_SCHEMES:
        raise ValueError(f"--database: {scheme}:// URLs are not supported, only postgresql:// (PostgreSQL); for "
                         "SQLite give --data DIR instead of --database")
