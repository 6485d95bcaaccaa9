"""Server counters in Prometheus' text exposition format (version 0.0.4): requests by endpoint and status, tokens in
and out, requests running and queued, and a latency histogram."""

from __future__ import annotations

import threading
from collections import Counter, deque

BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, float("inf"))


class Metrics:
    """Thread-safe counters of one server."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[tuple[str, int]] = Counter()
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.running = 0  # generations admitted and not finished (in the batch or waiting for a slot)
        self.latency_buckets = [0] * len(BUCKETS)
        self.latency_sum = 0.0
        self.latency_count = 0
        self.recent: deque[float] = deque(maxlen=64)  # latencies of recent generations, for Retry-After

    def observe(
        self, endpoint: str, status: int, seconds: float, prompt_tokens: int = 0, completion_tokens: int = 0
    ) -> None:
        """Record one finished request."""
        with self._lock:
            self.requests[(endpoint, status)] += 1
            self.prompt_tokens += prompt_tokens
            self.completion_tokens += completion_tokens
            self.latency_sum += seconds
            self.latency_count += 1
            for i, b in enumerate(BUCKETS):
                if seconds <= b:
                    self.latency_buckets[i] += 1
            if status == 200 and endpoint.startswith("/v1/") and endpoint != "/v1/models":
                self.recent.append(seconds)

    def typical_latency(self) -> float:
        """Mean latency of recent generations (seconds), 1 when there are none yet."""
        with self._lock:
            return sum(self.recent) / len(self.recent) if self.recent else 1.0

    def render(self, max_batch: int) -> str:
        """The Prometheus text page."""
        with self._lock:
            lines = [
                "# HELP longkit_requests_total HTTP requests by endpoint and status.",
                "# TYPE longkit_requests_total counter",
            ]
            for (endpoint, status), n in sorted(self.requests.items()):
                lines.append(f'longkit_requests_total{{endpoint="{endpoint}",status="{status}"}} {n}')
            lines += [
                "# HELP longkit_prompt_tokens_total Prompt tokens of answered requests.",
                "# TYPE longkit_prompt_tokens_total counter",
                f"longkit_prompt_tokens_total {self.prompt_tokens}",
                "# HELP longkit_completion_tokens_total Generated tokens of answered requests.",
                "# TYPE longkit_completion_tokens_total counter",
                f"longkit_completion_tokens_total {self.completion_tokens}",
                "# HELP longkit_requests_running Generations admitted and not finished.",
                "# TYPE longkit_requests_running gauge",
                f"longkit_requests_running {self.running}",
                "# HELP longkit_queue_depth Generations waiting for a batch slot.",
                "# TYPE longkit_queue_depth gauge",
                f"longkit_queue_depth {max(0, self.running - max_batch)}",
                "# HELP longkit_request_duration_seconds Request latency.",
                "# TYPE longkit_request_duration_seconds histogram",
            ]
            for b, n in zip(BUCKETS, self.latency_buckets):
                le = "+Inf" if b == float("inf") else repr(b)
                lines.append(f'longkit_request_duration_seconds_bucket{{le="{le}"}} {n}')
            lines += [
                f"longkit_request_duration_seconds_sum {self.latency_sum:.6f}",
                f"longkit_request_duration_seconds_count {self.latency_count}",
            ]
        return "\n".join(lines) + "\n"
