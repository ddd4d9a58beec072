"""The solver boundary: options in; progress events, status and a solution out. Imports no solver.

Everything above `solvers/` (the engine, the CLI, the server, replay) talks to the solvers through this
module, so a command that never solves (`dkw validate`, `dkw verify`, the gRPC main process) never loads
Pyomo or highspy. The back-ends behind it (`solvers.straight`, `solvers.fast`) import them on first use.

A solution is a vector over the columns of the one column layout (`clearing.formulation.Columns`) and,
where pricing succeeded, a dual per row of its stacked constraint families.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

DEFAULT_MIP_REL_GAP = 1e-6
#: Every clearing is bounded unless the caller says otherwise (`dkw clear`, `dkw replay`, the service):
#: at the limit it ends with the best incumbent and the best proven bound (TIME_LIMIT_FEASIBLE).
DEFAULT_TIME_LIMIT_S = 300.0
METHODS = ("fast", "straight")
#: `memory_limit_mb`: branch-and-bound is stopped once the RSS passes this share of the ceiling. The guard
#: (solvers/highs.py, MemoryGuard) reads the RSS only when HiGHS checks for an interrupt, seconds apart, and
#: at 200,000 bids the RSS rose by up to another 207 MB after the reading that stopped it; that, and the
#: pricing LP after it, must fit in the rest (docs/performance.md, fifth round).
MEMORY_GUARD_SHARE = 0.8
#: A MIP start violating a bound, a row or integrality by more than this is not a solution (it is not
#: handed to HiGHS, nor kept when a solve stops before taking it in).
START_TOLERANCE = 1e-6


@dataclass(frozen=True, slots=True)
class SolveOptions:
    """What a caller may set. `time_limit_s`: DEFAULT_TIME_LIMIT_S unless given; None: no limit.
    `threads` None: HiGHS's default."""

    time_limit_s: float | None = DEFAULT_TIME_LIMIT_S
    mip_rel_gap: float = DEFAULT_MIP_REL_GAP
    threads: int | None = None
    highs_options: Mapping[str, Any] = field(default_factory=dict)
    #: "fast": the arrays, split into independent components, reduced and warm-started (solvers/fast.py);
    #: "straight": the Pyomo model of the same formulation, solved whole (solvers/straight.py). Both reach
    #: the same proven optimum.
    method: str = "fast"
    #: fast path only: hand HiGHS a MIP start (clearing/warmstart.py, and the LP roundings of solvers/fast.py)
    warm_start: bool = True
    #: a ceiling on the clearing's memory (MB, resident, the process and its children): branch-and-bound
    #: stops with its best incumbent and bound once the RSS passes a share of it (solvers/highs.py,
    #: MemoryGuard); None: no ceiling. HiGHS has no memory limit of its own, and its branch-and-bound is
    #: what grows (200,000 bids: about 1 GB in its first 150-190 s, all at the root).
    memory_limit_mb: float | None = None

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method {self.method!r} must be 'fast' or 'straight'")
        if self.time_limit_s is not None and not (self.time_limit_s > 0 and math.isfinite(self.time_limit_s)):
            raise ValueError(f"time limit {self.time_limit_s!r} must be a positive number of seconds")
        if not (0 <= self.mip_rel_gap < 1):
            raise ValueError(f"relative gap {self.mip_rel_gap!r} must be in [0, 1)")
        if self.memory_limit_mb is not None and not (self.memory_limit_mb > 0 and math.isfinite(self.memory_limit_mb)):
            raise ValueError(f"memory limit {self.memory_limit_mb!r} must be a positive number of MB")

    def less_time(self, seconds: float) -> SolveOptions:
        """These options with `seconds` less time (no limit stays none; at least HiGHS's 0.01 s): what a
        back-end's own setup (reductions, MIP start, model compilation) spent counts against the limit."""
        if self.time_limit_s is None:
            return self
        return replace(self, time_limit_s=max(0.01, self.time_limit_s - seconds))

    def highs_settings(self) -> dict[str, Any]:
        """These options as HiGHS option values (quiet, seeded; `highs_options` last, so they win)."""
        settings: dict[str, Any] = {"output_flag": False, "random_seed": 0, "mip_rel_gap": self.mip_rel_gap}
        if self.time_limit_s is not None:
            settings["time_limit"] = float(self.time_limit_s)
        if self.threads is not None:
            settings["threads"] = int(self.threads)
        settings.update(self.highs_options)
        return settings

    def describe(self) -> dict[str, Any]:
        """What the result document reports under `solver.options`."""
        described = {"time_limit_s": self.time_limit_s, "mip_rel_gap": self.mip_rel_gap, "threads": self.threads,
                     "method": self.method, **dict(self.highs_options)}
        if self.memory_limit_mb is not None:
            described["memory_limit_mb"] = self.memory_limit_mb
        return described


@dataclass(frozen=True, slots=True)
class Progress:
    """A snapshot of a running clearing, for progress bars and the WatchClearing stream."""

    phase: str  # validating | building | solving | pricing | done
    elapsed_s: float = 0.0
    incumbent: float | None = None
    bound: float | None = None
    gap: float | None = None
    message: str = ""


ProgressCallback = Callable[[Progress], None]


class SolveCancelled(RuntimeError):
    """The caller cancelled the solve before a result existed."""


@dataclass(slots=True)
class SolveOutcome:
    """How a solve ended, in the result document's terms."""

    status: str  # OPTIMAL | TIME_LIMIT_FEASIBLE | TIME_LIMIT_NO_SOLUTION | CANCELLED | ERROR
    objective: float | None
    bound: float | None
    gap: float | None
    seconds: float
    nodes: int
    has_solution: bool
    message: str = ""


@dataclass
class Solution:
    """What a back-end returns: the outcome, the column values and the row duals (None: not priced)."""

    outcome: SolveOutcome
    x: np.ndarray | None
    row_dual: np.ndarray | None
    #: seconds spent turning the model into the solver's form before the solve (counted as build time)
    setup_seconds: float = 0.0
    pricing_seconds: float = 0.0
    #: fast path: one entry per independent component (columns, rows, integers, status, seconds, nodes)
    components: list[dict[str, Any]] = field(default_factory=list)
    #: fast path: the caller's start hint was the MIP start (feasible, cheaper than the greedy start)
    start_hint_used: bool = False


def time_limit(text: str) -> float | None:
    """A time limit as the command line takes it: seconds, or "none" for no limit (argparse `type`)."""
    if text.strip().lower() in ("none", "inf", "unlimited"):
        return None
    value = float(text)
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"time limit {text!r} must be a positive number of seconds or 'none'")
    return value


def relative_gap(objective: float | None, bound: float | None) -> float | None:
    """|primal − dual| / max(|primal|, 1), HiGHS's definition; None where either is unknown."""
    if objective is None or bound is None or not math.isfinite(bound):
        return None
    return abs(objective - bound) / max(abs(objective), 1.0)
