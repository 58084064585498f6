"""Which offerings this installation cannot call with the keys in the environment: `no_key`
(their provider's key is not set) or `unsupported` (no adapter, or no base URL)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from router.catalog.offerings import Offering
from router.dispatch.providers.registry import Unreachable, resolve, static_unreachable
from router.live.state import LiveState, LiveValues


def from_environment(offerings: Iterable[Offering],
                     environ: Mapping[str, str] | None = None) -> LiveState:
    """Mark offerings that cannot be called: `no_key` (their provider's key is not set) or
    `unsupported` (no adapter, or no base URL). Key values are never read beyond presence."""
    env = os.environ if environ is None else environ
    values: dict[str, LiveValues] = {}
    by_provider: dict[tuple[str, str], LiveValues | None] = {}
    for o in offerings:
        own_url, own_key = o.base_url, o.api_key_env
        shared = own_url is None and own_key is None  # the provider's own endpoint and key
        group = (o.provider, o.region)  # a cloud's endpoint depends on the region
        if shared and group in by_provider:
            v = by_provider[group]
        else:
            target = resolve(o.provider, env, own_url, own_key, region=o.region,
                             api_model=o.api_model or o.model)
            v = (LiveValues(status=target.status, reason=target.reason)
                 if isinstance(target, Unreachable) else None)
            if shared:
                by_provider[group] = v
        if v is not None:
            values[o.id] = v
    return LiveState(values, consulted=True)


def uncallable(offerings: Iterable[Offering]) -> dict[str, LiveValues]:
    """Offerings this installation cannot call whatever the environment holds (no adapter for
    their provider, or its extra not installed), as status `unsupported` with the reason. A
    static fact: dry runs reject them too, so `route` never names a winner `complete` cannot
    call."""
    values: dict[str, LiveValues] = {}
    by_provider: dict[str, LiveValues | None] = {}
    for o in offerings:
        if o.provider not in by_provider:
            why = static_unreachable(o.provider)
            by_provider[o.provider] = (None if why is None
                                       else LiveValues(status=why.status, reason=why.reason))
        v = by_provider[o.provider]
        if v is not None:
            values[o.id] = v
    return values
