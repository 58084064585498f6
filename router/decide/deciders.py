"""Deciders per (policy hash, catalog version, ruleset version), over the derivation cache, and
the policies registered to be derived ahead of every catalog version."""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict

from router.catalog.offerings import Catalog
from router.decide.decider import Decider
from router.engine.cache import DerivationCache
from router.engine.derive import Derivation
from router.policy.terms import Policy


class Deciders:
    def __init__(self, cache: DerivationCache) -> None:
        self.cache = cache
        self._deciders: OrderedDict[tuple[str, str, str], Decider] = OrderedDict()
        self._registered: dict[str, Policy] = {}
        self._lock = threading.Lock()

    def register(self, policy: Policy, catalog: Catalog) -> None:
        """Remember a policy and start deriving it in the background."""
        with self._lock:
            self._registered[policy.hash] = policy
        self.cache.prefetch(policy, catalog)

    def prepare(self, catalog: Catalog) -> int:
        """Derive every registered policy for `catalog` (blocking); returns how many."""
        with self._lock:
            policies = list(self._registered.values())
        for f in [self.cache.prefetch(p, catalog) for p in policies]:
            f.result()
        return len(policies)

    def derivation(self, policy: Policy, catalog: Catalog) -> Derivation:
        return self.cache.get(policy, catalog)

    def decider(self, policy: Policy, catalog: Catalog) -> Decider:
        d = self.derivation(policy, catalog)
        with self._lock:
            decider = self._deciders.get(d.key)
            if decider is None:
                decider = self._deciders[d.key] = Decider(d)
                while len(self._deciders) > self.cache.capacity:
                    self._deciders.popitem(last=False)
            else:
                self._deciders.move_to_end(d.key)
            return decider

    async def decider_async(self, policy: Policy, catalog: Catalog) -> Decider:
        """`decider` without blocking the event loop on a first derivation."""
        if self.cache.peek(policy, catalog) is None:
            await asyncio.wrap_future(self.cache.prefetch(policy, catalog))
        return self.decider(policy, catalog)

    def close(self) -> None:
        self.cache.close()
