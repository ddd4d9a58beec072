"""The exceptions of dkw.client: one class per kind of outcome a caller handles differently, each carrying
the gRPC code, the `dkw` exit code (dkw.server.client.exit_code_for) and the BadRequest field violations."""

from __future__ import annotations

import grpc

from dkw import cli
from dkw.server.client import RemoteFailed, exit_code_for, field_violations


class ClientError(Exception):
    """Anything that kept a call from its answer: `code` (the gRPC status, None for a local problem),
    `exit_code` (what a `dkw` command exits with, dkw/cli.py) and `violations` ((field, description) of a
    google.rpc.BadRequest)."""

    exit_code: int = cli.EXIT_FAILED

    def __init__(self, message: str, code: grpc.StatusCode | None = None, exit_code: int | None = None,
                 violations: list[tuple[str, str]] | None = None):
        super().__init__(message)
        self.code = code
        if exit_code is not None:
            self.exit_code = exit_code
        self.violations = violations or []

    @property
    def problems(self) -> list[str]:
        """The violations as `dkw` prints them: `field: description`, one per problem."""
        return [f"{f}: {d}" if f else d for f, d in self.violations] or [str(self)]


class ConfigError(ClientError):
    """A target or a TLS file that cannot be used (exit 2); nothing was sent."""

    exit_code = cli.EXIT_BAD_INPUT


class Unreachable(ClientError):
    """No replica can be reached, or it stayed UNAVAILABLE through the retries, or a deadline passed (exit 3)."""

    exit_code = cli.EXIT_UNREACHABLE


class InvalidRequest(ClientError):
    """INVALID_ARGUMENT: the auction or an option refused; `violations` names each field (exit 2)."""

    exit_code = cli.EXIT_BAD_INPUT


class Denied(ClientError):
    """UNAUTHENTICATED (exit 4: no, a wrong or a revoked token) or PERMISSION_DENIED (exit 5: the role may not)."""


class NotFound(ClientError):
    """NOT_FOUND: no such auction, or one of another client's (exit 6)."""

    exit_code = cli.EXIT_NOT_FOUND


class Busy(ClientError):
    """RESOURCE_EXHAUSTED through the retries: every worker busy, the queue full, the client at its limit (exit 7)."""

    exit_code = cli.EXIT_BUSY


class Failed(ClientError):
    """Any other refusal (ALREADY_EXISTS, INTERNAL, CANCELLED, FAILED_PRECONDITION ...), no result where one
    was asked for, or a signature that does not hold (exit 1)."""


ERROR_FOR_CODE: dict[grpc.StatusCode, type[ClientError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidRequest, grpc.StatusCode.UNAVAILABLE: Unreachable,
    grpc.StatusCode.DEADLINE_EXCEEDED: Unreachable, grpc.StatusCode.UNAUTHENTICATED: Denied,
    grpc.StatusCode.PERMISSION_DENIED: Denied, grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.RESOURCE_EXHAUSTED: Busy,
}


def error_of(target: str, exc: grpc.RpcError) -> ClientError:
    """The ClientError for a failed call, with the one line `dkw` prints (dkw.server.client.RemoteFailed)."""
    code = exc.code()
    cls = ERROR_FOR_CODE.get(code, Failed)
    violations = field_violations(exc) if code == grpc.StatusCode.INVALID_ARGUMENT else []
    return cls(str(RemoteFailed.of(target, exc)), code, exit_code_for(code), violations)
