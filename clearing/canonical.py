"""The one canonical JSON form of a document: RFC 8785, the JSON Canonicalization Scheme (JCS).

Both hashes and signatures are taken over it, so the same document gives the same bytes whoever wrote it
and however it travelled: keys sorted by UTF-16 code units, no whitespace, strings with only the escapes
JSON requires, numbers as ECMAScript prints the IEEE double (`100` for both 100 and 100.0, `1e+21`,
`1e-7`). Any JCS implementation (Java, Go, JavaScript, …) reproduces these bytes. The work is done by
Trail of Bits' `rfc8785` package; this module only adds what it leaves to the caller (see `jcs`).
"""

from __future__ import annotations

import hashlib
from typing import Any

import rfc8785

#: JSON numbers are IEEE doubles (RFC 8785 §3.2.2.3): integers beyond this read as the nearest double.
_SAFE_INTEGER = 2**53 - 1


class NotCanonical(ValueError):
    """A value with no JCS form (NaN, infinity, a lone surrogate, a non-string key)."""


def jcs(value: Any) -> bytes:
    """The RFC 8785 bytes of a JSON value (dicts, lists, str, int, float, bool, None)."""
    try:
        return rfc8785.dumps(value)
    except rfc8785.IntegerDomainError:  # rare: redo with big integers as the doubles JSON makes of them
        return _dumps(_as_doubles(value))
    except (rfc8785.CanonicalizationError, TypeError) as exc:
        raise NotCanonical(f"no canonical JSON form: {exc}") from None


def _dumps(value: Any) -> bytes:
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError) as exc:
        raise NotCanonical(f"no canonical JSON form: {exc}") from None


def _as_doubles(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _as_doubles(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_as_doubles(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > _SAFE_INTEGER:
        return float(value)
    return value


def jcs_sha256(value: Any) -> str:
    """sha256 (hex) of the JCS bytes: `input_sha256` of an auction document (docs/auction.md)."""
    return hashlib.sha256(jcs(value)).hexdigest()
