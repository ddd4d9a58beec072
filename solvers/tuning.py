"""The fast path's knobs as data: one frozen value handed in through `SolveOptions.tuning`.

Every figure has its measured reason beside it (the experiments are in docs/performance.md). Tests pass a
tuning of their own (`SolveOptions(tuning=FastPathTuning(lns_min_integers=1))`) rather than patching
modules, and the tuning travels to the pool's processes with the options. Imports no solver.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FastPathTuning:
    #: The start's polishing (`solvers/fastpath/polish.py`) may take this share of the time left, at most
    #: polish_max_s, and solves its pieces to this gap (it only looks for a good incumbent; the proof is the
    #: full model's).
    polish_share: float = 0.5
    polish_max_s: float = 30.0
    polish_gap: float = 1e-4
    #: HiGHS's sub-MIP heuristics, off in the polishing's pieces: half its time at 50,000 bids for the same
    #: start (47.6 → 23.9 s; docs/performance.md, sixth round)
    polish_off: tuple[str, ...] = ("mip_heuristic_run_rins", "mip_heuristic_run_rens")
    #: Components with fewer columns than this are solved inline (a process costs more than the solve).
    parallel_min_cols: int = 3000
    #: The neighbourhood search (solvers/fastpath/search.py) runs on components with at least this many
    #: integer columns (national auctions from about 3,000 bids; below, branch-and-bound alone proves
    #: mid-size auctions with linked bids sooner than it could help; without them, see
    #: lns_beside_unlinked_min_integers), for lns_share of the time left after the start (at most
    #: lns_max_s; it stops sooner when it stalls).
    lns_min_integers: int = 2500
    #: ... and at most this many: beyond, the search's own copy of the component costs more memory than its
    #: improvements are worth (200,000 bids, 158,936 binaries: 1.3-1.5 GB for the search process, 2 of 17
    #: sub-MILPs improving in 105 s; docs/performance.md); nor with less than lns_min_left_s left.
    lns_max_integers: int = 100_000
    lns_min_left_s: float = 10.0
    lns_share: float = 0.4
    lns_max_s: float = 120.0
    #: With a spare core the search runs beside branch-and-bound, in a process of its own, on components with
    #: at least this many integer columns, and before it below (0: beside whenever a core is spare). Only
    #: experiments change it: at mid-size (with lns_min_integers lowered to 500) 30 s of search before
    #: branch-and-bound made one 1,500-bid document 1.24 -> 1.06 times the straight solve (medians over 3
    #: HiGHS seeds) and a 1,200-bid one 0.82 -> 1.36 (HiGHS seed 0; docs/performance.md, "The incumbent is
    #: the mid-size time").
    lns_beside_min_integers: int = 0
    #: Mid-size: with a spare core, on a big component (parallel_min_cols) without linked bids, the search
    #: runs beside branch-and-bound from this many integer columns (or from lns_min_integers, if that is lower).
    #: On casegen's documents without links it found the optimum for branch-and-bound sooner on all 3
    #: (medians 0.60-0.81 of the fast path without it, over 3 HiGHS seeds); with links it made no
    #: consistent difference (0.94-1.14 on 3 documents; docs/performance.md, eleventh round, "The search
    #: beside branch-and-bound where no bid is linked"). The structure decides, not the size.
    lns_beside_unlinked_min_integers: int = 500
    #: On components where the search runs by their size (lns_min_integers: national auctions), only the
    #: continuous columns (quantities, flows, shortfalls) within this many rows of a freed integer column
    #: stay free in each sub-MILP, the rest fixed at the incumbent (0: all free). Each sub-MILP's LP is then
    #: a fraction of the component's, so more of them fit: 60 s of search alone from the same start went
    #: 1.2M yen further at 5,000 bids with 2 hops than with every column free, 0.9-1.3M at 20,000 and 0.2M
    #: at 50,000; 1 hop left too little free; 3 did better at 5,000 bids and worse at 20,000 and 50,000
    #: (one run each). Not at mid-size (the unlinked rule), where with lns_adopts_incumbents it made the
    #: clearing slower (docs/performance.md, twelfth round, "The search's sub-MILPs smaller, and
    #: branch-and-bound's incumbents back to the search").
    lns_continuous_hops: int = 2
    #: ... and there, beside branch-and-bound, the search goes on from branch-and-bound's incumbent whenever
    #: that is the cheaper (HiGHS's heuristics, started from the search's points, often find the better one;
    #: before, the search kept to its own). 5,000 bids at 60 s, 3 HiGHS seeds: median gap 0.321% -> 0.194%
    #: with both. False only for experiments.
    lns_adopts_incumbents: bool = True
    #: ... and there a sub-MILP may take at most this long (s; elsewhere search.SUB_MAX_S, also 6 s). 3 s took
    #: the search alone further in 60 s (5,000 bids 1.0-1.2M yen, 20,000 bids 0.2M, two seeds each) but not
    #: the clearing: 5,000 bids at 60 s, median gap 0.234% against 0.194% over 3 HiGHS seeds (20,000 bids,
    #: one seed: 0.127% against 0.143%); docs/performance.md, twelfth round.
    lns_sub_max_s: float = 6.0
    #: ... and there, with lns_continuous_hops set, every new incumbent of the search gets its continuous
    #: columns re-solved as the LP with its integers fixed: the far columns a sub-MILP holds fixed go stale
    #: otherwise (0.1-0.7M yen at 5,000 and 20,000 bids after 60 s of search), and the search then compares
    #: and hands on dearer points than it has. 20,000 bids at 60 s, 5 HiGHS seeds: median gap 0.1230% against
    #: 0.1262%, better on 4 of 5; 5,000 bids within the spread (docs/performance.md, fourteenth round).
    #: Up to lns_polish_max_columns columns: the LP is a second copy of the component in the search's
    #: process, which the 200,000-bid clearing's memory ceiling has no room for.
    lns_polish_continuous: bool = True
    lns_polish_max_columns: int = 150_000
    #: ... and there branch-and-bound's incumbents (and the starts) go back to HiGHS with their idle binaries
    #: switched off (`dkw.solvers.arrays.switch_off_idle`: start-ups of resources with no accepted bid).
    trim_incumbents: bool = True
    #: Rounds of Gomory mixed-integer cuts (solvers/fastpath/cuts.py) handed to HiGHS with the MIP, on
    #: components with at least cut_min_integers integer columns, within cut_share of the time left (at most
    #: cut_max_s); 0: none. A third of the time: at 5,000 bids branch-and-bound does not get past its root
    #: node in 60 s, so the time is worth more to the rounds (up to 6 rounds instead of 1-2 on a slow
    #: machine: the bound 1.0M yen higher on average; docs/performance.md, seventh round). The neighbourhood
    #: search runs beside them either way. Components above cut_big_integers keep the earlier 12%
    #: (cut_share_big): there a round re-solves an LP of seconds to a minute, and the larger share was not
    #: measured (50,000 bids: no round fits at 60 s either way).
    cut_rounds: int = 6
    cut_min_integers: int = 2500
    cut_max_per_round: int = 400
    cut_share: float = 0.35
    cut_big_integers: int = 25_000
    cut_share_big: float = 0.12
    cut_max_s: float = 40.0
    #: The LP relaxation behind the starts and the bound leaves out cost coefficients below this (yen per
    #: unit): the tie-break and flow-preference perturbations (clearing/index.py). With them the dual simplex
    #: needs 16-21% more iterations (5,000 to 200,000 bids) for a bound higher by a few hundred yen in billions.
    lp_cost_floor_yen: float = 1e-3
    #: Where the search runs by size (and up to lns_max_integers), the start's rounding of the block-tying
    #: columns takes the LP relaxation re-solved with the start-ups charged by their last LP value, at most
    #: this many rounds within this share of the time left (`starts.rescaled_start_ups`; 0 rounds: the plain
    #: relaxation). The polished start, main component: 20,000 bids 2,899.02M -> 2,895.48M yen, 5,000 bids
    #: 2,334.06M -> 2,328.85M, 50,000 bids 2,847.43M -> 2,845.67M; 0.9 s, 0.1 s and 1.9 s of LP
    #: (docs/performance.md, fifteenth round). Not at mid-size, whose figures were measured without it.
    start_up_rescaling_rounds: int = 4
    start_up_rescaling_share: float = 0.1
    #: Components with at least this many columns get a floor under their bound before anything else
    #: (solvers/fastpath/floor.py): a relaxation of seconds whose optimum is a proven bound, where the
    #: component's own LP relaxation may take longer than the time limit (200,000 bids, 345,510 columns: the
    #: relaxation 80-130 s on 2 cores), and whose rounding is the start there.
    floor_min_cols: int = 150_000
    #: Smaller components get the floor too when their LP relaxation is not expected to end in the time left
    #: (`floor_wanted`): expected floor_lp_s_at_100k_cols seconds at 100,000 columns, growing with the square
    #: of the columns. Measured on 2 cores: 8.2 s at 93,582 columns (50,000 bids), 20.7 s at 144,517 (80,000
    #: bids), 80-130 s at 345,510 (about 50 s in the seventeenth round); the machines of earlier rounds took up
    #: to 1.6 times as long, hence 16 s. Without it an 80,000-bid auction at 30 s ended with no bound at all
    #: (docs/performance.md). Once the floor is solved, its own time gives the estimate (relaxation_per_floor_s).
    floor_lp_s_at_100k_cols: float = 16.0
    #: Where the floor is the bound the clearing ends with (its LP relaxation not expected in the time left,
    #: `floor_final`), the floor is tightened with the start-up costs (`floor.FloorRelaxation.with_start_ups`)
    #: and re-solved warm, within this share of the time left (the rest of it would go to a relaxation that
    #: does not end), and only when that share is at least floor_tightening_factor times what the floor took
    #: (the re-solve took 2.1 times as long at 200,000 bids). 200,000 bids: 5,073.8M -> 5,321.3M yen, 6.2% ->
    #: 1.6% below the best known bound (docs/performance.md, sixteenth round).
    floor_tightening_share: float = 0.8
    floor_tightening_factor: float = 2.5
    #: A component with a start whose LP relaxation is expected (by columns; by the floor's time, see
    #: relaxation_per_floor_s) to take more than relaxation_skip_factor times the time left does not try it
    #: (it would not end, and branch-and-bound has nothing to do without it); its start (the floor's rounding,
    #: where the floor was wanted) is polished block by block instead, within polish_share_without_relaxation
    #: of the time left. 80,000 bids at 30 s: the main component's start
    #: 4,039.9M -> 3,952.2M yen in 7.4 s (docs/performance.md, sixteenth round).
    relaxation_skip_factor: float = 2.0
    polish_share_without_relaxation: float = 0.9
    #: ... and only when that share is at least this many seconds per integer column: splitting alone takes
    #: seconds at 200,000 bids, and a polish stopped short keeps only the pieces it got through. 200,000 bids,
    #: 158,936 integer columns, 2 threads: 4 s gave nothing, 8 s 40.0M yen off the start, 11.5 s (all of
    #: it) 43.7M (docs/performance.md, seventeenth round).
    polish_s_per_integer: float = 5e-5
    #: Where the floor was solved first (the same machine, moments before), the LP relaxation is expected to
    #: take this many times the floor's LP instead: with its roundings it took 15-19 times as long (200,000
    #: bids 49.5-52.1 s against 3.1-3.5 s; 80,000 bids 16.8 s against 0.87-0.91 s), where the estimate by
    #: columns says 191 s and 33 s (docs/performance.md, seventeenth round). Such an estimate follows the
    #: machine, so it needs no margin beyond its own: skipped only where it exceeds the time left.
    relaxation_per_floor_s: float = 20.0
    #: After a cancel, how long the components in other processes get to stop and hand back their
    #: incumbents: below the server's 15 s before it terminates a worker that does not answer.
    cancel_grace_s: float = 10.0

    def floor_wanted(self, num_cols: int, time_left_s: float | None) -> bool:
        """Whether the largest component (`num_cols` columns) gets a floor before its solve, with `time_left_s`
        seconds left for it (None: no limit)."""
        return num_cols >= self.floor_min_cols or self.floor_final(num_cols, time_left_s)

    def expected_relaxation_s(self, num_cols: int, floor_s: float | None = None) -> float:
        """How long the LP relaxation of a component of `num_cols` columns is expected to take (s); `floor_s`:
        how long the floor's LP took on this machine, where it was solved (`relaxation_per_floor_s`)."""
        if _measured(floor_s):
            return self.relaxation_per_floor_s * floor_s
        return self.floor_lp_s_at_100k_cols * (num_cols / 100_000) ** 2

    def floor_final(self, num_cols: int, time_left_s: float | None, floor_s: float | None = None) -> bool:
        """Whether the largest component's LP relaxation is not expected to end in `time_left_s`: its floor is
        then the bound its clearing ends with. With the floor's own time (`floor_s`), the floor's rounding,
        about as long, comes out of the time left first: the decision then agrees with
        `relaxation_hopeless` at the component."""
        if time_left_s is None:
            return False
        if not _measured(floor_s):
            return self.expected_relaxation_s(num_cols) > time_left_s
        return self.expected_relaxation_s(num_cols, floor_s) > time_left_s - floor_s

    def relaxation_hopeless(self, num_cols: int, time_left_s: float | None, floor_s: float | None = None) -> bool:
        """Whether a component's LP relaxation is expected to take more than the time left, by
        relaxation_skip_factor for the estimate by columns and exactly for one from the floor's time
        (`floor_s`): not worth trying."""
        if time_left_s is None:
            return False
        factor = 1.0 if _measured(floor_s) else self.relaxation_skip_factor
        return self.expected_relaxation_s(num_cols, floor_s) > factor * max(time_left_s, 0.0)

    def cut_share_for(self, num_int: int) -> float:
        """The cut rounds' share of the time left on a component with `num_int` integer columns."""
        return self.cut_share if num_int <= self.cut_big_integers else self.cut_share_big

    def search_at_scale(self, num_int: int) -> bool:
        """The search runs on this component by its size (lns_min_integers), not only by the mid-size rule: its
        sub-MILPs fix the far continuous columns and it takes branch-and-bound's incumbents."""
        return num_int >= self.lns_min_integers

    def searches(self, num_int: int, beside_unlinked: bool = False) -> bool:
        """Whether a component with `num_int` integer columns gets the neighbourhood search (time aside);
        `beside_unlinked`: it would run beside branch-and-bound on a component without linked bids."""
        least = min(self.lns_min_integers, self.lns_beside_unlinked_min_integers) if beside_unlinked \
            else self.lns_min_integers
        return least <= num_int <= self.lns_max_integers


def _measured(floor_s: float | None) -> bool:
    """Whether the floor's LP time is known (a floor with nothing to solve took no time, and says nothing)."""
    return floor_s is not None and floor_s > 0
