"""The solver boundary: options in; progress events, status and a solution out. Imports no solver.

Everything above `solvers/` (the engine, the CLI, the server, replay) talks to the solvers through this
module, so a command that never solves (`dkw validate`, `dkw verify`, the gRPC main process) never loads
Pyomo or highspy. The back-ends behind it (`dkw.solvers.straight`, `dkw.solvers.fastpath`) import them on first use.

A solve ends as one `SolveOutcome`: the status, the figures, a point over the columns of the one column
layout (`dkw.clearing.formulation.Columns`) and, on the fast path, one `ComponentReport` per independent
component, from which the human message is rendered (never parsed back).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import TYPE_CHECKING, Any

from dkw.solvers.tuning import FastPathTuning

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
    #: "fast": the arrays, split into independent components, reduced and warm-started (solvers/fastpath/);
    #: "straight": the Pyomo model of the same formulation, solved whole (solvers/straight.py). Both reach
    #: the same proven optimum.
    method: str = "fast"
    #: fast path only: hand HiGHS a MIP start (solvers/fastpath/starts.py: greedy, LP roundings, polished)
    warm_start: bool = True
    #: a ceiling on the clearing's memory (MB, resident, the process and its children): branch-and-bound
    #: stops with its best incumbent and bound once the RSS passes a share of it (solvers/highs.py,
    #: MemoryGuard); None: no ceiling. HiGHS has no memory limit of its own, and its branch-and-bound is
    #: what grows (200,000 bids: about 1 GB in its first 150-190 s, all at the root).
    memory_limit_mb: float | None = None
    #: the fast path's knobs (solvers/tuning.py); not part of the result document's options
    tuning: FastPathTuning = FastPathTuning()

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


class SolveStatus(str, Enum):
    """How a solve ended, in the result document's terms (the values are the document's strings)."""

    OPTIMAL = "OPTIMAL"
    TIME_LIMIT_FEASIBLE = "TIME_LIMIT_FEASIBLE"
    TIME_LIMIT_NO_SOLUTION = "TIME_LIMIT_NO_SOLUTION"
    CANCELLED = "CANCELLED"
    ERROR = "ERROR"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def at_limit(cls, has_solution: bool) -> SolveStatus:
        """Stopped by the time limit (or an interrupt), with or without a point."""
        return cls.TIME_LIMIT_FEASIBLE if has_solution else cls.TIME_LIMIT_NO_SOLUTION


@dataclass(frozen=True, slots=True)
class CutsReport:
    """What the Gomory cut rounds did on a component (solvers/fastpath/cuts.py)."""

    count: int
    seconds: float
    first_bound: float | None  # the LP relaxation's bound; None: the LP did not solve
    bound: float | None  # the bound after the rounds (and the relaxation's, whichever is higher)

    def text(self) -> str:
        if self.first_bound is None:
            return "Gomory cuts: the LP did not solve"
        return f"{self.count} Gomory cuts in {self.seconds:.0f} s, LP bound {self.first_bound:,.0f} → {self.bound:,.0f}"


@dataclass(frozen=True, slots=True)
class SearchReport:
    """What the neighbourhood search did on a component (solvers/fastpath/search.py). `summary`: its
    statistics' text, "" when a search beside branch-and-bound sent no report in time; `beside`: it ran in
    a process beside branch-and-bound, which then found `branch_and_bound_best` (None: no point)."""

    summary: str
    beside: bool = False
    best: float | None = None
    branch_and_bound_best: float | None = None

    def text(self) -> str:
        if not self.beside:
            return self.summary
        # a search process that had not reported when branch-and-bound ended (a loaded machine: it gets
        # half a second) still ran: the message says so rather than leaving it out
        ran = self.summary or "neighbourhood search (no report in time)"
        other = "branch-and-bound none" if self.branch_and_bound_best is None else \
            f"branch-and-bound's {self.branch_and_bound_best:,.0f}"
        return f"{ran} beside branch-and-bound (its best {self.best:,.0f}; {other})"


@dataclass(slots=True)
class ComponentReport:
    """One independent component's solve, as data: its size, how it ended, where its time went."""

    columns: int
    rows: int
    integers: int
    status: SolveStatus = SolveStatus.ERROR
    #: (what, seconds) per phase in order: LP relaxation and roundings, polishing, cuts, search, branch-and-bound
    phases: list[tuple[str, float]] = field(default_factory=list)
    cuts: CutsReport | None = None
    search: SearchReport | None = None
    #: why the solve stopped before its time limit, when something other than HiGHS stopped it (the memory
    #: ceiling: `MemoryGuard.reason`); "" otherwise
    stopped_by: str = ""

    def notes(self) -> list[str]:
        """The cut rounds' and the search's summaries, for the solver message."""
        return [part.text() for part in (self.cuts, self.search) if part is not None]


def termination_text(reports: list[ComponentReport]) -> str:
    """The fast path's solver message, rendered from its component reports."""
    message = f"{len(reports)} component(s): " + ", ".join(sorted({str(r.status) for r in reports}))
    notes = [note for r in reports for note in r.notes()]
    if notes:
        message += "; " + "; ".join(notes)
    stopped_by = [r.stopped_by for r in reports if r.stopped_by]
    if stopped_by:  # why a component stopped before its time limit (the first such)
        message += f" ({stopped_by[0]})"
    return message


@dataclass(slots=True)
class SolveOutcome:
    """What a back-end returns: how the solve ended in the result document's terms, and its point `x` over
    the model's columns (None: none found). `priced`: the LP with the point's integers fixed solved, and
    its values replaced the MIP's (the figures the engine prices from, clearing/exact.py)."""

    status: SolveStatus
    objective: float | None
    bound: float | None
    gap: float | None
    seconds: float
    nodes: int
    x: np.ndarray | None = None
    priced: bool = False
    message: str = ""
    #: seconds spent turning the model into the solver's form before the solve (counted as build time)
    setup_seconds: float = 0.0
    pricing_seconds: float = 0.0
    #: fast path: one report per independent component, in the order they finished
    components: list[ComponentReport] = field(default_factory=list)

    #: fast path: a start handed in by the caller (a draining replica's incumbent) was the MIP start
    start_hint_used: bool = False

    @property
    def has_solution(self) -> bool:
        return self.x is not None


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
