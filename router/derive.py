"""Derivation: compiled program × catalog snapshot → per-offering verdicts with provenance.

Computed once per (policy hash, catalog version, ruleset version), off the request path, and
cached. The result says, for every offering, whether it is statically rejected (some top-level
clause is false or unknown whatever the request) or a candidate whose remaining (residual)
clauses `decide` finishes per request.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from router import engine
from router.compile import Ruleset, compile_policy, load_ruleset
from router.facts import static_facts
from router.offerings import Catalog
from router.program import Node, Program
from router.terms import Policy

Verdict = engine.Verdict


@dataclass(frozen=True)
class Derivation:
    policy: Policy
    catalog: Catalog
    ruleset_version: str
    program: Program
    verdicts: dict[str, dict[str, Verdict]]  # pointer → offering id → first verdict
    rejected: dict[str, tuple[str, ...]]  # offering id → failed top-level pointers (F or U)
    candidates: tuple[str, ...]  # offering ids, in catalog (id) order
    residual: dict[str, tuple[str, ...]]  # candidate id → top-level pointers left residual
    seconds: float

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.policy.hash, self.catalog.version, self.ruleset_version)

    @functools.cached_property
    def top_nodes(self) -> tuple[Node, ...]:
        return tuple(n for n in self.program.nodes if n.top)

    def verdict(self, pointer: str, offering_id: str) -> Verdict:
        return self.verdicts[pointer][offering_id]


def derive(policy: Policy, catalog: Catalog, ruleset: Ruleset | None = None) -> Derivation:
    """Run the partial-mode program over the catalog's static facts."""
    started = time.perf_counter()
    ruleset = ruleset or load_ruleset()
    program = compile_policy(policy, ruleset, "partial")
    raw = engine.run(program, static_facts(program, catalog, policy))
    verdicts = {ptr: {oid: vs[0] for oid, vs in per.items()} for ptr, per in raw.items()}
    top = [n.pointer for n in program.nodes if n.top]
    rejected: dict[str, tuple[str, ...]] = {}
    residual: dict[str, tuple[str, ...]] = {}
    candidates: list[str] = []
    for o in catalog:
        failed: list[str] = []
        left: list[str] = []
        for ptr in top:
            v = verdicts[ptr].get(o.id)
            if v is None:
                raise RuntimeError(f"engine derived no verdict for {ptr} on {o.id}")
            if v[0] in ("F", "U"):
                failed.append(ptr)
            elif v[0] == "R":
                left.append(ptr)
        if failed:
            rejected[o.id] = tuple(failed)
        else:
            candidates.append(o.id)
            residual[o.id] = tuple(left)
    return Derivation(policy, catalog, ruleset.version, program, verdicts, rejected,
                      tuple(candidates), residual, time.perf_counter() - started)


class DerivationCache:
    """Derivations by (policy hash, catalog version, ruleset version), computed off the
    request path: in worker processes (`processes=True`, the router's default; see
    `router.derive_worker`) or on one worker thread. Callers never run the engine themselves.

    `get` blocks until the derivation is ready (first use of an inline policy); `prefetch`
    starts one in the background (registered policies, catalog changes). A derivation that
    comes back from a process is re-bound to the caller's catalog object (same version), so
    cached derivations share one catalog in memory.
    """

    def __init__(self, ruleset: Ruleset | None = None, capacity: int = 64,
                 processes: bool = False) -> None:
        self.ruleset = ruleset or load_ruleset()
        self.capacity = capacity
        self.processes = processes
        self._done: OrderedDict[tuple[str, str, str], Derivation] = OrderedDict()
        self._pending: dict[tuple[str, str, str], Future[Derivation]] = {}
        self._lock = threading.Lock()
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
            from router.derive_worker import shared_pool

            inner: Future[Derivation] = shared_pool().submit(policy, catalog, self.ruleset)
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
