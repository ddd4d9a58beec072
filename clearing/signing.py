"""Signed result documents: a JWS (RFC 7515) with EdDSA / Ed25519 (RFC 8037), detached, over the RFC 8785
canonical JSON of the document (docs/security.md, "Signed results").

The signed bytes (the JWS payload) are the JCS form of the result document without its `signature`
member: `signed_bytes(doc)`. The service sends exactly these bytes (`result_json`) and the detached JWS
(`result_signature`, `BASE64URL(header)..BASE64URL(signature)`, the payload left out) with every result,
so any JOSE library, or openssl with a few lines of shell, verifies it without this code. The protected
header is `{"alg":"EdDSA","kid":"<key id>"}`; the key id is the first 16 hex digits of the SHA-256 of
the raw 32-byte public key, so a verifier can tell which key a result claims.

A result document kept as a file carries the same JWS in a top-level `signature` block:

    "signature": {"algorithm": "EdDSA", "key_id": "…", "canonicalization": "RFC8785", "jws": "<header>..<signature>"}

Results signed before (block `{"algorithm": "Ed25519", "canonicalization": "dkw-canonical-json/1",
"value": …}`) still verify: `legacy_canonical_json` is the form they were signed over.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from dkw.clearing.canonical import jcs

SIGNATURE_KEY = "signature"
ALGORITHM = "EdDSA"  # JWS "alg" for Ed25519 (RFC 8037)
CANONICALIZATION = "RFC8785"
LEGACY_ALGORITHM, LEGACY_CANONICALIZATION = "Ed25519", "dkw-canonical-json/1"


class KeyFileError(ValueError):
    """A key file that cannot be read or is not an Ed25519 key of the expected kind."""


def b64url(data: bytes) -> str:
    """Base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Inverse of `b64url`; ValueError on anything else."""
    if not isinstance(text, str) or any(c in text for c in "+/= \n"):
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not base64url") from None


def signed_bytes(document: dict[str, Any]) -> bytes:
    """The bytes a signature covers: the document without its signature block, in RFC 8785 form."""
    return jcs({k: v for k, v in document.items() if k != SIGNATURE_KEY})


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def sign_detached(payload: bytes, private_key: Ed25519PrivateKey) -> str:
    """A compact JWS over `payload` with the payload part left empty: `header..signature`."""
    header = b64url(jcs({"alg": ALGORITHM, "kid": key_id(private_key.public_key())}))
    signature = private_key.sign(f"{header}.{b64url(payload)}".encode("ascii"))
    return f"{header}..{b64url(signature)}"


def jws_key_id(jws: str) -> str | None:
    """The `kid` a detached JWS names, or None when it is not one."""
    try:
        header = json.loads(b64url_decode(jws.split(".")[0]))
    except (ValueError, AttributeError):
        return None
    return header.get("kid") if isinstance(header, dict) else None


def check_detached(payload: bytes, jws: str, public_key: Ed25519PublicKey) -> str | None:
    """None when `jws` is a valid detached EdDSA JWS over `payload` by `public_key`; otherwise why not."""
    parts = jws.split(".") if isinstance(jws, str) else []
    if len(parts) != 3:
        return "the signature is not a compact JWS (header.payload.signature)"
    try:
        header = json.loads(b64url_decode(parts[0]))
        signature = b64url_decode(parts[2])
    except ValueError:
        return "the signature is not a compact JWS: its header or signature is not base64url JSON"
    if not isinstance(header, dict) or header.get("alg") != ALGORITHM or header.get("crit"):
        return f"unsupported JWS header {header!r} (expected alg {ALGORITHM}, no crit)"
    encoded = b64url(payload)
    if parts[1] not in ("", encoded):
        return "the JWS carries another payload than these bytes"
    expected_id = key_id(public_key)
    if header.get("kid") != expected_id:
        return f"signed with key {header.get('kid')!r}, not with this public key ({expected_id})"
    try:
        public_key.verify(signature, f"{parts[0]}.{encoded}".encode("ascii"))
    except InvalidSignature:
        return f"the signature by key {expected_id} does not match the document: it was altered after signing"
    return None


def signature_block(jws: str) -> dict[str, Any]:
    """The `signature` member a result file carries for `jws`."""
    return {"algorithm": ALGORITHM, "key_id": jws_key_id(jws), "canonicalization": CANONICALIZATION, "jws": jws}


def sign_document(document: dict[str, Any], private_key: Ed25519PrivateKey) -> dict[str, Any]:
    """A copy of `document` with a fresh signature block (any previous one replaced)."""
    body = {k: v for k, v in document.items() if k != SIGNATURE_KEY}
    return {**body, SIGNATURE_KEY: signature_block(sign_detached(jcs(body), private_key))}


def check_signature(document: dict[str, Any], public_key: Ed25519PublicKey) -> str | None:
    """None when the document carries a valid signature block by `public_key`; otherwise why not."""
    block = document.get(SIGNATURE_KEY)
    if not isinstance(block, dict):
        return "the result carries no signature block"
    if block.get("canonicalization") == LEGACY_CANONICALIZATION and block.get("algorithm") == LEGACY_ALGORITHM:
        return _check_legacy(document, block, public_key)
    if block.get("algorithm") != ALGORITHM or block.get("canonicalization") != CANONICALIZATION:
        return (f"unsupported signature: algorithm {block.get('algorithm')!r}, canonicalization "
                f"{block.get('canonicalization')!r} (expected {ALGORITHM}, {CANONICALIZATION})")
    return check_detached(signed_bytes(document), block.get("jws"), public_key)


# ---- results signed before RFC 8785 and JWS -----------------------------------------------------------


def _legacy_value(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _legacy_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_legacy_value(v) for v in value]
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value} has no JSON form")
        if value.is_integer() and abs(value) < 2**53:
            return int(value)
    return value


def legacy_canonical_json(document: dict[str, Any]) -> bytes:
    """`dkw-canonical-json/1`, the home-made form earlier results were signed over: sorted keys, compact,
    whole doubles as integers, other numbers as Python's `repr`. Only for verifying those results."""
    body = {k: v for k, v in document.items() if k != SIGNATURE_KEY}
    return json.dumps(_legacy_value(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def _check_legacy(document: dict[str, Any], block: dict[str, Any], public_key: Ed25519PublicKey) -> str | None:
    expected_id = key_id(public_key)
    if block.get("key_id") != expected_id:
        return f"signed with key {block.get('key_id')!r}, not with this public key ({expected_id})"
    try:
        signature = base64.b64decode(str(block.get("value", "")), validate=True)
        public_key.verify(signature, legacy_canonical_json(document))
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
