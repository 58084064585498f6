"""Live state: what `decide` reads that no file holds (status, latency, error rate).

Live values never force a new derivation; the decision record lists the ones it read. Without
live state consulted (a dry run without `--live`), every offering is `available` and latency and
error rate are unknown.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from router.offerings import Offering

class LiveValues(BaseModel):
    """The live values of one offering, as a decision read them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: str = "available"
    latency_ms: float | None = None
    error_rate: float | None = None
    reason: str | None = None  # e.g. "no key: set OPENAI_API_KEY"


@dataclass(frozen=True)
class LiveState:
    """A snapshot of live facts; offerings not listed are available with unknown metrics."""

    values: Mapping[str, LiveValues] = field(default_factory=dict)
    consulted: bool = False

    def of(self, offering_id: str) -> LiveValues:
        return self.values.get(offering_id, _AVAILABLE)

    @staticmethod
    def not_consulted() -> LiveState:
        return LiveState({}, consulted=False)


_AVAILABLE = LiveValues()


class Layered(Mapping[str, LiveValues]):
    """Several live sources read as one; the first that has an offering wins. Lookups cost one
    dict probe per layer; nothing is copied per decision."""

    def __init__(self, *layers: Mapping[str, LiveValues]) -> None:
        self.layers = [layer for layer in layers if layer]

    def get(self, key: str, default: LiveValues | None = None) -> LiveValues | None:  # type: ignore[override]
        for layer in self.layers:
            v = layer.get(key)
            if v is not None:
                return v
        return default

    def __getitem__(self, key: str) -> LiveValues:
        v = self.get(key)
        if v is None:
            raise KeyError(key)
        return v

    def __iter__(self) -> Iterator[str]:
        seen: set[str] = set()
        for layer in self.layers:
            for k in layer:
                if k not in seen:
                    seen.add(k)
                    yield k

    def __len__(self) -> int:
        return sum(1 for _ in self)


def from_environment(offerings: Iterable[Offering],
                     environ: Mapping[str, str] | None = None) -> LiveState:
    """Mark offerings that cannot be called: `no_key` (their provider's key is not set) or
    `unsupported` (no adapter, or no base URL). Key values are never read beyond presence."""
    from router.providers.registry import Unreachable, resolve

    env = os.environ if environ is None else environ
    values: dict[str, LiveValues] = {}
    by_provider: dict[str, LiveValues | None] = {}
    for o in offerings:
        own_url = getattr(o, "base_url", None)
        if own_url is None and o.provider in by_provider:
            v = by_provider[o.provider]
        else:
            target = resolve(o.provider, env, own_url)
            v = (LiveValues(status=target.status, reason=target.reason)
                 if isinstance(target, Unreachable) else None)
            if own_url is None:
                by_provider[o.provider] = v
        if v is not None:
            values[o.id] = v
    return LiveState(values, consulted=True)


def is_deprecated(deprecation_date: str | None, at: dt.datetime) -> bool:
    """An offering is deprecated from its deprecation date on; no date means not deprecated."""
    return deprecation_date is not None and dt.date.fromisoformat(deprecation_date) <= at.date()
