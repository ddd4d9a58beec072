"""Running HiGHS on a Pyomo model: options in, status + values + timings out.

Uses Pyomo's persistent HiGHS interface (`pyomo.contrib.solver.solvers.highs.Highs`), so the same solver
instance is changed in place for the pricing LP (integers fixed) instead of rebuilding the model.
Progress comes from HiGHS's MIP callbacks; a `threading.Event` cancels a running solve.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import highspy
import numpy as np
import pyomo.environ as pyo
from pyomo.contrib.solver.solvers.highs import Highs

DEFAULT_MIP_REL_GAP = 1e-6


@dataclass(frozen=True, slots=True)
class SolveOptions:
    """What a caller may set. `time_limit_s` None: no limit. `threads` None: HiGHS's default."""

    time_limit_s: float | None = None
    mip_rel_gap: float = DEFAULT_MIP_REL_GAP
    threads: int | None = None
    highs_options: Mapping[str, Any] = field(default_factory=dict)
    #: "fast": the MILP as arrays, split into independent components, highspy (clearing/fastpath.py);
    #: "straight": the one Pyomo model (clearing/formulation.py). Both reach the same proven optimum.
    method: str = "fast"
    #: fast path only: hand HiGHS a merit-order greedy clearing as a MIP start (clearing/warmstart.py)
    warm_start: bool = True

    def __post_init__(self) -> None:
        if self.method not in ("fast", "straight"):
            raise ValueError(f"method {self.method!r} must be 'fast' or 'straight'")
        if self.time_limit_s is not None and not (self.time_limit_s > 0 and math.isfinite(self.time_limit_s)):
            raise ValueError(f"time limit {self.time_limit_s!r} must be a positive number of seconds")
        if not (0 <= self.mip_rel_gap < 1):
            raise ValueError(f"relative gap {self.mip_rel_gap!r} must be in [0, 1)")


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
    status: str  # OPTIMAL | TIME_LIMIT_FEASIBLE | TIME_LIMIT_NO_SOLUTION | CANCELLED | ERROR
    objective: float | None
    bound: float | None
    gap: float | None
    seconds: float
    nodes: int
    has_solution: bool
    message: str = ""


def highs_version() -> str:
    return f"{highspy.HIGHS_VERSION_MAJOR}.{highspy.HIGHS_VERSION_MINOR}.{highspy.HIGHS_VERSION_PATCH}"


def relative_gap(objective: float | None, bound: float | None) -> float | None:
    """HiGHS's definition: |primal − dual| / max(1, |primal|)... kept as |p − d| / max(|p|, 1)."""
    if objective is None or bound is None or not math.isfinite(bound):
        return None
    return abs(objective - bound) / max(abs(objective), 1.0)


class PyomoHighsSolver:
    """One model, one persistent HiGHS instance: solve the MIP, then price with integers fixed."""

    def __init__(self, model: pyo.ConcreteModel, options: SolveOptions,
                 progress: ProgressCallback | None = None, cancel: threading.Event | None = None):
        self.model = model
        self.options = options
        self.progress = progress
        self.cancel = cancel
        self.opt = Highs()
        self.opt.config.load_solutions = False
        self.opt.config.raise_exception_on_nonoptimal_result = False
        self._results = None
        self._started = 0.0
        self._last_report = 0.0
        self.transfer_seconds = 0.0
        self.priced = False

    def _solver_options(self) -> dict[str, Any]:
        opts: dict[str, Any] = {"output_flag": False, "random_seed": 0}
        opts.update(self.options.highs_options)
        return opts

    def _on_mip_event(self, event) -> None:
        if self.cancel is not None and self.cancel.is_set():
            event.interrupt()
        if self.progress is None:
            return
        now = time.perf_counter()
        if now - self._last_report < 0.2:
            return
        self._last_report = now
        out = event.data_out
        incumbent = out.mip_primal_bound if math.isfinite(out.mip_primal_bound) else None
        bound = out.mip_dual_bound if math.isfinite(out.mip_dual_bound) else None
        self.progress(Progress("solving", now - self._started, incumbent, bound,
                               relative_gap(incumbent, bound)))

    def solve(self) -> SolveOutcome:
        started = time.perf_counter()
        self.opt.set_instance(self.model)
        self.transfer_seconds = time.perf_counter() - started
        highs: highspy.Highs = self.opt._solver_model  # the persistent instance Pyomo drives
        if self.progress is not None or self.cancel is not None:
            highs.cbMipInterrupt.subscribe(self._on_mip_event)
        self._started = time.perf_counter()
        if self.cancel is not None and self.cancel.is_set():
            raise SolveCancelled("cancelled before solving")
        results = self.opt.solve(
            self.model, time_limit=self.options.time_limit_s, rel_gap=self.options.mip_rel_gap,
            threads=self.options.threads, solver_options=self._solver_options())
        self._results = results
        info = highs.getInfo()
        status = highs.getModelStatus()
        has_solution = info.primal_solution_status == 2
        objective = info.objective_function_value if has_solution else None
        bound = info.mip_dual_bound if info.mip_node_count >= 0 else objective
        gap = relative_gap(objective, bound)
        if status == highspy.HighsModelStatus.kOptimal:
            name = "OPTIMAL"
        elif self.cancel is not None and self.cancel.is_set():
            name = "CANCELLED"
        elif status in (highspy.HighsModelStatus.kTimeLimit, highspy.HighsModelStatus.kInterrupt):
            name = "TIME_LIMIT_FEASIBLE" if has_solution else "TIME_LIMIT_NO_SOLUTION"
        else:
            name = "ERROR"
        return SolveOutcome(name, objective, bound, gap, highs.getRunTime(), max(info.mip_node_count, 0),
                            has_solution, highs.modelStatusToString(status))

    def _column_values(self) -> np.ndarray:
        return np.asarray(self.opt._solver_model.getSolution().col_value)

    def values(self, var: pyo.Var) -> dict[Any, float]:
        """Primal values of an indexed variable from the last run, read straight off the HiGHS instance
        through Pyomo's variable → column map (a ComponentMap per call is slow at national scale)."""
        x = self._column_values()
        columns = self.opt._pyomo_var_to_solver_var_map
        return {idx: float(x[columns[id(v)]]) if id(v) in columns else 0.0 for idx, v in var.items()}

    def fix_integers_and_resolve(self) -> bool:
        """Fix every integer column at its rounded MIP value, make it continuous, and re-solve the LP in
        place. The LP's solution replaces the MIP's: it is exact in the binaries (no integrality-tolerance
        crumbs such as q = 0.0005 kW beside u = 5e-7) and its duals are the marginal prices (SPEC §1).
        Done on the HiGHS instance directly: fixing through Pyomo rebuilds every row that holds a fixed
        variable, minutes at 20k bids. False if the LP failed: read the MIP's values before calling this."""
        highs: highspy.Highs = self.opt._solver_model
        columns = self.opt._pyomo_var_to_solver_var_map
        integers = np.array(sorted(columns[id(v)] for v in self.model.component_data_objects(pyo.Var)
                                   if v.is_integer() and id(v) in columns), dtype=np.int32)
        if len(integers):
            fixed = np.round(self._column_values()[integers])
            highs.changeColsIntegrality(len(integers), integers,
                                        np.full(len(integers), highspy.HighsVarType.kContinuous))
            highs.changeColsBounds(len(integers), integers, fixed, fixed)
        # no time limit: the LP is cheap, and HiGHS would otherwise count the MIP's time against it
        highs.setOptionValue("time_limit", highspy.kHighsInf)
        highs.run()
        if highs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            return False
        self.priced = True
        return True

    def duals(self, constraint: pyo.Constraint) -> dict[Any, float]:
        """Duals of `constraint` after `fix_integers_and_resolve` succeeded; empty otherwise."""
        if not self.priced:
            return {}
        y = np.asarray(self.opt._solver_model.getSolution().row_dual)
        rows = self.opt._pyomo_con_to_solver_con_map
        return {idx: float(y[rows[c]]) for idx, c in constraint.items() if c in rows}
