"""Result documents of every shared case, kept to show that a refactoring changed no figure.

    python -m dkw.bench.experiments.golden write DIR     # clear each case in tests/cases, write DIR/<case>.json
    python -m dkw.bench.experiments.golden compare DIR   # clear again, report every figure that differs

What is compared is the whole result document (awards, flows, shortfalls, prices, area summary, the bids
left out, market rules, monitoring flags, explanations, the input hash) except what describes the run
rather than the clearing: the solver block's timings, node counts and message. Figures are compared to
1e-6 relative (the documents carry floats written by the same code; anything beyond is a real change).
Exit code 0 when every case matches, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

CASES_DIR = Path(__file__).resolve().parents[2] / "tests" / "cases"
#: Solver fields that describe the run, not the clearing.
RUN_FIELDS = ("seconds", "nodes", "build_seconds", "pricing_seconds", "total_seconds", "termination", "solves")


def clear_case(path: Path) -> dict[str, Any]:
    from dkw.clearing.document import load_auction_file
    from dkw.clearing.engine import clear
    from dkw.solvers.api import SolveOptions

    doc = clear(load_auction_file(path), SolveOptions()).to_document()
    for field in RUN_FIELDS:
        doc.get("solver", {}).pop(field, None)
    return json.loads(json.dumps(doc))


def differences(old: Any, new: Any, where: str = "") -> list[str]:
    """Every place two documents differ, as 'path: old → new' (floats to 1e-6 relative)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new)):
            out += differences(old.get(key), new.get(key), f"{where}.{key}")
        return out
    if isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            return [f"{where}: {len(old)} items → {len(new)}"]
        return [d for i, (a, b) in enumerate(zip(old, new, strict=True)) for d in differences(a, b, f"{where}[{i}]")]
    if isinstance(old, float | int) and isinstance(new, float | int) and not isinstance(old, bool):
        if math.isclose(old, new, rel_tol=1e-6, abs_tol=1e-6):
            return []
    elif old == new:
        return []
    return [f"{where}: {old!r} → {new!r}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("write", "compare"))
    parser.add_argument("directory", type=Path)
    args = parser.parse_args(argv)
    args.directory.mkdir(parents=True, exist_ok=True)
    failed = 0
    for path in sorted(CASES_DIR.glob("[0-9]*.json")):
        doc = clear_case(path)
        target = args.directory / path.name
        if args.action == "write":
            target.write_text(json.dumps(doc, indent=1, ensure_ascii=False, sort_keys=True) + "\n")
            print(f"{path.stem}: written")
            continue
        diffs = differences(json.loads(target.read_text()), doc)
        failed += bool(diffs)
        print(f"{path.stem}: {'same' if not diffs else f'{len(diffs)} difference(s)'}")
        for line in diffs[:20]:
            print(f"    {line}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
