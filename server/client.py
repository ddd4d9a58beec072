"""What every client of `dkw serve` shares: the channel options (message limits, the retry policy), the
one mapping from a gRPC status to a command's exit code, and the one-line refusal. The client itself is
dkw.client (`Client`), which the remote commands (dkw/remote_commands.py, `dkw clear --server`) use.
"""

from __future__ import annotations

import json

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from dkw import cli

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
MESSAGE_LIMITS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_metadata_size", 1024 * 1024),  # room for the field violations of an invalid auction
]
CHANNEL_OPTIONS = [
    *MESSAGE_LIMITS,
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


#: The exit code of a command whose call ended with this gRPC status (dkw/cli.py lists the codes); any
#: other status is EXIT_FAILED.
EXIT_FOR_CODE = {
    grpc.StatusCode.INVALID_ARGUMENT: cli.EXIT_BAD_INPUT,
    grpc.StatusCode.UNAVAILABLE: cli.EXIT_UNREACHABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED: cli.EXIT_UNREACHABLE,
    grpc.StatusCode.UNAUTHENTICATED: cli.EXIT_UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED: cli.EXIT_PERMISSION_DENIED,
    grpc.StatusCode.NOT_FOUND: cli.EXIT_NOT_FOUND,
    grpc.StatusCode.RESOURCE_EXHAUSTED: cli.EXIT_BUSY,
}
#: What to do about a refusal, after the server's own words.
HINTS = {
    grpc.StatusCode.UNAUTHENTICATED: "give a current token (--token or DKW_TOKEN; `dkw clients add` on the server "
                                     "makes or rotates one)",
    grpc.StatusCode.PERMISSION_DENIED: "use a client whose role may (docs/security.md: Roles)",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "still busy after the retries; try again later",
    grpc.StatusCode.UNAVAILABLE: "still unavailable after the retries; check the server and try again",
    grpc.StatusCode.DEADLINE_EXCEEDED: "no answer before the deadline",
}


def exit_code_for(code: grpc.StatusCode | None) -> int:
    """The one mapping from a call's gRPC status to a command's exit code, for every remote command."""
    return EXIT_FOR_CODE.get(code, cli.EXIT_FAILED)


class RemoteFailed(RuntimeError):
    """The server could not be reached or refused the call: one line to show, and the exit code."""

    def __init__(self, message: str, exit_code: int = cli.EXIT_FAILED):
        super().__init__(message)
        self.exit_code = exit_code

    @classmethod
    def of(cls, target: str, error: grpc.RpcError) -> RemoteFailed:
        code = error.code()
        details = " ".join((error.details() or "").split())  # one line, whatever the server wrote
        hint = HINTS.get(code)
        name = code.name if code is not None else "UNKNOWN"
        if "dkw" in details:  # the server's message says what to do already
            hint = None
        return cls(f"server {target}: {name}: {details}" + (f"; {hint}" if hint else ""), exit_code_for(code))
