"""The optimality gap over time, and its split against a reference optimum (issue 13).

A clearing's progress (`dkw.solvers.api.Progress`) is recorded as a trace of (seconds, incumbent, bound),
the whole auction's figures. From it: the proven gap at 10, 60 and 300 s, the time to a proven gap of
1e-4 and 1e-6, and, where `bench/reference.json` knows the document, the split of the gap in two: how far
the incumbent lies above the reference's best incumbent (the primal side) and how far the bound lies below
the reference's best bound (the dual side). With a proven reference optimum both are exact; with a
bracket they are what is known.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REFERENCE_FILE = Path(__file__).resolve().parent / "reference.json"
CHECKPOINTS_S = (10.0, 60.0, 300.0)
GAP_TARGETS = (1e-4, 1e-6)


def relative(a: float, b: float) -> float:
    return (a - b) / max(abs(b), 1.0)


def at(trace: list[list[float | None]], seconds: float) -> tuple[float | None, float | None] | None:
    """The (incumbent, bound) known at `seconds` (the last trace point not after it); None before any."""
    known = None
    for t, incumbent, bound in trace:
        if t > seconds:
            break
        known = (incumbent, bound)
    return known


def gap_of(incumbent: float | None, bound: float | None) -> float | None:
    if incumbent is None or bound is None:
        return None
    return max(0.0, incumbent - bound) / max(abs(incumbent), 1.0)


def time_to_gap(trace: list[list[float | None]], target: float) -> float | None:
    for t, incumbent, bound in trace:
        gap = gap_of(incumbent, bound)
        if gap is not None and gap <= target:
            return t
    return None


def load_references(path: Path = REFERENCE_FILE) -> dict[str, dict[str, Any]]:
    """The reference brackets by document key (`document_key`)."""
    if not path.exists():
        return {}
    return json.loads(path.read_text()).get("documents", {})


def document_key(bids: int, seed: int | None, document: str) -> str:
    return f"national-{seed}-{bids}" if document == "generated" else document


def split(incumbent: float | None, bound: float | None, reference: dict[str, Any] | None) -> dict[str, Any]:
    """How far `incumbent` is above the reference's best incumbent and `bound` below its best bound
    (relative to the reference incumbent; negative: better than the reference)."""
    if not reference:
        return {}
    out: dict[str, Any] = {}
    ref_inc, ref_bound = reference.get("incumbent"), reference.get("bound")
    if incumbent is not None and ref_inc is not None:
        out["incumbent_above_reference"] = relative(incumbent, ref_inc)
    if bound is not None and ref_bound is not None:
        out["bound_below_reference"] = (ref_bound - bound) / max(abs(ref_inc or ref_bound), 1.0)
    return out


def summarise(trace: list[list[float | None]], reference: dict[str, Any] | None) -> dict[str, Any]:
    """Gap and split at each checkpoint, and the times to the gap targets."""
    out: dict[str, Any] = {"checkpoints": {}}
    for seconds in CHECKPOINTS_S:
        known = at(trace, seconds)
        if known is None:
            out["checkpoints"][f"{seconds:g}"] = None
            continue
        incumbent, bound = known
        out["checkpoints"][f"{seconds:g}"] = {"incumbent": incumbent, "bound": bound, "gap": gap_of(incumbent, bound),
                                              **split(incumbent, bound, reference)}
    for target in GAP_TARGETS:
        out[f"time_to_gap_{target:g}"] = time_to_gap(trace, target)
    return out


def plot(rows: list[dict[str, Any]], path: Path) -> bool:
    """Gap against time per size (log scale), one line per fast run with a trace; False where matplotlib
    (a dependency, for replay's plots too) cannot be imported."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for row in rows:
        trace = (row.get("fast") or {}).get("trace") or []
        points = [(t, gap_of(i, b)) for t, i, b in trace if gap_of(i, b) is not None]
        points = [(t, max(g, 1e-7)) for t, g in points]
        if points:
            ax.step([t for t, _ in points], [g for _, g in points], where="post", label=f"{row['bids']:,} bids")
    ax.set_yscale("log")
    ax.set_xlabel("seconds since the document arrived")
    ax.set_ylabel("proven relative gap")
    ax.axhline(1e-6, color="grey", linestyle=":", linewidth=1)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    ax.set_title("dkw fast path: proven gap over time (national auctions, 2 cores)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True
