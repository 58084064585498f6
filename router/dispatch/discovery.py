"""Discovery: ask each provider with a key which models that key may use, and mark the rest
`not_entitled` (a live status, shown by `explain` with its reason).

Offerings are grouped by endpoint (provider, base URL and key), each endpoint's model listing is
read once, and an offering is entitled when its provider-facing name (`api_model`, else `model`) is
in the listing (a `models/` prefix, as Gemini writes it, is ignored). An endpoint whose listing
fails is reported; `Router.discover` keeps that endpoint's earlier marks as they were, so a
failure never hides an offering on a guess, and never un-hides one either.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import httpx

from router.catalog.offerings import Catalog, Offering
from router.dispatch.failures import UpstreamFailure, scrubbed
from router.dispatch.providers.base import Endpoint, Secret
from router.dispatch.providers.registry import Unreachable, adapter
from router.live.state import LiveValues


@dataclass(frozen=True)
class EndpointResult:
    provider: str
    base_url: str
    models: int | None  # how many the listing had; None when the listing failed
    entitled: int = 0
    not_entitled: tuple[str, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class Discovery:
    at: dt.datetime
    values: dict[str, LiveValues] = field(default_factory=dict)  # not_entitled offerings
    endpoints: tuple[EndpointResult, ...] = ()


def _name(model_id: str) -> str:
    return model_id.removeprefix("models/")


async def discover(catalog: Catalog, endpoint_of: Callable[[Offering], Endpoint | Unreachable],
                   client: httpx.AsyncClient, now: dt.datetime, timeout_s: float = 10.0,
                   providers: Iterable[str] | None = None) -> Discovery:
    wanted = set(providers) if providers is not None else None
    groups: dict[tuple[str, str, Secret | None], tuple[Endpoint, list[Offering]]] = {}
    for o in catalog:
        if wanted is not None and o.provider not in wanted:
            continue
        ep = endpoint_of(o)
        if isinstance(ep, Unreachable):
            continue
        groups.setdefault((ep.provider, ep.base_url, ep.api_key), (ep, []))[1].append(o)

    async def one(ep: Endpoint, offerings: list[Offering]
                  ) -> tuple[EndpointResult, dict[str, LiveValues]]:
        try:
            listed = await adapter(ep.wire).list_models(client, ep, timeout_s, now)
        except UpstreamFailure as exc:
            f = scrubbed(exc, ep.api_key.reveal() if ep.api_key else None)
            return EndpointResult(ep.provider, ep.base_url, None,
                                  error=f"{f.kind}: {f.message}"), {}
        names = {_name(m) for m in listed}
        values: dict[str, LiveValues] = {}
        stamp = now.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        for o in offerings:
            name = o.api_model or o.model
            if name not in names:
                values[o.id] = LiveValues(
                    status="not_entitled",
                    reason=f"the `{ep.provider}` key may not use `{name}`: not in the "
                           f"provider's model list (checked {stamp} UTC)")
        return (EndpointResult(ep.provider, ep.base_url, len(names),
                               len(offerings) - len(values), tuple(sorted(values))), values)

    results = await asyncio.gather(*(one(ep, offs) for ep, offs in groups.values()))
    merged: dict[str, LiveValues] = {}
    for _, values in results:
        merged.update(values)
    return Discovery(now, merged, tuple(sorted((r for r, _ in results),
                                               key=lambda r: (r.provider, r.base_url))))
