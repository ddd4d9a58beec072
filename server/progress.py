"""What WatchClearing callers on this server follow of a run: its events, as they happen."""

from __future__ import annotations

import collections
import threading

from dkw.v1 import clearing_pb2 as pb


class ProgressFeed:
    """Progress of one auction being cleared on this server, for WatchClearing: its events (from the start
    of the run, throttled by the solver to a few a second) and who waits for them."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.events: collections.deque[tuple[int, pb.ClearingProgress]] = collections.deque(maxlen=256)
        self.seq = 0
        self.finished = False

    def publish(self, event: pb.ClearingProgress, final: bool = False) -> None:
        with self.cond:
            self.seq += 1
            self.events.append((self.seq, event))
            self.finished = self.finished or final
            self.cond.notify_all()
