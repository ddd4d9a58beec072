"""What `dkw verify` reads as its RESULT: a result document (a file `dkw clear` wrote), or a response that
carries one (`Clear`, `GetResult`, `CancelClearing`, the last `WatchClearing` event) exactly as grpcurl or
`MessageToJson` prints it: camelCase or the proto's field names, `resultJson` in base64.

A response is read from `result_json`, the exact bytes the service signed, and its signature checked over
those bytes (`result_signature`), never over a document rebuilt from the message.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass, replace
from typing import Any

from dkw.clearing.model import Auction
from dkw.clearing.signing import SIGNATURE_KEY, check_detached, check_signature, jws_key_id

#: Fields that make a JSON object a response rather than a result document (which has none of them).
RESPONSE_FIELDS = ("resultJson", "result_json", "resultSignature", "result_signature", "auctionId", "auction_id",
                   "result", "state")


class UnreadableResult(ValueError):
    """RESULT is neither a result document nor a response carrying one."""


@dataclass(frozen=True)
class ResultInput:
    document: dict[str, Any]
    payload: bytes | None = None  # the signed bytes, for a response that carries them
    jws: str | None = None  # the response's detached signature
    response: bool = False


def _field(obj: dict[str, Any], camel: str, snake: str) -> Any:
    return obj.get(camel, obj.get(snake))


def read_result_input(obj: Any) -> ResultInput:
    """The result document in `obj` and, for a response, the bytes and signature it came with."""
    if not isinstance(obj, dict):
        raise UnreadableResult("the result must be a JSON object")
    if "format" in obj or not any(k in obj for k in RESPONSE_FIELDS):
        return ResultInput(obj)
    encoded = _field(obj, "resultJson", "result_json")
    jws = _field(obj, "resultSignature", "result_signature") or None
    if encoded:
        if not isinstance(encoded, str):
            raise UnreadableResult(f"resultJson must be a base64 string, got {type(encoded).__name__}")
        try:
            payload = base64.b64decode(encoded.replace("-", "+").replace("_", "/") + "=" * (-len(encoded) % 4),
                                       validate=True)
            document = json.loads(payload)
        except (binascii.Error, ValueError) as exc:
            raise UnreadableResult(f"resultJson is not base64 of a JSON document: {exc}") from None
        if not isinstance(document, dict):
            raise UnreadableResult("resultJson is not a JSON object")
        return ResultInput(document, payload, jws, response=True)
    if isinstance(obj.get("result"), dict):  # a server from before result_json: rebuilt from the message
        return ResultInput(_from_message(obj["result"]), None, jws, response=True)
    state = obj.get("state", "no state")
    raise UnreadableResult(f"the response carries no result (state {state}, reason {obj.get('reason', '')!r})")


def _from_message(result: dict[str, Any]) -> dict[str, Any]:
    try:
        from google.protobuf import json_format

        from dkw.server.convert import result_document
        from dkw.v1 import clearing_pb2 as pb
    except ModuleNotFoundError as exc:
        raise UnreadableResult(f"reading a response without resultJson needs the server package ({exc})") from None
    try:
        return result_document(json_format.ParseDict(result, pb.ClearingResult()))
    except json_format.ParseError as exc:
        raise UnreadableResult(f"result is not a dkw.v1.ClearingResult: {exc}") from None


def signature_problem(given: ResultInput, public_key: Any) -> tuple[str | None, str | None]:
    """(why the signature does not hold or None, the key id it names)."""
    if given.payload is not None:
        if not given.jws:
            return "the response carries no resultSignature (the server has no signing key)", None
        return check_detached(given.payload, given.jws, public_key), jws_key_id(given.jws)
    block = given.document.get(SIGNATURE_KEY)
    return check_signature(given.document, public_key), block.get("key_id") if isinstance(block, dict) else None


def claimed_key(given: ResultInput) -> str | None:
    """The key id a result claims to be signed with, without checking it."""
    if given.jws:
        return jws_key_id(given.jws)
    block = given.document.get(SIGNATURE_KEY)
    return block.get("key_id") if isinstance(block, dict) else None


def with_legacy_input_hash(auction: Auction, result: dict[str, Any], data: bytes | None) -> tuple[Auction, str | None]:
    """Results cleared before input_sha256 became the canonical form's hash carry the sha256 of the file's
    bytes: accept that too (with a note) when it is this file's."""
    if data is None or result.get("input_sha256") in (None, auction.input_sha256):
        return auction, None
    legacy = hashlib.sha256(data).hexdigest()
    if result.get("input_sha256") != legacy:
        return auction, None
    return replace(auction, input_sha256=legacy), ("input_sha256 is the sha256 of the file's bytes (a result from "
                                                   "before it was taken over the canonical JSON); it matches")
