"""The residual built-ins checked over a fixed list of offerings at once, for a record's full
ranking (`Decider.failed_all`): each index is built once per decider, so a request pays for a
lookup, not a pass over every candidate.

- `builtin:context_fits_input`: the context windows sorted once; the offerings a request's
  input overflows are a prefix found by bisection (plus those with no known window).
- `builtin:capabilities_cover_needs`: the failing set per distinct `needs` (a request needs
  at most a few capabilities, so there are few distinct sets), kept in a bounded memo.
- `builtin:status_available`: the ids probed against the live sources (`not_available`).

Each equals its one-offering form (`evaluate._BUILTIN_FAST`): property tests in
tests/test_differential.py check both against each other.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Callable, Sequence, Set

from router.catalog.offerings import Offering
from router.decide.evaluate import Context
from router.live.state import not_available

MAX_NEEDS_SETS = 64  # distinct `needs` remembered per index

Failures = Callable[[Context], Set[str]]


class Unavailable:
    """`builtin:status_available` fails where a live source lists another status."""

    def __init__(self, offerings: Sequence[Offering]) -> None:
        self.ids = frozenset(o.id for o in offerings)

    def __call__(self, ctx: Context) -> Set[str]:
        values = ctx.live.values  # an offering not listed is available
        return not_available(self.ids, values) if values else frozenset()


class InputOverflows:
    """`builtin:context_fits_input` fails where the window is unknown or below the input."""

    def __init__(self, offerings: Sequence[Offering]) -> None:
        known = sorted((o.context_window, o.id) for o in offerings
                       if o.context_window is not None)
        self.windows = [window for window, _ in known]
        self.ids = [oid for _, oid in known]
        self.unknown = frozenset(o.id for o in offerings if o.context_window is None)

    def __call__(self, ctx: Context) -> Set[str]:
        below = bisect_left(self.windows, ctx.features.input_tokens)  # windows < tokens
        return self.unknown.union(self.ids[:below]) if below else self.unknown


class NeedsUncovered:
    """`builtin:capabilities_cover_needs` fails where capabilities are unknown or lack one the
    request needs."""

    def __init__(self, offerings: Sequence[Offering]) -> None:
        self.offerings = list(offerings)
        self.unknown = frozenset(o.id for o in offerings if o.capabilities is None)
        self._by_needs: dict[tuple[str, ...], frozenset[str]] = {}
        self._lock = threading.Lock()

    def __call__(self, ctx: Context) -> Set[str]:
        needs = ctx.features.needs
        if not needs:
            return self.unknown
        found = self._by_needs.get(needs)
        if found is None:
            found = self.unknown.union(
                o.id for o in self.offerings
                if o.capabilities is not None and not all(n in o.capabilities for n in needs))
            with self._lock:
                if len(self._by_needs) < MAX_NEEDS_SETS:
                    self._by_needs[needs] = found
        return found


BUILTIN_BATCH: dict[str, Callable[[Sequence[Offering]], Failures]] = {
    "builtin:status_available": Unavailable,
    "builtin:capabilities_cover_needs": NeedsUncovered,
    "builtin:context_fits_input": InputOverflows,
}
