"""What a handed-back incumbent saves (docs/replicas.md: Graceful drain): a national auction is cleared
for `--drained` seconds (the run a draining replica stops), then cleared again at each `--limits` time
limit twice, from scratch and from the drained run's incumbent (`clear(start=...)`), and the objective
and gap of each are printed as JSON lines.

  python bench/handback.py --bids 5000 --seed 1 --drained 20 --limits 10 30
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from dkw.clearing.document import load_auction, parse_document
from dkw.clearing.engine import clear
from dkw.clearing.handback import incumbent_of
from dkw.solvers.api import SolveOptions

ROOT = Path(__file__).resolve().parent.parent


def run(auction, limit: float, start=None) -> dict:
    began = time.perf_counter()
    doc = clear(auction, SolveOptions(time_limit_s=limit), explain_options=False, start=start).to_document()
    return {"limit_s": limit, "from": "handed back" if start else "scratch", "status": doc["status"],
            "objective_yen": doc["objective_yen"], "gap": doc["solver"]["mip_gap"],
            "seconds": round(time.perf_counter() - began, 2), "start_used": (doc.get("handed_back_start") or {}).get("used")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bids", type=int, default=5000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--drained", type=float, default=20.0, help="seconds of the run a drain stops")
    p.add_argument("--limits", type=float, nargs="+", default=[10.0, 30.0])
    args = p.parse_args()
    raw = subprocess.run([sys.executable, str(ROOT / "bench" / "casegen.py"), "--seed", str(args.seed), "--bids",
                          str(args.bids)], check=True, capture_output=True).stdout
    auction = load_auction(parse_document(raw))
    drained = clear(auction, SolveOptions(time_limit_s=args.drained), explain_options=False).to_document()
    incumbent = incumbent_of(drained)
    print(json.dumps({"drained_after_s": args.drained, "objective_yen": drained["objective_yen"],
                      "gap": drained["solver"]["mip_gap"]}), flush=True)
    for limit in args.limits:
        for start in (None, incumbent):
            print(json.dumps(run(auction, limit, start)), flush=True)


if __name__ == "__main__":
    main()
