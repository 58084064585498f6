"""`HealthTracker`: the window's latency median and error rate, kept incrementally, equal the
plain computation over the last `window` calls; values read are kept only while nothing
changes them; an open circuit's status follows the clock."""

from __future__ import annotations

import datetime as dt
import statistics

from hypothesis import given, settings
from hypothesis import strategies as st

from router.live.health import BreakerSettings, HealthTracker

T0 = dt.datetime(2026, 12, 3, tzinfo=dt.UTC)
OUTCOMES = ["ok", "error", "timeout", "rate_limit", "bad_request"]
calls = st.lists(st.tuples(st.sampled_from(OUTCOMES),
                           st.floats(min_value=0, max_value=1e5, allow_nan=False)),
                 max_size=120)


@settings(max_examples=200, deadline=None)
@given(calls, st.integers(min_value=1, max_value=12))
def test_window_values_equal_the_plain_computation(seq: list[tuple[str, float]],
                                                   window: int) -> None:
    now = [T0]
    tracker = HealthTracker(lambda: now[0], BreakerSettings(failure_threshold=10**6,
                                                            window=window))
    outcomes: list[bool] = []
    latencies: list[float] = []
    for outcome, latency in seq:
        tracker.record("a/m", outcome, latency)
        if outcome == "ok":
            outcomes.append(True)
            latencies.append(latency)
        elif outcome != "bad_request":
            outcomes.append(False)
        got = tracker.values("a/m")
        assert got is not None
        recent, fast = outcomes[-window:], latencies[-window:]
        assert got.latency_ms == (statistics.median(fast) if fast else None)
        assert got.error_rate == ((sum(not ok for ok in recent) / len(recent))
                                  if recent else None)
        assert got.status == "available"
        assert tracker.snapshot() == {"a/m": got}


def test_values_are_kept_until_a_call_changes_them() -> None:
    tracker = HealthTracker(lambda: T0)
    assert tracker.values("a/m") is None and tracker.snapshot() == {}
    tracker.record("a/m", "ok", 10.0)
    first = tracker.values("a/m")
    assert first is tracker.values("a/m")  # nothing changed: the same values
    tracker.record("a/m", "ok", 30.0)
    second = tracker.values("a/m")
    assert second is not first and second is not None and second.latency_ms == 20.0
    tracker.record("b/m", "error", None)
    seen = tracker.snapshot()  # every observed offering in id order, no other
    assert list(seen) == ["a/m", "b/m"] and "c/m" not in seen
    assert seen == {"a/m": second, "b/m": tracker.values("b/m")}


def test_an_open_circuit_reads_open_until_its_cooldown_ends() -> None:
    now = [T0]
    tracker = HealthTracker(lambda: now[0], BreakerSettings(failure_threshold=2,
                                                            cooldown_s=30.0))
    for _ in range(2):
        tracker.record("a/m", "timeout", None)
    shut = tracker.values("a/m")
    assert shut is not None and shut.status == "circuit_open" and shut.error_rate == 1.0
    assert shut.reason is not None and "after 2 failures" in shut.reason
    now[0] = T0 + dt.timedelta(seconds=31)  # the same state, read later
    later = tracker.values("a/m")
    assert later is not None and later.status == "available"
    assert tracker.admit_call("a/m") is None  # the half-open probe
    tracker.record("a/m", "ok", 5.0)
    healed = tracker.values("a/m")
    assert healed is not None and healed.status == "available"
    assert healed.latency_ms == 5.0 and healed.error_rate == 2 / 3
