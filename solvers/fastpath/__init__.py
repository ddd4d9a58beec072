"""The fast back-end: the MILP's arrays cut into independent components, each solved by highspy directly,
as a pipeline of named phases (the path of one auction, in order):

1. `prepare`: the market's knowledge added to the arrays (bids every optimum accepts in full, which
   columns tie blocks together, where each column sits) and the whole model's MIP start (`starts`);
2. `split`: the independent components, largest first; where the largest one's LP relaxation may not end
   in time (200,000 bids always, smaller auctions at short limits: `FastPathTuning.floor_wanted`) a `floor`
   under their bounds first, a relaxation of seconds, and its rounding as their MIP start;
3. `pool`: the big components in processes of their own, the rest inline, with cancel;
4. `component`: per component, the phases with their time shares: LP relaxation and roundings (`starts`),
   the start polished block by block (`polish`), Gomory cut rounds (`cuts`), the neighbourhood search
   (`search`), branch-and-bound and the LP with the integers fixed (`dkw.solvers.highs`);
5. `split.stitch`: the components' points and figures as one outcome.

`auction.solve_fast` is the entry point (from `dkw.clearing.engine.solve`); the knobs are data
(`dkw.solvers.tuning.FastPathTuning`, in `SolveOptions.tuning`).

Why it is exact: a component is a connected component of the bipartite graph of columns and rows of the
constraint matrix (a union-find over every coupling the model has: bids spanning blocks and products,
groups, resources, parent links, lines, interfaces, import caps, balance rows). No row touches two
components and the objective is a sum over columns, so the optimum of the whole is the sum of the
components' optima, and proving each component within relative gap g proves the whole within g
(all objective terms are non-negative). The solutions are stitched back by column index.
"""
