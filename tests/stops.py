"""A stop request for in-process training runs that lands at an exact batch."""

from __future__ import annotations


class StopAfter:
    """A stop_event that turns on after `n` checks (run_training checks once before fit, at each
    batch end and at each epoch's end), so a test can stop a run at a known step."""

    def __init__(self, n: int):
        self.n, self.calls = n, 0

    def is_set(self) -> bool:
        self.calls += 1
        return self.calls > self.n
