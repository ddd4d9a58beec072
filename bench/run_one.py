"""One measured clearing, run in its own process so its peak RSS is its own.

    python -m dkw.bench.run_one AUCTION.json METHOD TIME_LIMIT_S [--progress] [--phases] [--random-seed K]
                                                                   [--memory-limit MB] [--highs-option NAME=VALUE]...
                                                                   [--threads N] [--no-warm-start] [--tuning NAME=VALUE]...

Prints one JSON object on stdout: timings (parse, build, solve, pricing, end to end: document bytes in →
result document bytes out), status, objective, gap, nodes, components, the process's peak RSS, and the
trace of the whole auction's incumbent and bound over time. `measure` is the parent's side: it starts this
in a child process and polls the child's process tree for its peak RSS (`dkw bench`, `dkw bench --mid-size`).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO_DIR = Path(__file__).resolve().parent.parent


def measure(path: Path, method: str, limit: float, show_progress: bool, options: Sequence[str] = ()) -> dict[str, Any]:
    """Run one clearing in a child process (this module, with `options`, e.g. --memory-limit MB); poll its
    process tree's RSS for the peak."""
    cmd = [sys.executable, "-m", "dkw.bench.run_one", str(path), method, str(limit), *options]
    if show_progress:
        cmd.append("--progress")
    return measure_command(cmd, method, limit, show_progress)


def median_over_seeds(path: Path, method: str, limit: float, show_progress: bool, options: list[str],
                      seeds: int) -> dict[str, Any]:
    """One run per HiGHS random seed 0..seeds-1; the median run by proven gap (of an even count, the worse of the
    middle two; a run without a gap counts as the worst), with every seed's figures under `seed_runs`. Why: at
    5,000 bids one seed's gap is a single draw from a spread as wide as the gap itself (docs/performance.md)."""
    runs = []
    for seed in range(seeds):
        row = measure(path, method, limit, show_progress, [*options, "--random-seed", str(seed)])
        row["random_seed"] = seed
        runs.append(row)
        print(f"{'':>7}      {method:>8} seed {seed}: {row.get('status')} gap {row.get('gap')}", file=sys.stderr)
    ranked = sorted(runs, key=lambda r: (r.get("gap") is None or r.get("status") == "CRASHED", r.get("gap") or 0.0))
    median = dict(ranked[len(ranked) // 2])
    median["seed_runs"] = [{key: r.get(key) for key in SEED_RUN_FIELDS} for r in runs]
    return median


#: What `median_over_seeds` keeps of each seed's run beside the median.
SEED_RUN_FIELDS = ("random_seed", "status", "objective_yen", "bound", "gap", "end_to_end_s", "peak_rss_mb")


def measure_command(cmd: list[str], method: str, limit: float, show_progress: bool) -> dict[str, Any]:
    """Run `cmd` (a child printing its JSON row last on stdout: this module, or a peer solver's runner,
    bench/peers.py) and poll its process tree's RSS for the peak."""
    import psutil

    from dkw.solvers.highs import tree_rss_mb

    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=None if show_progress else subprocess.PIPE,
                            cwd=str(REPO_DIR), text=True)
    peak = 0.0
    ps = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            peak = max(peak, tree_rss_mb(ps))
        except psutil.Error:
            pass
        time.sleep(0.05)
    out, err = proc.communicate()
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        return {"method": method, "status": "CRASHED", "error": (err or "")[-2000:], "wall_s": round(wall, 3)}
    row = json.loads(out.strip().splitlines()[-1])
    row["peak_rss_mb"] = round(max(peak, row["peak_rss_mb"] + row.get("peak_rss_children_mb", 0.0)), 1)
    row["wall_s"] = round(wall, 3)
    row["time_limit_s"] = limit
    return row


def option_value(text: str) -> bool | int | float | str:
    """A HiGHS option value from the command line: true/false, an int, a float, else the string."""
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def main(argv: list[str]) -> int:
    if len(argv) < 3 or "-h" in argv or "--help" in argv:  # the usage, not a traceback
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    path, method, limit = argv[0], argv[1], float(argv[2])
    show_progress = "--progress" in argv
    if "--phases" in argv:  # where the time goes: one line per step of each big component, on stderr
        import logging

        logging.basicConfig(level=logging.INFO, format="%(relativeCreated)8.0f ms %(message)s")
    started = time.perf_counter()
    from dkw.clearing.document import load_auction, parse_document
    from dkw.clearing.engine import clear
    from dkw.solvers.api import SolveOptions
    from dkw.solvers.tuning import FastPathTuning

    imported = time.perf_counter()
    raw = Path(path).read_bytes()
    t0 = time.perf_counter()
    auction = load_auction(parse_document(raw))
    del raw  # as `dkw clear` (51 MB at 200,000 bids, else counted in the peak through the solve)
    parsed = time.perf_counter()
    terminal = None
    if show_progress:
        from dkw.progress import TerminalProgress

        terminal = TerminalProgress()
    # the whole auction's incumbent and bound over time (seconds since the document was read), at each change
    trace: list[list[float | None]] = []

    def progress(p) -> None:
        if p.incumbent is not None or p.bound is not None:
            point = [round(p.elapsed_s + (parsed - t0), 3), p.incumbent, p.bound]
            if not trace or trace[-1][1:] != point[1:]:
                trace.append(point)
        if terminal is not None:
            terminal(p)

    # HiGHS's random_seed (default 0): mid-size benches vary it, one tree size being chance (bench/midsize.py)
    highs_options: dict[str, Any] = (
        {"random_seed": int(argv[argv.index("--random-seed") + 1])} if "--random-seed" in argv else {})
    # any HiGHS option for an experiment (docs/performance.md), e.g. --highs-option mip_allow_restart=false
    for k, arg in enumerate(argv):
        if arg == "--highs-option":
            name, _, value = argv[k + 1].partition("=")
            highs_options[name] = option_value(value)
    memory_limit = float(argv[argv.index("--memory-limit") + 1]) if "--memory-limit" in argv else None
    threads = int(argv[argv.index("--threads") + 1]) if "--threads" in argv else None
    # the fast path's knobs for an experiment, e.g. --tuning cut_min_integers=500 (solvers/tuning.py)
    tuning = FastPathTuning(**{argv[k + 1].partition("=")[0]: option_value(argv[k + 1].partition("=")[2])
                               for k, arg in enumerate(argv) if arg == "--tuning"})
    result = clear(auction, SolveOptions(time_limit_s=limit, method=method, highs_options=highs_options,
                                         memory_limit_mb=memory_limit, threads=threads, tuning=tuning,
                                         warm_start="--no-warm-start" not in argv), progress=progress)
    if terminal is not None:
        terminal.close()
    out = json.dumps(result.to_document()).encode()
    done = time.perf_counter()
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    info = result.solver
    print(json.dumps({
        "method": method, "status": result.status, "objective_yen": result.objective_yen,
        "gap": info.mip_gap, "bound": info.objective_bound, "nodes": info.nodes,
        "import_s": round(imported - started, 3), "parse_s": round(parsed - t0, 3),
        "build_s": round(info.build_seconds, 3), "solve_s": round(info.seconds, 3),
        "pricing_s": round(info.pricing_seconds, 3), "clear_s": round(info.total_seconds, 3),
        "end_to_end_s": round(done - t0, 3), "result_bytes": len(out), "awards": len(result.awards),
        "peak_rss_mb": round(own, 1), "peak_rss_children_mb": round(children, 1),
        "termination": info.termination, "memory_limit_mb": info.options.get("memory_limit_mb"), "trace": trace,
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
