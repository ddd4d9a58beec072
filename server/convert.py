"""Messages ↔ documents. The proto mirrors the JSON documents field for field, so converting is a matter of
presence and types, never of market meaning: the server turns a message into the dict document, and the
same `load_auction` and `clear` as the CLI do the rest.
"""

from __future__ import annotations

import json
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from dkw.clearing.document import document_sha256, parse_document
from dkw.clearing.signing import CANONICALIZATION, SIGNATURE_KEY, signature_block, signed_bytes
from dkw.v1 import clearing_pb2 as pb

#: Lists the document requires even when empty (an auction with no bid is legal: all is shortfall).
#: Protobuf cannot tell an empty repeated field from an absent one, so these are always written.
REQUIRED_LISTS = ("areas", "products", "requirements", "bids")

RESULT_FIELDS = {f.name for f in pb.ClearingResult.DESCRIPTOR.fields} - {"extra"}


def auction_document(message: pb.Auction) -> dict[str, Any]:
    """The auction document a message stands for: exactly the fields the caller set (`optional` keeps a 0
    apart from an absent field), enums by name, in the document's own field names."""
    doc = _whole_numbers(json_format.MessageToDict(message, preserving_proto_field_name=True))
    for key in REQUIRED_LISTS:
        doc.setdefault(key, [])
    return doc


def _whole_numbers(value: Any) -> Any:
    """Doubles that hold whole numbers as ints, as a JSON file writes them (`12000`, not `12000.0`), so a
    problem reads the same through gRPC as in the CLI and the canonical sha256 matches the file's JSON."""
    if isinstance(value, dict):
        return {k: _whole_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole_numbers(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def request_document(request: Message) -> tuple[Any, bytes, str]:
    """(parsed document, stored bytes, input_sha256) from a request's `auction` or `auction_json`.

    JSON bytes are stored as received, like a file given to the CLI; a message is stored as its compact
    JSON. Either way the hash is of the document's RFC 8785 form (`document_sha256`), as the CLI takes it
    of a file, so the same auction has one `input_sha256` however it arrived. Raises `InvalidAuction` on
    bytes that are not JSON, or a document with no canonical form."""
    if request.WhichOneof("input") == "auction_json":
        raw = bytes(request.auction_json)
        doc = parse_document(raw)
    else:
        doc = auction_document(request.auction)
        raw = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
    return doc, raw, document_sha256(doc)


def result_message(doc: dict[str, Any]) -> pb.ClearingResult:
    """A result document as a message; top-level sections the schema does not name go to `extra`."""
    known = {k: v for k, v in doc.items() if k in RESULT_FIELDS}
    if known.get("status") not in pb.ClearingResult.Status.keys():
        known["status"] = "ERROR"  # a status this schema predates; keep the text in `extra`
        extra_status = {"status_text": doc.get("status")}
    else:
        extra_status = {}
    message = json_format.ParseDict(known, pb.ClearingResult())
    extra = {k: v for k, v in doc.items() if k not in RESULT_FIELDS} | extra_status
    if extra:
        message.extra.update(json.loads(json.dumps(extra)))
    return message


def put_result(target: pb.ClearResponse | pb.ClearingProgress, doc: dict[str, Any]) -> None:
    """Set a response's result three ways: the message (`result`), the exact bytes a signature covers
    (`result_json`: the document without its signature block in RFC 8785 form, also when unsigned) and
    the detached JWS over them (`result_signature`; empty when unsigned or signed the pre-JWS way)."""
    target.result.CopyFrom(result_message(doc))
    target.result_json = signed_bytes(doc)
    block = doc.get(SIGNATURE_KEY)
    if isinstance(block, dict) and block.get("canonicalization") == CANONICALIZATION:
        target.result_signature = str(block.get("jws", ""))


def _field_value(message: Message, fd: FieldDescriptor) -> Any:
    if fd.is_repeated:
        return [_message_document(v) if fd.type == FieldDescriptor.TYPE_MESSAGE else v
                for v in getattr(message, fd.name)]
    if fd.has_presence and not message.HasField(fd.name):
        return None
    value = getattr(message, fd.name)
    if fd.type == FieldDescriptor.TYPE_MESSAGE:
        if fd.message_type.full_name == "google.protobuf.Struct":
            return json_format.MessageToDict(value)
        return _message_document(value)
    if fd.type == FieldDescriptor.TYPE_ENUM:
        return fd.enum_type.values_by_number[value].name
    return value


def _message_document(message: Message) -> dict[str, Any]:
    """Every field, absent optional ones as None: the shape `ClearingResult.to_document` writes."""
    return {fd.name: _field_value(message, fd) for fd in message.DESCRIPTOR.fields}


def response_document(response: pb.ClearResponse | pb.ClearingProgress) -> dict[str, Any]:
    """The result document of a response: read from `result_json` (the exact bytes the server signed)
    with the JWS as its `signature` block, so the file verifies with `dkw verify --public-key`; from the
    `result` message where a server sends no `result_json`."""
    if not response.result_json:
        return result_document(response.result)
    doc = json.loads(response.result_json)
    if response.result_signature:
        doc[SIGNATURE_KEY] = signature_block(response.result_signature)
    return doc


def result_document(message: pb.ClearingResult) -> dict[str, Any]:
    """The result document a message stands for, as `ClearingResult.to_document()` writes it. Rebuilt
    from the message, so not byte for byte the signed document: prefer `response_document`."""
    doc = _message_document(message)
    extra = _whole_numbers(doc.pop("extra") or {})  # Struct numbers are doubles; counts read as ints
    if "status_text" in extra:
        doc["status"] = extra.pop("status_text")
    doc.update(extra)
    return doc


def bid_verdicts(bids: list[dict[str, Any]]) -> list[pb.BidVerdict]:
    """The rules' per-bid report (`dkw validate --json` bids) for the bids worth reporting: not ELIGIBLE,
    left out of the clearing, or flagged."""
    out = []
    for b in bids:
        if b["verdict"] == "ELIGIBLE" and b["clearing"] != "LEFT_OUT" and not b["flags"]:
            continue
        left_out = b.get("left_out_because")
        out.append(pb.BidVerdict(
            bid=b["bid"], verdict=b["verdict"], reason="; ".join(b["reasons"]), term_ja=b["term_ja"],
            clearing=b["clearing"], left_out_because=f"{left_out['verdict']}: {left_out['reason']}" if left_out else "",
            opening=b.get("opening") or "", flags=[pb.MonitoringFlag(**f) for f in b["flags"]]))
    return out


def auction_info(r: Any) -> pb.AuctionInfo:
    """A stored auction (dkw.server.storage.StoredAuction) as ListAuctions shows it."""
    info = pb.AuctionInfo(
        auction_id=r.auction_id, document_auction_id=r.document_auction_id, trading_date=r.trading_date,
        input_sha256=r.input_sha256, state=pb.AuctionState.Value(r.state), reason=r.reason,
        idempotency_key=r.idempotency_key or "", attempts=r.attempts, objective_yen=r.objective_yen,
        mip_gap=r.mip_gap, solve_seconds=r.solve_seconds or 0.0, solver=r.solver or "")
    info.received_at.FromDatetime(r.received_at)
    if r.status in pb.ClearingResult.Status.keys():
        info.status = pb.ClearingResult.Status.Value(r.status)
    return info


def validation_response(request: Message, policy: Any) -> pb.ValidateResponse:
    """The Validate RPC's answer: the structural problems, or for a valid auction the market rules'
    verdicts under `policy` (what `dkw validate --json` prints)."""
    from dkw.clearing.document import InvalidAuction, load_auction
    from dkw.clearing.rules import validate_auction

    response = pb.ValidateResponse()
    try:
        doc, _, sha = request_document(request)
        response.input_sha256 = sha
        auction = load_auction(doc, input_sha256=sha)
    except InvalidAuction as exc:
        response.valid = False
        response.problems.extend(pb.Problem(path=p.path, message=p.message) for p in exc.problems)
        return response
    response.valid = True
    response.bids = len(auction.bids)
    response.requirements = len(auction.requirements)
    rules = validate_auction(auction, policy).to_document()
    response.verdicts.extend(bid_verdicts(rules["bids"]))
    response.market_rules.update(json.loads(json.dumps({k: v for k, v in rules.items() if k != "bids"})))
    return response
