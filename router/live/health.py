"""Live health per offering, from the router's own traffic: a circuit breaker and observed
latency / error rate. `decide` reads it as live facts (`status`, `latency_ms`, `error_rate`).

Breaker: `failure_threshold` consecutive failures (`error`, `timeout`, `rate_limit`; never a
`bad_request`, which is the caller's) open the circuit for `cooldown_s`. After that one probe is
let through (half-open): success closes the circuit, failure opens it again.
"""

from __future__ import annotations

import datetime as dt
import statistics
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from router.live.state import LiveValues

COUNTED = frozenset({"error", "timeout", "rate_limit"})


@dataclass(frozen=True)
class BreakerSettings:
    failure_threshold: int = 3
    cooldown_s: float = 30.0
    window: int = 50  # recent calls kept for latency and error rate


@dataclass
class _Health:
    window: int
    consecutive: int = 0
    open_until: dt.datetime | None = None
    opened_after: int = 0
    probing: bool = False
    latencies: deque[float] = field(default_factory=deque)
    outcomes: deque[bool] = field(default_factory=deque)

    def remember(self, ok: bool, latency_ms: float | None) -> None:
        self.outcomes.append(ok)
        if len(self.outcomes) > self.window:
            self.outcomes.popleft()
        if ok and latency_ms is not None:
            self.latencies.append(latency_ms)
            if len(self.latencies) > self.window:
                self.latencies.popleft()


class HealthTracker:
    """Thread-safe; one per router, shared by every dispatch."""

    def __init__(self, clock: Callable[[], dt.datetime],
                 settings: BreakerSettings | None = None) -> None:
        self.clock = clock
        self.settings = settings or BreakerSettings()
        self._lock = threading.Lock()
        self._health: dict[str, _Health] = {}

    def _get(self, offering_id: str) -> _Health:
        h = self._health.get(offering_id)
        if h is None:
            h = self._health[offering_id] = _Health(self.settings.window)
        return h

    def admit_call(self, offering_id: str) -> str | None:
        """None if a call may go out now; else why not (the circuit is open / a probe is out)."""
        now = self.clock()
        with self._lock:
            h = self._health.get(offering_id)
            if h is None or h.open_until is None:
                return None
            if now < h.open_until:
                return self._open_reason(h)
            if h.probing:
                return "circuit half-open: a probe call is already in flight"
            h.probing = True
            return None

    def record(self, offering_id: str, outcome: str, latency_ms: float | None) -> None:
        """Account one attempt's outcome (`ok` or a failure kind)."""
        now = self.clock()
        s = self.settings
        with self._lock:
            h = self._get(offering_id)
            if outcome == "ok":
                h.remember(True, latency_ms)
                h.consecutive = 0
                h.open_until = None
                h.probing = False
                return
            if outcome not in COUNTED:
                h.probing = False
                return
            h.remember(False, None)
            h.consecutive += 1
            if h.probing or h.consecutive >= s.failure_threshold:
                h.open_until = now + dt.timedelta(seconds=s.cooldown_s)
                h.opened_after = h.consecutive
                h.probing = False

    def release_probe(self, offering_id: str) -> None:
        """A half-open probe that was admitted but never sent gives its slot back."""
        with self._lock:
            h = self._health.get(offering_id)
            if h is not None:
                h.probing = False

    def values(self, offering_id: str) -> LiveValues | None:
        """The live values of one offering, or None when nothing was observed."""
        now = self.clock()
        with self._lock:
            h = self._health.get(offering_id)
            if h is None:
                return None
            latency = statistics.median(h.latencies) if h.latencies else None
            rate = (sum(1 for ok in h.outcomes if not ok) / len(h.outcomes)
                    if h.outcomes else None)
            if h.open_until is not None and now < h.open_until:
                return LiveValues(status="circuit_open", latency_ms=latency, error_rate=rate,
                                  reason=self._open_reason(h))
            return LiveValues(latency_ms=latency, error_rate=rate)

    def snapshot(self, offering_ids: Iterable[str]) -> dict[str, LiveValues]:
        out: dict[str, LiveValues] = {}
        for oid in offering_ids:
            v = self.values(oid)
            if v is not None:
                out[oid] = v
        return out

    def observed(self) -> list[str]:
        with self._lock:
            return sorted(self._health)

    @staticmethod
    def _open_reason(h: _Health) -> str:
        assert h.open_until is not None
        until = h.open_until.astimezone(dt.UTC).strftime("%H:%M:%S")
        return f"circuit open until {until} UTC after {h.opened_after} failures"
