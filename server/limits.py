"""Limits the server sets, not the client: the figures of a request's SolveOptions that hold a worker.

A request's time limit, threads, gap and method are checked against this server's bounds before anything
is stored; a figure out of bounds (Infinity, NaN, zero or negative, above the maximum) is refused with
INVALID_ARGUMENT and a google.rpc.BadRequest field violation naming the field (`options.time_limit_s`) and
the bound, never clamped silently. A request without a time limit gets the server's default. The memory
ceiling is the server's alone (`dkw serve --memory-limit`): the API carries none. docs/api.md lists them.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import grpc

from dkw.server.refusals import invalid_argument
from dkw.solvers.api import DEFAULT_TIME_LIMIT_S, METHODS, SolveOptions

#: `dkw serve --max-time-limit`: the longest a request may ask one clearing to run.
DEFAULT_MAX_TIME_LIMIT_S = 3600.0


def cores() -> int:
    """The cores this process may use (its CPU affinity where the platform has one)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


@dataclass(frozen=True)
class Limits:
    """This server's bounds on a request's options (`dkw serve --default-time-limit`, `--max-time-limit`,
    `--max-threads`); the constructor refuses bounds that contradict each other, naming the flag."""

    default_time_limit_s: float = DEFAULT_TIME_LIMIT_S
    max_time_limit_s: float = DEFAULT_MAX_TIME_LIMIT_S
    max_threads: int = 0  # 0: the cores this process may use

    def __post_init__(self) -> None:
        if not (math.isfinite(self.max_time_limit_s) and self.max_time_limit_s > 0):
            raise ValueError(f"--max-time-limit {self.max_time_limit_s:g} must be a positive number of seconds")
        if not (math.isfinite(self.default_time_limit_s) and 0 < self.default_time_limit_s <= self.max_time_limit_s):
            raise ValueError(f"--default-time-limit {self.default_time_limit_s:g} must be above 0 and at most "
                             f"--max-time-limit {self.max_time_limit_s:g}")
        if self.max_threads < 0:
            raise ValueError(f"--max-threads {self.max_threads} must be at least 1 (0: the machine's cores)")
        if self.max_threads == 0:
            object.__setattr__(self, "max_threads", cores())

    def check_threads(self, threads: int | None) -> None:
        """Refuse a `dkw serve --threads` the server would refuse from a request."""
        if threads is not None and not 1 <= threads <= self.max_threads:
            raise ValueError(f"--threads {threads} must be in 1..{self.max_threads} (--max-threads)")

    def solve_options(self, message: Any, default_threads: int | None = None,
                      memory_limit_mb: float | None = None) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        """(the options for the worker, [(field, why) for each figure out of bounds]) of a SolveOptions
        message; the options are meaningful only when the list is empty."""
        problems: list[tuple[str, str]] = []
        limit = self.default_time_limit_s
        if message.HasField("time_limit_s"):
            limit = message.time_limit_s
            why = self._time_limit_problem(limit)
            if why:
                problems.append(("options.time_limit_s", why))
        threads = default_threads
        if message.HasField("threads"):
            threads = message.threads
            if not 1 <= threads <= self.max_threads:
                problems.append(("options.threads", f"{threads} threads: must be in 1..{self.max_threads} (this "
                                 "server's --max-threads); leave it out for the server's choice"))
        options: dict[str, Any] = {"time_limit_s": limit, "threads": threads}
        if message.HasField("mip_rel_gap"):
            gap = message.mip_rel_gap
            if not (math.isfinite(gap) and 0 <= gap < 1):
                problems.append(("options.mip_rel_gap", f"{_text(gap)}: the relative gap must be a number in [0, 1)"))
            options["mip_rel_gap"] = gap
        if message.HasField("method"):
            if message.method not in METHODS:
                problems.append(("options.method", f"{message.method!r} is not a method: one of {', '.join(METHODS)}"))
            options["method"] = message.method
        if memory_limit_mb is not None:
            options["memory_limit_mb"] = memory_limit_mb
        if not problems:
            try:  # the solver's own checks, so nothing it would refuse gets stored
                SolveOptions(**options)
            except (ValueError, TypeError) as exc:
                problems.append(("options", str(exc)))
        return options, problems

    def _time_limit_problem(self, limit: float) -> str | None:
        bounds = (f"give seconds in (0, {self.max_time_limit_s:g}] (this server's --max-time-limit), or leave "
                  f"it out for the default of {self.default_time_limit_s:g} s")
        if not math.isfinite(limit):
            return f"{_text(limit)} is not a time limit: {bounds}"
        if limit <= 0:
            return f"{limit:g} s must be above 0: {bounds}"
        if limit > self.max_time_limit_s:
            return f"{limit:g} s is above this server's maximum of {self.max_time_limit_s:g} s: {bounds}"
        return None


def _text(value: float) -> str:
    """A figure as JSON clients write it (grpcurl: "Infinity", "NaN")."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return f"{value:g}"


def refuse(context: grpc.ServicerContext, problems: list[tuple[str, str]]) -> None:
    """Abort with INVALID_ARGUMENT and one google.rpc.BadRequest field violation per figure out of bounds."""
    message = "; ".join(f"{field}: {why}" for field, why in problems)
    invalid_argument(context, problems, f"nothing was stored: {message}")


def options_from_message(message: Any, context: grpc.ServicerContext, default_threads: int | None,
                         memory_limit_mb: float | None = None, bounds: Limits | None = None) -> dict[str, Any]:
    """The request's options as a dict for the worker, within this server's bounds (absent time limit →
    the server's default; out of bounds → INVALID_ARGUMENT naming the field); the server's memory ceiling
    per clearing (`dkw serve --memory-limit`) added where it has one."""
    options, problems = (bounds or Limits()).solve_options(message, default_threads, memory_limit_mb)
    if problems:
        refuse(context, problems)
    return options


def add_arguments(p: Any) -> None:
    """`dkw serve`'s flags for the bounds."""
    p.add_argument("--default-time-limit", type=float, default=DEFAULT_TIME_LIMIT_S, metavar="S",
                   help=f"the time limit of a request that sends none (default {DEFAULT_TIME_LIMIT_S:g})")
    p.add_argument("--max-time-limit", type=float, default=DEFAULT_MAX_TIME_LIMIT_S, metavar="S",
                   help="the longest time limit a request may ask for; above it, Infinity or NaN: "
                   f"INVALID_ARGUMENT (default {DEFAULT_MAX_TIME_LIMIT_S:g})")
    p.add_argument("--max-threads", type=int, default=0, metavar="N",
                   help="the most HiGHS threads a request may ask for (default: this machine's cores)")


def from_args(args: Any) -> Limits:
    return Limits(args.default_time_limit, args.max_time_limit, args.max_threads)
