"""A one-line progress display on a terminal (stderr), fed by the engine's `Progress` snapshots."""

from __future__ import annotations

import sys

from solvers.highs import Progress


class TerminalProgress:
    """Rewrites one stderr line: phase, elapsed, incumbent, bound and gap."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.width = 0

    def __call__(self, p: Progress) -> None:
        parts = [f"[{p.elapsed_s:7.1f} s] {p.phase}"]
        if p.message:
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
