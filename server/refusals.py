"""How a call asking for what cannot be done is refused: INVALID_ARGUMENT with a google.rpc.BadRequest,
one field violation per problem (`field` the path, `description` the same text the CLI prints), so any
gRPC client can show each problem beside the field it names."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from dkw.clearing.document import Problem

#: Trailing metadata is limited (8 KiB by default in many clients): field violations beyond this many
#: bytes are summed up in one last violation; Validate returns every problem in its response body.
MAX_VIOLATION_BYTES = 6000


def invalid_argument(context: grpc.ServicerContext, violations: list[tuple[str, str]], message: str) -> None:
    """Abort the call with INVALID_ARGUMENT, `message`, and the (field, description) violations."""
    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.BadRequest(field_violations=[
        error_details_pb2.BadRequest.FieldViolation(field=field, description=why) for field, why in violations]))
    context.abort_with_status(rpc_status.to_status(status_pb2.Status(
        code=code_pb2.INVALID_ARGUMENT, details=[detail], message=message)))


def bad_request(context: grpc.ServicerContext, problems: list[Problem], what: str) -> None:
    """An invalid auction: every problem as a violation, up to MAX_VIOLATION_BYTES, then a count of the rest."""
    violations, size = [], 0
    for i, p in enumerate(problems):
        size += len(p.path) + len(p.message) + 8
        if size > MAX_VIOLATION_BYTES:
            violations.append(("", f"... and {len(problems) - i} more problem(s); Validate lists them all"))
            break
        violations.append((p.path, p.message))
    first = str(problems[0]) if problems else ""
    invalid_argument(context, violations, f"{what}: {len(problems)} problem(s), nothing was cleared; first: {first}")
