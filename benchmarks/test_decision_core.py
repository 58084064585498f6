"""Cold derivation (pyDatalog) and hot decide, N offerings × K filter clauses.

Run: python -m pytest benchmarks/ --benchmark-only --benchmark-columns=min,median,mean,max,rounds
"""

from __future__ import annotations

import datetime as dt
import time

import pytest

from benchmarks.workload import REQUEST, catalog, policy
from router.decide.decider import Decider
from router.engine.derive import derive
from router.live.state import LiveState
from router.policy.admit import admit
from router.request.features import features_of

SIZES = [100, 500, 2000]
KS = [1, 5, 15]
AT = dt.datetime(2026, 11, 26, tzinfo=dt.UTC)


@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("n", SIZES)
def test_cold_derivation(benchmark, n: int, k: int) -> None:  # type: ignore[no-untyped-def]
    cat = catalog(n)
    pol = admit(policy(k))
    result = benchmark.pedantic(derive, args=(pol, cat), rounds=3 if n == 2000 else 5,
                                iterations=1, warmup_rounds=0)
    assert len(result.candidates) + len(result.rejected) == n


@pytest.mark.parametrize("rank", ["est_cost", "output_price"])
@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("n", SIZES)
def test_hot_decide(benchmark, n: int, k: int, rank: str) -> None:  # type: ignore[no-untyped-def]
    d = derive(admit(policy(k, rank)), catalog(n))
    decider = Decider(d)
    features = features_of(REQUEST)
    live = LiveState.not_consulted()
    decision = benchmark(decider.decide, features, live, AT)
    assert decision.selected is not None or not d.candidates
    # p99 over 2,000 timed calls, reported alongside pytest-benchmark's stats.
    samples = []
    for _ in range(2000):
        t0 = time.perf_counter_ns()
        decider.decide(features, live, AT)
        samples.append(time.perf_counter_ns() - t0)
    samples.sort()
    benchmark.extra_info["p50_us"] = samples[len(samples) // 2] / 1000
    benchmark.extra_info["p99_us"] = samples[int(len(samples) * 0.99)] / 1000
    benchmark.extra_info["candidates"] = len(d.candidates)
