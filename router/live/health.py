"""Live health per offering, from the router's own traffic: a circuit breaker and observed
latency / error rate. `decide` reads it as live facts (`status`, `latency_ms`, `error_rate`).

Breaker: `failure_threshold` consecutive failures (`error`, `timeout`, `rate_limit`; never a
`bad_request`, which is the caller's) open the circuit for `cooldown_s`. After that one probe is
let through (half-open): success closes the circuit, failure opens it again.
"""

from __future__ import annotations

import bisect
import datetime as dt
import threading
from collections import deque
from collections.abc import Callable
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
    """One offering's breaker and its last `window` calls. The window is kept so that reading
    it costs the same however large it is: latencies also in sorted order (the median is the
    middle one), failures counted as they come and go, and the values read kept until the
    next call changes them (every decision reads every observed offering's)."""

    window: int
    consecutive: int = 0
    open_until: dt.datetime | None = None
    opened_after: int = 0
    probing: bool = False
    latencies: deque[float] = field(default_factory=deque)  # in arrival order
    ordered: list[float] = field(default_factory=list)  # the same latencies, sorted
    outcomes: deque[bool] = field(default_factory=deque)
    failures: int = 0  # of `outcomes`, those that failed
    read: LiveValues | None = None  # `values()` since the last change, circuit closed

    def remember(self, ok: bool, latency_ms: float | None) -> None:
        self.read = None
        self.outcomes.append(ok)
        self.failures += not ok
        if len(self.outcomes) > self.window:
            self.failures -= not self.outcomes.popleft()
        if ok and latency_ms is not None and latency_ms == latency_ms:  # (not NaN)
            self.latencies.append(latency_ms)
            bisect.insort(self.ordered, latency_ms)
            if len(self.latencies) > self.window:
                gone = self.latencies.popleft()
                del self.ordered[bisect.bisect_left(self.ordered, gone)]

    def median_latency(self) -> float | None:
        """`statistics.median` of the window's latencies."""
        n = len(self.ordered)
        if not n:
            return None
        half = n // 2
        return self.ordered[half] if n % 2 else (self.ordered[half - 1] + self.ordered[half]) / 2

    def error_rate(self) -> float | None:
        return self.failures / len(self.outcomes) if self.outcomes else None


class HealthTracker:
    """Thread-safe; one per router, shared by every dispatch."""

    def __init__(self, clock: Callable[[], dt.datetime],
                 settings: BreakerSettings | None = None) -> None:
        self.clock = clock
        self.settings = settings or BreakerSettings()
        self._lock = threading.Lock()
        self._health: dict[str, _Health] = {}
        self._ids: list[str] = []  # of `_health`, sorted

    def _get(self, offering_id: str) -> _Health:
        h = self._health.get(offering_id)
        if h is None:
            h = self._health[offering_id] = _Health(self.settings.window)
            bisect.insort(self._ids, offering_id)
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
        with self._lock:
            h = self._health.get(offering_id)
            return None if h is None else self._values(h)

    def _values(self, h: _Health) -> LiveValues:
        if h.read is not None:
            return h.read
        latency, rate = h.median_latency(), h.error_rate()
        if h.open_until is not None:  # (not kept: whether it is still open depends on the time)
            if self.clock() < h.open_until:
                return LiveValues(status="circuit_open", latency_ms=latency, error_rate=rate,
                                  reason=self._open_reason(h))
            return LiveValues(latency_ms=latency, error_rate=rate)
        h.read = LiveValues(latency_ms=latency, error_rate=rate)
        return h.read

    def snapshot(self) -> dict[str, LiveValues]:
        """The live values of every observed offering, in id order."""
        with self._lock:
            health = self._health
            return {oid: self._values(health[oid]) for oid in self._ids}

    @staticmethod
    def _open_reason(h: _Health) -> str:
        assert h.open_until is not None
        until = h.open_until.astimezone(dt.UTC).strftime("%H:%M:%S")
        return f"circuit open until {until} UTC after {h.opened_after} failures"
