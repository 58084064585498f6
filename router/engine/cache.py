"""The derivation cache: derivations by (policy hash, catalog version, ruleset version),
computed off the request path in worker processes (`router.engine.worker`) or on one thread."""

from __future__ import annotations

import dataclasses
import math
import os
import threading
import weakref
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor

from router.catalog.offerings import Catalog
from router.common.problems import PolicyError
from router.engine.compile import Ruleset, compile_policy, load_ruleset
from router.engine.derive import Derivation, derive, within_budget
from router.engine.worker import DEFAULT_TIMEOUT_S, shared_pool
from router.policy.terms import Policy


class DerivationCache:
    """Derivations by (policy hash, catalog version, ruleset version), computed off the
    request path: in worker processes (`processes=True`, the router's default; see
    `router.engine.worker`) or on one worker thread. Callers never run the engine themselves.

    `get` blocks until the derivation is ready (first use of an inline policy); `prefetch`
    starts one in the background (registered policies, catalog changes). A derivation that
    comes back from a process is re-bound to the caller's catalog object (same version), so
    cached derivations share one catalog in memory.

    In processes, a derivation that takes longer than `timeout_s` seconds is stopped and
    fails with `EngineError` (`engine.derive_timeout`), as does one whose worker cannot start
    or dies twice (`engine.worker_failed`); failures are not cached. A thread cannot be
    stopped, so `processes=False` has no time limit. After `os.fork()` the child's cache keeps
    the finished derivations and forgets the parent's pending ones and its thread.
    """

    def __init__(self, ruleset: Ruleset | None = None, capacity: int = 64,
                 processes: bool = False, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        if not (isinstance(timeout_s, int | float) and math.isfinite(timeout_s)
                and timeout_s > 0):
            raise ValueError(f"derivation timeout must be a positive number of seconds, "
                             f"not {timeout_s!r}")
        self.ruleset = ruleset or load_ruleset()
        self.capacity = capacity
        self.processes = processes
        self.timeout_s = float(timeout_s)
        self._done: OrderedDict[tuple[str, str, str], Derivation] = OrderedDict()
        self._pending: dict[tuple[str, str, str], Future[Derivation]] = {}
        self._lock = threading.Lock()
        self._threads = ThreadPoolExecutor(max_workers=1, thread_name_prefix="derive")
        _track_for_fork(self)

    def _after_fork_in_child(self) -> None:
        """The parent's threads (and the derivations they were running) do not exist here:
        start afresh, keeping what is finished. Nothing here may wait on a parent's lock."""
        self._lock = threading.Lock()
        self._pending = {}
        self._threads = ThreadPoolExecutor(max_workers=1, thread_name_prefix="derive")

    def _key(self, policy: Policy, catalog: Catalog) -> tuple[str, str, str]:
        return (policy.hash, catalog.version, self.ruleset.version)

    def peek(self, policy: Policy, catalog: Catalog) -> Derivation | None:
        with self._lock:
            return self._done.get(self._key(policy, catalog))

    def prefetch(self, policy: Policy, catalog: Catalog) -> Future[Derivation]:
        key = self._key(policy, catalog)
        with self._lock:
            if key in self._done:
                done: Future[Derivation] = Future()
                done.set_result(self._done[key])
                return done
            if key in self._pending:
                return self._pending[key]
            outer: Future[Derivation] = Future()
            self._pending[key] = outer
        self._submit(policy, catalog, key, outer)
        return outer

    def _submit(self, policy: Policy, catalog: Catalog, key: tuple[str, str, str],
                outer: Future[Derivation]) -> None:
        if self.processes:
            try:  # the budget is checked here, so a worker never sees an over-budget policy
                program = compile_policy(policy, self.ruleset or load_ruleset(), "partial")
                within_budget(program, len(catalog))
            except PolicyError as exc:
                with self._lock:
                    self._pending.pop(key, None)
                outer.set_exception(exc)
                return
            inner: Future[Derivation] = shared_pool().submit(policy, catalog, self.ruleset,
                                                             self.timeout_s)
        else:
            inner = self._threads.submit(derive, policy, catalog, self.ruleset)

        def finish(f: Future[Derivation]) -> None:
            exc = f.exception()
            with self._lock:
                self._pending.pop(key, None)
                if exc is None:
                    result = f.result()
                    if result.catalog is not catalog:
                        result = dataclasses.replace(result, catalog=catalog)
                    self._done[key] = result
                    self._done.move_to_end(key)
                    while len(self._done) > self.capacity:
                        self._done.popitem(last=False)
            if exc is None:
                outer.set_result(result)
            else:
                outer.set_exception(exc)

        inner.add_done_callback(finish)

    def get(self, policy: Policy, catalog: Catalog) -> Derivation:
        return self.peek(policy, catalog) or self.prefetch(policy, catalog).result()

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)


_CACHES: weakref.WeakSet[DerivationCache] = weakref.WeakSet()
_HOOKED = False
_HOOK_LOCK = threading.Lock()


def _track_for_fork(cache: DerivationCache) -> None:
    global _HOOKED
    with _HOOK_LOCK:
        _CACHES.add(cache)
        if not _HOOKED:
            _HOOKED = True
            os.register_at_fork(after_in_child=_after_fork_in_child)


def _after_fork_in_child() -> None:
    global _HOOK_LOCK
    _HOOK_LOCK = threading.Lock()
    for cache in list(_CACHES):
        cache._after_fork_in_child()
