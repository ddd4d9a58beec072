"""Load and fault figures: concurrent clients, two replicas on PostgreSQL, one killed midway.

    python -m dkw.bench.load [--clients 16] [--auctions 500] [--national 4] [--database URL] [--out FILE]

Starts two `dkw serve` replicas on a fresh schema of the database, lets N client threads submit M
auctions (mostly small generated documents; `--national` of them 5,000-bid national ones with a short
time limit), and when half of the submissions were accepted kills one replica with SIGKILL and restarts
it on the same port. Clients retry through the service config of `dkw.server.client.connect` and, should
their replica stay unreachable, submit to the other one with the same idempotency key.

Then it checks, from the database: every submission is exactly one stored auction (no key twice, no
auction without a key), every auction ended DONE, each result passes the independent verifier, and each
equals the result of clearing the same bytes in this process (time-limited national results, which
depend on timing, are verified only). It reports throughput, Submit latency and time to result
(received → finished, from the database) as p50/p95/p99, lease takeovers and attempts, and writes the
figures as JSON to `--out` (default bench/load-results.json).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE = os.environ.get("DKW_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
TIMING_FIELDS = ("seconds", "build_seconds", "pricing_seconds", "total_seconds")
#: Distinct small documents the clients pick from (each cleared once in-process for the comparison).
SMALL_VARIANTS = 24


def small_document(seed: int) -> bytes:
    """A small generated auction (three areas, two products, four 3-hour blocks, 20 bids): about a quarter
    of a second to clear."""
    from dkw.bench.casegen import gen

    doc = gen(seed, 20, 4, 180, ["tokyo", "chubu", "kansai"], ["secondary2", "tertiary1"], 0.7)
    doc["auction_id"] = f"load-small-{seed}"
    return json.dumps(doc).encode()


def national_document(seed: int) -> bytes:
    from dkw.bench.casegen import gen

    doc = gen(seed, 5000, 48, 30, None, None, 0.7)
    doc["auction_id"] = f"load-national-{seed}"
    return json.dumps(doc).encode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Replica:
    """One `dkw serve` child on a fixed port (so a restart is found at the same address)."""

    name: str
    url: str
    port: int
    metrics_port: int
    workers: int
    lease_s: float
    log_dir: Path
    process: subprocess.Popen | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        log = open(self.log_dir / f"{self.name}.log", "a")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dkw", "serve", "--port", str(self.port), "--database", self.url,
             "--workers", str(self.workers), "--lease-seconds", str(self.lease_s),
             "--metrics-port", str(self.metrics_port), "--log-format", "json"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True)
        line = self.process.stdout.readline()
        if "listening on" not in line:
            raise RuntimeError(f"{self.name} did not start: {line!r}; see {log.name}")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def metric(self, name: str) -> float:
        try:
            text = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10).read().decode()
        except OSError:
            return 0.0
        match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
        return float(match.group(1)) if match else 0.0


@dataclass
class Submission:
    key: str
    document: bytes
    options: dict[str, Any]
    latency_s: float = 0.0
    auction_id: str = ""
    failovers: int = 0
    error: str = ""


@dataclass
class Run:
    submissions: list[Submission]
    accepted: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    half: threading.Event = field(default_factory=threading.Event)


def client(run: Run, mine: list[Submission], replicas: list[Replica], first: int) -> None:
    """Submit each of `mine` to this client's replica; on UNAVAILABLE (after the channel's retries), to
    the other one with the same idempotency key."""
    import grpc

    from dkw.server.client import connect
    from dkw.v1 import clearing_pb2 as pb
    from dkw.v1 import clearing_pb2_grpc as pb_grpc

    channels = [connect(r.target) for r in replicas]
    stubs = [pb_grpc.ClearingStub(c) for c in channels]
    try:
        for sub in mine:
            which = first
            started = time.perf_counter()
            for _ in range(6):
                try:
                    response = stubs[which].SubmitAuction(pb.SubmitAuctionRequest(
                        auction_json=sub.document, idempotency_key=sub.key,
                        options=pb.SolveOptions(**sub.options)), timeout=60)
                    sub.auction_id = response.auction_id
                    break
                except grpc.RpcError as exc:
                    if exc.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                        sub.error = f"{exc.code().name}: {exc.details()}"
                        break
                    sub.failovers += 1
                    which = 1 - which
            sub.latency_s = time.perf_counter() - started
            with run.lock:
                run.accepted += 1
                if run.accepted >= len(run.submissions) // 2:
                    run.half.set()
    finally:
        for c in channels:
            c.close()


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)

    return {"p50": at(0.50), "p95": at(0.95), "p99": at(0.99), "max": round(ordered[-1], 3)}


def without_timings(doc: dict[str, Any]) -> dict[str, Any]:
    doc = json.loads(json.dumps(doc))
    for key in TIMING_FIELDS:
        doc["solver"].pop(key, None)
    return doc


def check(url: str, submissions: list[Submission]) -> dict[str, Any]:
    """Everything the database holds after the run, checked against the submissions and in-process clears."""
    from dkw.clearing.document import load_auction
    from dkw.clearing.engine import clear
    from dkw.clearing.verify import verify_result
    from dkw.server.postgres import PostgresStorage
    from dkw.solvers.highs import SolveOptions

    with PostgresStorage(url, pool_size=1) as storage:
        rows = storage._all_rows(
            "SELECT auction_id, idempotency_key, state, reason, attempts, received_at, finished_at, result, "
            "input_sha256 FROM auctions ORDER BY seq")
    by_key: dict[str, list[tuple]] = {}
    for row in rows:
        by_key.setdefault(row[1], []).append(row)
    problems = []
    duplicates = [k for k, v in by_key.items() if len(v) > 1]
    unknown = [k for k in by_key if k not in {s.key for s in submissions}]
    missing = [s.key for s in submissions if s.key not in by_key]
    problems += [f"key {k} stored {len(by_key[k])} times" for k in duplicates]
    problems += [f"auction stored under unknown key {k}" for k in unknown] + [f"key {k} never stored" for k in missing]
    not_done = [(r[0], r[2], r[3]) for r in rows if r[2] != "DONE"]
    problems += [f"{a} ended {state}: {reason}" for a, state, reason in not_done]

    in_process: dict[str, dict[str, Any]] = {}
    compared = verified = time_limited = 0
    documents = {s.key: s for s in submissions}
    for auction_id, key, state, _, _, _, _, result, sha in rows:
        if state != "DONE" or key not in documents:
            continue
        sub = documents[key]
        doc = json.loads(result)
        auction = load_auction(json.loads(sub.document), input_sha256=hashlib.sha256(sub.document).hexdigest())
        bad = verify_result(auction, doc, left_out={r["bid"] for r in doc["rejected_bids"]})
        if bad:
            problems.append(f"{auction_id}: the verifier found {len(bad)} problem(s), first: {bad[0]}")
            continue
        verified += 1
        if sub.options.get("time_limit_s") is not None and doc["status"] != "OPTIMAL":
            time_limited += 1
            continue
        if sha not in in_process:
            in_process[sha] = clear(auction, SolveOptions(**sub.options)).to_document()
        compared += 1
        if without_timings(doc) != without_timings(in_process[sha]):
            problems.append(f"{auction_id}: differs from the in-process result of the same document")
    turnaround = [(epoch(r[6]) - epoch(r[5])) for r in rows if r[6]]
    first_received = min(epoch(r[5]) for r in rows)
    last_finished = max(epoch(r[6]) for r in rows if r[6])
    return {
        "stored": len(rows), "done": sum(r[2] == "DONE" for r in rows), "duplicates": len(duplicates),
        "missing": len(missing), "verified": verified, "equal_to_in_process": compared - sum(
            "differs" in p for p in problems), "compared": compared, "time_limited_verified_only": time_limited,
        "resumed_auctions": sum(r[4] > 1 for r in rows), "max_attempts": max(r[4] for r in rows),
        "time_to_result_s": percentiles(turnaround), "span_s": round(last_finished - first_received, 3),
        "problems": problems,
    }


def epoch(iso: str) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(iso).timestamp()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dkw.bench.load", description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--auctions", type=int, default=500)
    ap.add_argument("--national", type=int, default=4, help="how many of them are 5,000-bid national auctions")
    ap.add_argument("--national-time-limit", type=float, default=20.0, metavar="S")
    ap.add_argument("--workers", type=int, default=2, help="solver processes per replica")
    ap.add_argument("--lease-seconds", type=float, default=5.0)
    ap.add_argument("--database", default=DEFAULT_DATABASE, help=f"PostgreSQL URL (default {DEFAULT_DATABASE})")
    ap.add_argument("--no-kill", action="store_true", help="no replica is killed (the baseline)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "bench" / "load-results.json"))
    args = ap.parse_args(argv)

    import psycopg
    from psycopg.conninfo import make_conninfo

    rnd = random.Random(args.seed)
    smalls = [small_document(args.seed * 1000 + i) for i in range(SMALL_VARIANTS)]
    nationals = [national_document(args.seed * 1000 + 500 + i) for i in range(min(args.national, 2))]
    submissions = []
    national_at = set(rnd.sample(range(args.auctions), min(args.national, args.auctions)))
    for i in range(args.auctions):
        if i in national_at:
            doc, options = nationals[i % len(nationals)], {"time_limit_s": args.national_time_limit}
        else:
            doc, options = rnd.choice(smalls), {}
        submissions.append(Submission(f"load-{args.seed}-{i:05d}", doc, options))

    schema = f"dkw_load_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(args.database, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    url = make_conninfo(args.database, options=f"-csearch_path={schema}")
    log_dir = Path(tempfile.mkdtemp(prefix="dkw-load-"))  # the replicas' JSON logs, kept for a look afterwards
    replicas = [Replica(f"replica{i}", url, free_port(), free_port(), args.workers, args.lease_seconds, log_dir)
                for i in range(2)]
    run = Run(submissions)
    killed_at = None
    try:
        for r in replicas:
            r.start()
        print(f"load: {args.clients} clients, {args.auctions} auctions ({len(national_at)} national, "
              f"{args.national_time_limit:g} s limit) to 2 replicas x {args.workers} workers, schema {schema}, "
              f"{os.cpu_count()} cores, logs in {log_dir}", flush=True)
        started = time.perf_counter()
        shares = [submissions[i::args.clients] for i in range(args.clients)]
        threads = [threading.Thread(target=client, args=(run, share, replicas, i % 2)) for i, share in enumerate(shares)]
        for t in threads:
            t.start()
        if not args.no_kill:
            run.half.wait()
            killed_at = time.perf_counter() - started
            replicas[1].kill()
            print(f"load: replica1 killed with SIGKILL at {killed_at:.1f} s, restarting", flush=True)
            replicas[1].start()
        for t in threads:
            t.join()
        submitted_in = time.perf_counter() - started
        print(f"load: {args.auctions} submissions answered in {submitted_in:.1f} s; waiting for results", flush=True)
        with psycopg.connect(url, autocommit=True) as conn:
            while True:
                left = conn.execute("SELECT COUNT(*) FROM auctions WHERE state IN ('QUEUED', 'RUNNING')").fetchone()[0]
                if left == 0:
                    break
                time.sleep(1.0)
        finished_in = time.perf_counter() - started
        takeovers = sum(r.metric("dkw_lease_takeovers_total") for r in replicas)
    finally:
        for r in replicas:
            r.stop()
    print("load: checking every result (verifier, in-process clear)", flush=True)
    checked = check(url, submissions)
    with psycopg.connect(args.database, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")
    figures = {
        "cores": os.cpu_count(), "clients": args.clients, "auctions": args.auctions, "national": len(national_at),
        "national_time_limit_s": args.national_time_limit, "replicas": 2, "workers_per_replica": args.workers,
        "lease_s": args.lease_seconds, "killed_at_s": killed_at and round(killed_at, 1),
        "submit_errors": [s.error for s in submissions if s.error],
        "submit_failovers": sum(s.failovers for s in submissions),
        "submit_latency_s": percentiles([s.latency_s for s in submissions]),
        "wall_s": round(finished_in, 1), "throughput_per_s": round(args.auctions / finished_in, 2),
        "lease_takeovers_seen_by_live_replicas": takeovers, **checked,
    }
    Path(args.out).write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    ok = not checked["problems"] and not figures["submit_errors"]
    print(f"load: {'OK' if ok else 'FAILED'}: figures in {args.out}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
