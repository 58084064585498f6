"""The live state a dispatch decides on, layered, first match wins: `disabled` by an overlay,
`no_key` / `unsupported` (keys and adapters in this environment), `not_entitled` (the last
discovery), `circuit_open`; then observed latency and error rate."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from router.catalog.offerings import Catalog, Offering
from router.dispatch.discovery import Discovery
from router.dispatch.providers.base import Endpoint
from router.dispatch.providers.registry import Unreachable
from router.dispatch.reachability import from_environment
from router.live.health import HealthTracker
from router.live.state import Layered, LiveState, LiveValues, disabled_values


class LiveView:
    def __init__(self, environ: Mapping[str, str], health: HealthTracker,
                 endpoint: Callable[[Offering], Endpoint | Unreachable]) -> None:
        self.environ = environ
        self.health = health
        self.endpoint = endpoint
        self.discovered: Discovery | None = None
        self._unreachable: tuple[str, dict[str, LiveValues]] | None = None

    def of(self, catalog: Catalog) -> LiveState:
        cached = self._unreachable
        if cached is None or cached[0] != catalog.version:
            static = {**from_environment(catalog, self.environ).values,
                      **disabled_values(catalog)}
            cached = self._unreachable = (catalog.version, static)
        observed = self.health.snapshot()
        entitled = self.discovered.values if self.discovered is not None else {}
        return LiveState(Layered(cached[1], entitled, observed), consulted=True)

    def remember(self, result: Discovery, catalog: Catalog) -> Discovery:
        """Take a discovery's marks. Marks from an earlier discovery stay for every endpoint
        not listed successfully this time (not asked, or its listing failed): a failure hides
        nothing new and un-hides nothing either."""
        if self.discovered is not None:
            listed = {(e.provider, e.base_url) for e in result.endpoints if e.error is None}
            kept = {}
            for oid, v in self.discovered.values.items():
                o = catalog.get(oid)
                ep = self.endpoint(o) if o is not None else None
                if isinstance(ep, Endpoint) and (ep.provider, ep.base_url) not in listed:
                    kept[oid] = v
            result = Discovery(result.at, {**kept, **result.values}, result.endpoints)
        self.discovered = result
        return result
