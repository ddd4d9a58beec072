"""Offline replay of past auctions under what-if scenarios (the regulator's and TSOs' second use of dkw).

A replay takes a directory of auction documents, one per trading day, clears every day under every
scenario with `dkw.clearing.engine.clear`, checks every result with `dkw.clearing.verify.verify_result`, and
writes EPRX-comparable figures (`summary.csv`, per-day result documents, `report.md` with plots).

Modules: `scenarios` (what-if transformations, composable with ``+``; the ``price-rule`` scenario
re-prices to the monitoring limits of `dkw.clearing.rules`), `summary` (per area × product figures from a
result), `runner` (days × scenarios over a process pool or Dask, resumable), `outcome` (what a run
produced), `eprx` (EPRX public result CSVs), `report` (report.md and its plots), `command`
(``dkw replay``).
"""
