"""A derivation that runs long neither blocks other callers nor runs forever (issue 11, worker
half of finding 6): while one worker is busy another serves the next caller, and a derivation
past its time limit is stopped — its worker killed and replaced — with `engine.derive_timeout`.

A worker stopped with SIGSTOP stands for a derivation that never ends: it cannot answer before
its deadline however fast the machine is, so these tests assert no speed."""

from __future__ import annotations

import os
import signal
import time

import pytest

from benchmarks.workload import catalog, policy
from router import Router, RouterConfig
from router.engine.cache import DerivationCache
from router.engine.compile import load_ruleset
from router.engine.derive import derive
from router.engine.worker import EngineError, WorkerPool, WorkerProcess, shared_pool
from router.policy.admit import admit


def _started(pool: WorkerPool, count: int) -> list[WorkerProcess]:
    deadline = time.monotonic() + 120  # a guard against hanging, not a speed assertion
    while time.monotonic() < deadline:
        with pool._lock:
            workers = list(pool._all)
        if len(workers) >= count:
            return workers
        time.sleep(0.001)
    raise AssertionError("the pool did not start its workers")


def test_a_stuck_derivation_leaves_the_other_worker_to_the_next_caller() -> None:
    assert shared_pool().size >= 2
    cat, ruleset = catalog(300), load_ruleset()
    stuck_policy, other_policy = admit(policy(9)), admit(policy(4))
    pool = WorkerPool()
    try:
        stuck = pool.submit(stuck_policy, cat, ruleset, timeout_s=600)
        [busy] = _started(pool, 1)
        os.kill(busy.proc.pid, signal.SIGSTOP)  # this derivation cannot finish now
        other = pool.submit(other_policy, cat, ruleset, timeout_s=600).result(timeout=120)
        assert not stuck.done()
        assert other.verdicts == derive(other_policy, cat, ruleset).verdicts
        os.kill(busy.proc.pid, signal.SIGCONT)
        assert stuck.result(timeout=120).verdicts == derive(stuck_policy, cat, ruleset).verdicts
    finally:
        pool.close()


def test_a_derivation_past_its_limit_is_stopped_and_its_worker_replaced() -> None:
    cat, ruleset, pol = catalog(60), load_ruleset(), admit(policy(2))
    pool = WorkerPool(size=1)
    try:
        pool.submit(pol, cat, ruleset).result(timeout=120)  # the worker is up
        [worker] = _started(pool, 1)
        os.kill(worker.proc.pid, signal.SIGSTOP)
        with pytest.raises(EngineError) as caught:
            pool.submit(admit(policy(3)), cat, ruleset, timeout_s=0.5).result(timeout=120)
        err = caught.value
        assert err.code == "engine.derive_timeout"
        assert "longer than 0.5 s" in err.message and "60 offerings" in err.message
        assert err.hint and "derive_timeout_s" in err.hint
        assert worker.proc.returncode == -signal.SIGKILL  # killed, even though stopped
        again = pool.submit(admit(policy(3)), cat, ruleset).result(timeout=120)
        assert again.verdicts == derive(admit(policy(3)), cat, ruleset).verdicts
        assert worker not in pool._all and len(pool._all) == 1
    finally:
        pool.close()


def test_the_router_setting_bounds_a_derivation() -> None:
    """`RouterConfig(derive_timeout_s=...)`: the limit is a hashed setting, and a derivation
    that needs far longer (seconds, here given a hundredth of one) fails with the figure."""
    cat = catalog(2000)
    config = RouterConfig(environ={}, derive_timeout_s=0.01)
    assert config.hash != RouterConfig(environ={}).hash
    assert config.settings()["derive_timeout_s"] == 0.01
    with Router(cat, config=config) as router, pytest.raises(EngineError) as caught:
        router.route(policy(15), {"messages": [{"role": "user", "content": "hi"}]})
    assert caught.value.code == "engine.derive_timeout"
    assert "longer than 0.01 s" in caught.value.message


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf")])
def test_a_nonsense_limit_is_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="positive number of seconds"):
        DerivationCache(processes=True, timeout_s=bad)
