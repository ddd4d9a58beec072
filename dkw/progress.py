"""A one-line progress display on a terminal (stderr), fed by the engine's `Progress` snapshots."""

from __future__ import annotations

import re
import sys

from dkw.solvers.api import Progress

#: The fast path reports "components DONE/TOTAL" in `Progress.message` (solvers/fastpath/auction.py, AuctionProgress).
COMPONENTS = re.compile(r"components (\d+)/(\d+)")
BAR_WIDTH = 20


def bar(done: int, total: int, width: int = BAR_WIDTH) -> str:
    """`[#######.............]` for DONE of TOTAL."""
    filled = width * done // total if total else width
    return "[" + "#" * filled + "." * (width - filled) + "]"


class TerminalProgress:
    """Rewrites one stderr line: phase, elapsed, incumbent, bound and gap."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.width = 0

    def __call__(self, p: Progress) -> None:
        parts = [f"[{p.elapsed_s:7.1f} s] {p.phase}"]
        if p.message:
            match = COMPONENTS.search(p.message)
            if match:
                parts.append(bar(int(match.group(1)), int(match.group(2))))
            parts.append(p.message)
        if p.incumbent is not None:
            parts.append(f"incumbent {p.incumbent:,.0f}")
        if p.bound is not None:
            parts.append(f"bound {p.bound:,.0f}")
        if p.gap is not None:
            parts.append(f"gap {p.gap:.2e}")
        text = "  ".join(parts)
        self.stream.write("\r" + text.ljust(self.width))
        self.width = len(text)
        self.stream.flush()

    def close(self) -> None:
        if self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()
