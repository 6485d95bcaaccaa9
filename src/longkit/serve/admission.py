"""The bounded queue: at most max_batch generations decode together and max_queue more wait for a slot; a request
that would go past that is refused at once with a 429 whose Retry-After is the recent typical latency."""

from __future__ import annotations

import math
from types import TracebackType

from longkit.serve.metrics import Metrics
from longkit.serve.protocol import ApiError


class Ticket:
    """Generation slots held by one request until released (releasing twice is harmless)."""

    def __init__(self, metrics: Metrics, slots: int):
        self.metrics, self.slots, self.released = metrics, slots, False
        metrics.running += slots

    def release(self) -> None:
        """Give the slots back."""
        if not self.released:
            self.released = True
            self.metrics.running -= self.slots

    def __enter__(self) -> Ticket:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


class Admission:
    """Admits generations while slots are free; `metrics.running` is the count (it is also the /metrics gauge)."""

    def __init__(self, metrics: Metrics, max_batch: int, max_queue: int):
        self.metrics, self.max_batch, self.max_queue = metrics, max_batch, max_queue

    @property
    def capacity(self) -> int:
        """Generations that may be admitted at once."""
        return self.max_batch + self.max_queue

    def admit(self, slots: int) -> Ticket:
        """Hold `slots` generation slots, or raise a 429 when the queue is full."""
        if self.metrics.running + slots > self.capacity:
            wait = max(1, min(60, math.ceil(self.metrics.typical_latency())))
            raise ApiError(
                429,
                f"the server is at capacity ({self.max_batch} generating, {self.max_queue} queued); "
                f"retry after {wait} s",
                headers={"Retry-After": str(wait)},
            )
        return Ticket(self.metrics, slots)
