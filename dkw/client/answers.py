"""What the client's methods return: plain dataclasses read from the messages, so a caller needs no protobuf."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dkw.server.convert import response_document
from dkw.v1 import clearing_pb2 as pb

#: The states an auction ends in.
FINISHED = ("DONE", "FAILED", "CANCELLED")
#: Result statuses `dkw clear` and `dkw watch` count as a clearing (exit 0).
CLEARED = ("OPTIMAL", "TIME_LIMIT_FEASIBLE")


@dataclass(frozen=True)
class Result:
    """An auction's state and, when there is one, its result: `document` (read from `result_json`, the
    exact bytes the server signed, with the JWS as its `signature` block) and `result_signature`."""

    auction_id: str
    state: str
    reason: str = ""
    document: dict[str, Any] | None = None
    result_json: bytes = b""
    result_signature: str = ""

    @classmethod
    def of(cls, response: pb.ClearResponse | pb.ClearingProgress) -> Result:
        has = response.HasField("result")
        message = getattr(response, "reason", "") or getattr(response, "message", "")
        return cls(response.auction_id, pb.AuctionState.Name(response.state), message,
                   response_document(response) if has else None, response.result_json, response.result_signature)

    def signature_problem(self, public_key: Any) -> str | None:
        """None when `result_signature` is a valid signature over `result_json` by `public_key` (a key
        object, or the path of a PEM file), otherwise why not."""
        from dkw.clearing.signing import check_detached, load_public_key

        key = load_public_key(public_key) if isinstance(public_key, str | os.PathLike) else public_key
        if not self.result_json:
            return "the answer carries no result_json"
        if not self.result_signature:
            return "the answer carries no result_signature (the server has no signing key)"
        return check_detached(self.result_json, self.result_signature, key)


@dataclass(frozen=True)
class Submitted:
    auction_id: str
    input_sha256: str
    state: str
    created: bool  # False: the key named an auction stored before (this call stored nothing)
    idempotency_key: str


@dataclass(frozen=True)
class Progress:
    """One WatchClearing event; `result` is set on the last one when the auction has a result."""

    auction_id: str
    phase: str  # QUEUED, VALIDATING, BUILDING, SOLVING, PRICING, DONE, FAILED, CANCELLED
    state: str
    elapsed_s: float
    incumbent_yen: float | None
    bound_yen: float | None
    gap: float | None
    message: str
    result: Result | None = None

    @property
    def finished(self) -> bool:
        return self.phase in FINISHED


@dataclass(frozen=True)
class AuctionInfo:
    auction_id: str
    document_auction_id: str
    trading_date: str
    input_sha256: str
    received_at: datetime
    state: str
    reason: str
    idempotency_key: str
    attempts: int
    status: str  # of the stored result; "" without one
    objective_yen: float | None
    mip_gap: float | None
    solve_seconds: float
    solver: str

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "received_at": self.received_at.isoformat()}


@dataclass(frozen=True)
class Validation:
    valid: bool
    problems: list[tuple[str, str]]  # (path, message), as `dkw validate` prints them
    input_sha256: str
    bids: int = 0
    requirements: int = 0
    verdicts: list[dict[str, Any]] = field(default_factory=list)  # bids not ELIGIBLE, left out or flagged
    market_rules: dict[str, Any] = field(default_factory=dict)
