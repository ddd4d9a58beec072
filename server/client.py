"""`dkw clear AUCTION.json --server HOST:PORT`: the same command, cleared by a running `dkw serve`.

The file's bytes are sent as they are (`auction_json`), so the server stores and hashes exactly what the
CLI would; the answer is written as the same result document and summary as an in-process clear, and
verified here, independently of the server, before the exit code is chosen.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from dkw.cli import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK
from dkw.v1 import clearing_pb2 as pb
from dkw.v1 import clearing_pb2_grpc as pb_grpc
from server.convert import result_document, result_from_document
from solvers.highs import SolveOptions

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
#: Retries of calls a server refused for now: UNAVAILABLE (a replica restarting, a connection reset) and
#: RESOURCE_EXHAUSTED (every worker busy, the queue full), with exponential backoff. gRPC applies it to
#: every method of the service; the README shows the same config for other clients.
SERVICE_CONFIG = {
    "methodConfig": [{
        "name": [{"service": "dkw.v1.Clearing"}],
        "retryPolicy": {
            "maxAttempts": 5,
            "initialBackoff": "0.5s",
            "maxBackoff": "8s",
            "backoffMultiplier": 2,
            "retryableStatusCodes": ["UNAVAILABLE", "RESOURCE_EXHAUSTED"],
        },
    }],
}
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_metadata_size", 1024 * 1024),  # room for the field violations of an invalid auction
    ("grpc.enable_retries", 1),
    ("grpc.service_config", json.dumps(SERVICE_CONFIG)),
    # a call is retried only while its request fits the retry buffer (256 KiB by default): national
    # auctions are megabytes
    ("grpc.per_rpc_retry_buffer_size", MAX_MESSAGE_BYTES),
    ("grpc.retry_buffer_size", 4 * MAX_MESSAGE_BYTES),
]


def connect(target: str) -> grpc.Channel:
    """A channel to `dkw serve` with the message size limits raised like the server's, retrying calls
    refused with UNAVAILABLE or RESOURCE_EXHAUSTED (`SERVICE_CONFIG`)."""
    return grpc.insecure_channel(target, options=CHANNEL_OPTIONS)


def options_message(options: SolveOptions) -> pb.SolveOptions:
    message = pb.SolveOptions(mip_rel_gap=options.mip_rel_gap, method=options.method)
    if options.time_limit_s is not None:
        message.time_limit_s = options.time_limit_s
    if options.threads is not None:
        message.threads = options.threads
    return message


def field_violations(error: grpc.RpcError) -> list[tuple[str, str]]:
    """The google.rpc.BadRequest field violations of an INVALID_ARGUMENT error, as (field, description)."""
    status = rpc_status.from_call(error)
    if status is None:
        return []
    out = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            out.extend((v.field, v.description) for v in bad.field_violations)
    return out


def clear_remote(args: argparse.Namespace, options: SolveOptions) -> int:
    from dkw.commands import read_auction, write_json

    path = args.auction
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        print(f"{path}: cannot read: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    with connect(args.server) as channel:
        stub = pb_grpc.ClearingStub(channel)
        try:
            response = stub.Clear(pb.ClearRequest(auction_json=data, options=options_message(options)))
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
                violations = field_violations(exc)
                if violations:
                    print(f"{path}: {len(violations)} problem(s), nothing was cleared:", file=sys.stderr)
                    for field, description in violations:
                        print(f"  {field}: {description}" if field else f"  {description}", file=sys.stderr)
                else:
                    print(f"{path}: {exc.details()}", file=sys.stderr)
                return EXIT_BAD_INPUT
            print(f"dkw: server {args.server}: {exc.code().name}: {exc.details()}", file=sys.stderr)
            return EXIT_FAILED

    doc = result_document(response.result)
    result = result_from_document(doc)
    auction = read_auction(path)  # the server accepted it, so this only fails if the file changed meanwhile
    if auction is None:
        return EXIT_BAD_INPUT
    from clearing.verify import verify_result

    problems = verify_result(auction, doc, excluded={r.bid for r in result.rejected_bids})
    write_json(doc, args.output)
    if not args.quiet:
        out = sys.stderr if args.output in (None, "-") else sys.stdout
        print(result.summary_text(), file=out)
        print(f"  cleared by {args.server}, stored as {response.auction_id}", file=out)
    if problems:
        print(f"verification failed ({len(problems)} problems):", file=sys.stderr)
        for p in problems[:20]:
            print(f"  {p}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK if result.status in ("OPTIMAL", "TIME_LIMIT_FEASIBLE") else EXIT_FAILED


def cancel_remote(target: str, auction_id: str, reason: str = "") -> pb.ClearResponse:
    """Ask the `dkw serve` at `target` (any replica) to cancel `auction_id`; the state it ended in.
    Raises grpc.RpcError (NOT_FOUND for an unknown id)."""
    with connect(target) as channel:
        return pb_grpc.ClearingStub(channel).CancelClearing(pb.CancelRequest(auction_id=auction_id, reason=reason),
                                                            timeout=60)
