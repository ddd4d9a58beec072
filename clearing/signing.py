"""Signed result documents: an Ed25519 signature over the document's canonical JSON.

A result document signed by the service carries a top-level `signature` block:

    "signature": {"algorithm": "Ed25519", "key_id": "…", "canonicalization": "dkw-canonical-json/1",
                  "value": "<base64 of the 64-byte signature>"}

The signed bytes are the canonical JSON of the whole document without its `signature` member, whatever
other members it has. Canonical JSON (`dkw-canonical-json/1`): UTF-8, object keys sorted, no whitespace,
non-ASCII characters as they are, numbers that hold a whole value (|x| < 2**53) written as integers
(`12000`, never `12000.0`: a figure that went through gRPC as a double signs the same as the file's
integer) and other numbers as Python's shortest round-trip `repr`. The key id is the first 16 hex digits
of the SHA-256 of the raw 32-byte public key, so a verifier can tell which key a result claims.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SIGNATURE_KEY = "signature"
ALGORITHM = "Ed25519"
CANONICALIZATION = "dkw-canonical-json/1"


class KeyFileError(ValueError):
    """A key file that cannot be read or is not an Ed25519 key of the expected kind."""


def _canonical_value(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _canonical_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical_value(v) for v in value]
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value} has no JSON form")
        if value.is_integer() and abs(value) < 2**53:
            return int(value)
    return value


def canonical_json(document: dict[str, Any]) -> bytes:
    """The bytes a signature covers: the document minus its signature block, canonically."""
    body = {k: v for k, v in document.items() if k != SIGNATURE_KEY}
    return json.dumps(_canonical_value(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def sign_document(document: dict[str, Any], private_key: Ed25519PrivateKey) -> dict[str, Any]:
    """A copy of `document` with a fresh signature block (any previous one replaced)."""
    signature = private_key.sign(canonical_json(document))
    return {**{k: v for k, v in document.items() if k != SIGNATURE_KEY},
            SIGNATURE_KEY: {"algorithm": ALGORITHM, "key_id": key_id(private_key.public_key()),
                            "canonicalization": CANONICALIZATION,
                            "value": base64.b64encode(signature).decode()}}


def check_signature(document: dict[str, Any], public_key: Ed25519PublicKey) -> str | None:
    """None when the document carries a valid signature by `public_key`; otherwise why not."""
    block = document.get(SIGNATURE_KEY)
    if not isinstance(block, dict):
        return "the result carries no signature block"
    if block.get("algorithm") != ALGORITHM or block.get("canonicalization") != CANONICALIZATION:
        return (f"unsupported signature: algorithm {block.get('algorithm')!r}, canonicalization "
                f"{block.get('canonicalization')!r} (expected {ALGORITHM}, {CANONICALIZATION})")
    expected_id = key_id(public_key)
    if block.get("key_id") != expected_id:
        return f"signed with key {block.get('key_id')!r}, not with this public key ({expected_id})"
    try:
        signature = base64.b64decode(str(block.get("value", "")), validate=True)
        public_key.verify(signature, canonical_json(document))
    except (ValueError, InvalidSignature):
        return f"the signature by key {expected_id} does not match the document: it was altered after signing"
    return None


# ---- key files ------------------------------------------------------------------------------------


def new_key_pair(private_path: str | Path, public_path: str | Path) -> str:
    """Write a new Ed25519 pair as PEM (the private key readable by the owner only); returns its key id."""
    private_key = Ed25519PrivateKey.generate()
    private_pem = private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption())
    public_pem = private_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo)
    private_path, public_path = Path(private_path), Path(public_path)
    with open(private_path, "xb") as f:  # never overwrite a key that may be in use
        f.write(private_pem)
    private_path.chmod(0o600)
    public_path.write_bytes(public_pem)
    return key_id(private_key.public_key())


def _load(path: str | Path, kind: str, parse, expected: type):
    try:
        key = parse(Path(path).read_bytes())
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{path}: not {kind}: {exc}") from None
    if not isinstance(key, expected):
        raise KeyFileError(f"{path}: a {type(key).__name__}, not an {expected.__name__}")
    return key


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    return _load(path, "an unencrypted PEM private key",
                 lambda data: serialization.load_pem_private_key(data, password=None), Ed25519PrivateKey)


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    return _load(path, "a PEM public key", serialization.load_pem_public_key, Ed25519PublicKey)
