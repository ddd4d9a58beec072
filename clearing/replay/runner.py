"""Replaying a directory of trading days under scenarios: clear, verify, write, summarise.

Work is one task per trading day × scenario (`run_task`, a pure function of picklable inputs), run in
this process, over a process pool (parallel over days, one HiGHS thread per task so workers do not fight
over the cores), or on a Dask cluster (`dask.distributed`; the workers need dkw installed). Tasks return
the result document and a compact record; only this process writes files, so workers need no shared
file system.

Output layout under OUTDIR:
  days/<date>/<scenario>.result.json     the verified result document (SPEC §4), plus a `replay` section
  days/<date>/<scenario>.auction.json    the auction as the scenario changed it (not for the baseline),
                                         so `dkw verify` can re-check any result on its own
  days/<date>/<scenario>.summary.json    the record the summary is built from; written last, it marks
                                         the day × scenario as done (resume skips it unless --force)
  summary.csv, days.csv, report.md, plots/*.png, eprx_comparison.csv (with --eprx)

A stored record counts as done only if it was made from the same source document (sha256 of the file)
and the same scenario name; a changed input day is cleared again.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import multiprocessing
import os
import sys
import time
from array import array
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dkw.clearing.document import InvalidAuction, document_sha256, load_auction, parse_document
from dkw.clearing.engine import clear
from dkw.clearing.replay.history import HISTORY, history_records
from dkw.clearing.replay.outcome import Day, ReplayOutcome
from dkw.clearing.replay.records import RECORD_FORMAT, load_finished, load_record, paths, write_days_csv, write_json
from dkw.clearing.replay.scenarios import BASELINE, ScenarioError, file_slug, parse_scenario
from dkw.clearing.replay.summary import (
    block_figures,
    block_figures_as_lists,
    summary_rows,
    with_baseline_deltas,
    write_summary_csv,
)
from dkw.clearing.rules import load_policy
from dkw.clearing.verify import verify_result
from dkw.solvers.api import DEFAULT_TIME_LIMIT_S, SolveOptions, SolveStatus

#: Result statuses that carry a solution (a time-limited one included, with its gap reported).
SOLVED = (SolveStatus.OPTIMAL, SolveStatus.TIME_LIMIT_FEASIBLE)


class ReplayInputError(ValueError):
    """The replay cannot start: bad directory, documents or scenario names. `problems`: one line each."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


class ReplayFailure(RuntimeError):
    """A day × scenario produced no verified result (no solution, or the independent check failed)."""


@dataclass(frozen=True)
class ReplayTask:
    """Everything a worker needs, picklable (the scenario travels by name). The day comes as a `path`
    the worker reads (and checks against `source_sha256`), so no process holds every day's document at
    once; or as a `document` already in memory."""

    trading_date: str
    scenario: str
    path: str | None
    source_sha256: str
    time_limit_s: float | None = DEFAULT_TIME_LIMIT_S
    mip_rel_gap: float = 1e-6
    threads: int | None = 1
    policy_file: str | None = None  # market policy merged over the shipped one (None: the shipped one)
    document: dict[str, Any] | None = None
    memory_limit_mb: float | None = None  # per clearing, so per worker (SolveOptions.memory_limit_mb)


@dataclass
class TaskOutcome:
    trading_date: str
    scenario: str
    result_document: dict[str, Any]
    scenario_document: dict[str, Any] | None  # None for the baseline (the input file is the auction)
    record: dict[str, Any]


@dataclass
class ReplayConfig:
    input_dir: Path
    out_dir: Path
    scenarios: list[str] = field(default_factory=lambda: [BASELINE])
    workers: int | None = None  # None: one per core, at most one per task
    force: bool = False
    dask_address: str | None = None
    eprx_files: list[Path] = field(default_factory=list)
    time_limit_s: float | None = DEFAULT_TIME_LIMIT_S
    mip_rel_gap: float = 1e-6
    threads: int | None = 1
    policy_file: Path | None = None
    memory_limit_mb: float | None = None  # the memory ceiling of each clearing (each worker's), None: none
    progress: bool = False  # a progress bar on stderr
    report: bool = True


# --- the work of one day × scenario (runs in a worker) -----------------------------------------------

def run_task(task: ReplayTask) -> TaskOutcome:
    """Apply the scenario, clear under the market rules, verify independently, and summarise. The bids
    the rules find ineligible stay out as in `dkw clear`; a scenario's exclusions come on top (a bid above
    its cap or already ineligible keeps that reason). Raises `ReplayFailure`."""
    scenario = parse_scenario(task.scenario)
    where = f"{task.trading_date} {task.scenario}"
    policy = load_policy(task.policy_file) if task.policy_file else None
    document = task.document if task.document is not None else _read_day(task)
    inp = scenario.apply(document, policy)
    sha = document_sha256(inp.document)  # input_sha256 as `dkw clear` gives it (the source file's is source_sha256)
    try:
        auction = load_auction(inp.document, input_sha256=sha)
    except InvalidAuction as exc:
        raise ReplayFailure(f"{where}: the scenario made an invalid auction: {exc.problems[0]}") from None
    options = SolveOptions(time_limit_s=task.time_limit_s, mip_rel_gap=task.mip_rel_gap, threads=task.threads,
                           memory_limit_mb=task.memory_limit_mb)
    result = clear(auction, options, also_left_out=inp.left_out, policy=policy)
    if result.status not in SOLVED:
        raise ReplayFailure(f"{where}: no result ({result.status}: {result.solver.termination})")
    result.extra["replay"] = {"scenario": task.scenario, "source_sha256": task.source_sha256,
                              "notes": list(inp.notes)}
    doc = result.to_document()
    problems = verify_result(auction, doc, left_out={r.bid for r in result.left_out},
                             policy_file=task.policy_file)
    if problems:
        shown = "; ".join(problems[:5])
        raise ReplayFailure(f"{where}: VERIFICATION FAILED ({len(problems)} problems): {shown}")
    record = {
        "format": RECORD_FORMAT, "trading_date": task.trading_date, "scenario": task.scenario,
        "source_sha256": task.source_sha256, "input_sha256": sha, "status": result.status,
        "objective_yen": result.objective_yen, "procurement_cost_yen": result.procurement_cost_yen,
        "startup_cost_yen": result.startup_cost_yen, "shortfall_penalty_yen": result.shortfall_penalty_yen,
        "payment_total_yen": result.payment_total_yen,
        "shortfall_kw": round(sum(s.kw for s in result.shortfalls), 6),
        "accepted_bids": len(result.awards), "left_out_bids": len(result.left_out),
        "mip_gap": result.solver.mip_gap, "solve_seconds": round(result.solver.total_seconds, 3),
        "notes": list(inp.notes),
        "rows": summary_rows(auction, doc, task.scenario),
        "blocks": block_figures_as_lists(block_figures(auction, doc)),
    }
    return TaskOutcome(task.trading_date, task.scenario, doc, None if scenario.is_baseline else inp.document, record)


def _read_day(task: ReplayTask) -> dict[str, Any]:
    try:
        data = Path(task.path).read_bytes()
    except OSError as exc:
        raise ReplayFailure(f"{task.trading_date} {task.scenario}: cannot read {task.path}: {exc.strerror or exc}") from None
    if hashlib.sha256(data).hexdigest() != task.source_sha256:
        raise ReplayFailure(f"{task.trading_date} {task.scenario}: {task.path} changed since the replay started")
    return parse_document(data)


# --- input discovery -----------------------------------------------------------------------------------

def discover_days(input_dir: Path) -> list[Day]:
    """The auction documents in `input_dir` (every ``*.json`` but ``*.result.json``), validated (all
    problems of all files at once), one per trading date, sorted by date. Raises `ReplayInputError`."""
    if not input_dir.is_dir():
        raise ReplayInputError([f"{input_dir}: not a directory"])
    problems: list[str] = []
    days: dict[str, Day] = {}
    paths = sorted(p for p in input_dir.glob("*.json") if not p.name.endswith(".result.json"))
    if not paths:
        raise ReplayInputError([f"{input_dir}: no auction documents (*.json) found"])
    for path in paths:
        try:
            data = path.read_bytes()
            doc = parse_document(data)
            auction = load_auction(doc, input_sha256=hashlib.sha256(data).hexdigest())
        except OSError as exc:
            problems.append(f"{path}: cannot read: {exc.strerror or exc}")
            continue
        except InvalidAuction as exc:
            problems.extend(f"{path}: {p}" for p in exc.problems)
            continue
        if auction.trading_date in days:
            other = days[auction.trading_date].path.name
            problems.append(f"{path}: trading_date {auction.trading_date} also in {other}"
                            " (one auction document per trading day)")
            continue
        history = path.with_name(path.name[:-len(".json")] + ".result.json")
        days[auction.trading_date] = Day(auction.trading_date, path, auction.input_sha256,
                                         history if history.is_file() else None, auction.blocks,
                                         auction.areas, auction.products)
    if problems:
        raise ReplayInputError(problems)
    return [days[d] for d in sorted(days)]


def scenario_names(requested: Iterable[str]) -> list[str]:
    """Canonical names, baseline first (always there: the deltas are against it), no duplicates.
    Raises `ReplayInputError` for names that do not parse or that would share a file name."""
    names = [BASELINE]
    problems = []
    for text in requested:
        try:
            name = parse_scenario(text).name
        except ScenarioError as exc:
            problems.append(str(exc))
            continue
        if name not in names:
            names.append(name)
    slugs: dict[str, str] = {}
    for name in names:
        slug = file_slug(name)
        if slug in slugs:
            problems.append(f"scenarios {slugs[slug]!r} and {name!r} would share the file name {slug!r}")
        slugs[slug] = name
    if HISTORY in names:
        problems.append(f"{HISTORY!r} is reserved for the historical results")
    if problems:
        raise ReplayInputError(problems)
    return names


# --- files ----------------------------------------------------------------------------------------------

def store(out_dir: Path, outcome: TaskOutcome) -> None:
    result_path, auction_path, record_path = paths(out_dir, outcome.trading_date, outcome.scenario)
    write_json(result_path, outcome.result_document)
    if outcome.scenario_document is not None:
        write_json(auction_path, outcome.scenario_document, indent=None)
    write_json(record_path, outcome.record, indent=None)  # last: marks the task done


# --- executing tasks ------------------------------------------------------------------------------------

Completion = tuple[ReplayTask, TaskOutcome | None, str | None]  # task, outcome, failure message


def _failure_text(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, ReplayFailure) else f"{type(exc).__name__}: {exc}"


def run_inline(tasks: list[ReplayTask]) -> Iterator[Completion]:
    for task in tasks:
        try:
            yield task, run_task(task), None
        except Exception as exc:  # one failed day must not stop the others; reported at the end
            yield task, None, f"{task.trading_date} {task.scenario}: {_failure_text(exc)}"


def run_pool(tasks: list[ReplayTask], workers: int) -> Iterator[Completion]:
    """A process pool; the forkserver start method keeps workers clean of this process's threads and
    preloads the engine and the fast back-end once, so each worker does not pay for importing them again."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["dkw.clearing.replay.runner", "dkw.solvers.fastpath.auction"])
    with cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = {pool.submit(run_task, task): task for task in tasks}
        for future in cf.as_completed(futures):
            task = futures[future]
            try:
                yield task, future.result(), None
            except Exception as exc:
                yield task, None, f"{task.trading_date} {task.scenario}: {_failure_text(exc)}"


def run_dask(tasks: list[ReplayTask], address: str) -> Iterator[Completion]:
    """The same tasks on a Dask cluster (``pip install dkw[dask]``); results come back to this process."""
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise ReplayInputError(["--dask needs dask.distributed: pip install 'dkw[dask]'"]) from None
    try:
        client = Client(address, timeout="20s")
    except (OSError, TimeoutError) as exc:
        raise ReplayInputError([f"--dask {address}: cannot connect to the scheduler: {exc}"]) from None
    try:
        keys = [f"replay-{t.trading_date}-{file_slug(t.scenario)}-{t.source_sha256[:12]}" for t in tasks]
        futures = client.map(run_task, tasks, key=keys, pure=False)
        by_key = {f.key: t for f, t in zip(futures, tasks, strict=True)}
        for future in as_completed(futures):
            task = by_key[future.key]
            try:
                yield task, future.result(), None
            except Exception as exc:
                yield task, None, f"{task.trading_date} {task.scenario}: {_failure_text(exc)}"
            future.release()
    finally:
        client.close()


def _progress_bar(total: int, initial: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc="replay (days × scenarios)", unit="clear", file=sys.stderr,
                dynamic_ncols=True)


# --- the whole replay -----------------------------------------------------------------------------------

def replay(config: ReplayConfig, *, log: Callable[[str], None] | None = None) -> ReplayOutcome:
    """Run the replay `config` describes; see the module docstring for what is written where.
    Raises `ReplayInputError` before any clearing when the inputs are wrong."""
    log = log or (lambda message: print(message, file=sys.stderr))
    days = discover_days(config.input_dir)
    names = scenario_names(config.scenarios)
    eprx_tables = _checked_inputs(config)
    out = ReplayOutcome(days, names)
    config.out_dir.mkdir(parents=True, exist_ok=True)
    # in memory per run: its rows and totals, and the highest awarded price per area × block for the
    # duration curves; the per-block figures stay on disk (a multi-year national replay is large)
    records: dict[tuple[str, str], dict[str, Any]] = {}
    durations: dict[tuple[str, str], array] = defaultdict(lambda: array("d"))

    def keep(record: dict[str, Any]) -> dict[str, Any]:
        for _area, product, _block, *_, max_price, _avg in record.get("blocks", []):
            if max_price is not None:
                durations[(record["scenario"], product)].append(max_price)
        return {k: v for k, v in record.items() if k != "blocks"}

    pending: list[ReplayTask] = []
    for day in days:
        for name in names:
            record = None if config.force else load_finished(config.out_dir, day, name)
            if record is not None:
                records[(day.trading_date, name)] = keep(record)
                out.skipped.append((day.trading_date, name))
            else:
                pending.append(ReplayTask(day.trading_date, name, str(day.path), day.sha256,
                                          config.time_limit_s, config.mip_rel_gap, config.threads,
                                          str(config.policy_file) if config.policy_file else None,
                                          memory_limit_mb=config.memory_limit_mb))
    total = len(days) * len(names)
    bar = _progress_bar(total, len(out.skipped), config.progress)
    if out.skipped:
        message = f"{len(out.skipped)} of {total} day × scenario runs already done, skipped (--force redoes them)"
        bar.write(message) if bar else log(message)

    completions = _completions(config, pending)
    started = time.perf_counter()
    try:
        for task, outcome, failure in completions:
            if outcome is not None:
                store(config.out_dir, outcome)
                records[(task.trading_date, task.scenario)] = keep(outcome.record)
                out.cleared.append((task.trading_date, task.scenario))
            else:
                out.failed.append((task.trading_date, task.scenario, failure or "failed"))
                bar.write(f"FAILED {failure}") if bar else log(f"FAILED {failure}")
            if bar:
                bar.update(1)
    finally:
        if bar:
            bar.close()
    if pending:
        log(f"cleared {len(out.cleared)} day × scenario runs in {time.perf_counter() - started:.1f} s"
            + (f", {len(out.failed)} failed" if out.failed else ""))

    _add_earlier_scenarios(config.out_dir, days, records, names, out, keep)

    order = {name: i for i, name in enumerate(names)}
    out.records = [records[k] for k in sorted(records, key=lambda k: (k[0], order[k[1]]))]
    out.durations = dict(durations)
    out.history = history_records(days, config.policy_file)
    rows = [r for rec in out.records for r in rec["rows"]] + [r for rec in out.history for r in rec["rows"]]
    out.summary_path = config.out_dir / "summary.csv"
    write_summary_csv(out.summary_path, with_baseline_deltas(rows))
    write_days_csv(config.out_dir / "days.csv", out.records + out.history)

    comparison = None
    if eprx_tables:
        from dkw.clearing.replay.eprx import compare_with_replay, write_comparison_csv

        comparison = compare_with_replay(eprx_tables, days, lambda date: load_record(config.out_dir, date, BASELINE))
        write_comparison_csv(config.out_dir / "eprx_comparison.csv", comparison)
    if config.report:
        from dkw.clearing.replay.report import write_report

        out.report_path = write_report(config.out_dir, out, comparison)
    return out


def _completions(config: ReplayConfig, pending: list[ReplayTask]) -> Iterator[Completion]:
    """The pending runs on Dask, in a local pool, or inline (one worker)."""
    if config.dask_address:
        return run_dask(pending, config.dask_address)
    workers = config.workers or os.cpu_count() or 1
    workers = max(1, min(workers, len(pending)))
    return run_inline(pending) if workers == 1 else run_pool(pending, workers)


def _checked_inputs(config: ReplayConfig) -> list[Any]:
    """The policy file and the EPRX tables checked before any clearing (`ReplayInputError` if wrong); the
    tables read."""
    if config.policy_file is not None:
        from dkw.clearing.rules import PolicyError

        try:
            load_policy(config.policy_file)
        except PolicyError as exc:
            raise ReplayInputError([f"{config.policy_file}: {p}" for p in exc.problems]) from None
    eprx_tables = []
    if config.eprx_files:
        from dkw.clearing.replay.eprx import EprxFormatError, read_eprx_csv

        problems = []
        for path in config.eprx_files:
            try:
                eprx_tables.append(read_eprx_csv(path))
            except EprxFormatError as exc:
                problems.append(str(exc))
        if problems:
            raise ReplayInputError(problems)
    return eprx_tables


def _add_earlier_scenarios(out_dir: Path, days: list[Day], records: dict[tuple[str, str], dict[str, Any]],
                           names: list[str], out: ReplayOutcome,
                           keep: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """Scenarios an earlier run left in OUTDIR, for these same source days: the summary and the report
    cover every scenario whose results are there, not only this run's."""
    for day in days:
        for record_path in sorted((out_dir / "days" / day.trading_date).glob("*.summary.json")):
            try:
                name = json.loads(record_path.read_text(encoding="utf-8")).get("scenario")
            except (OSError, ValueError):
                continue
            if not isinstance(name, str) or (day.trading_date, name) in records:
                continue
            record = load_finished(out_dir, day, name)
            if record is not None:
                records[(day.trading_date, name)] = keep(record)
                if name not in names:
                    names.append(name)
                    out.earlier_scenarios.append(name)
