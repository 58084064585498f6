"""Live state: what `decide` reads that no file holds (status, latency, error rate).

Live values never force a new derivation; the decision record lists the ones it read. Without
live state consulted (a dry run without `--live`), every offering is `available` and latency and
error rate are unknown.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict

from router.catalog.offerings import Catalog


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

    def __bool__(self) -> bool:
        """Whether any layer holds an offering, without counting them (`len` walks every key
        of every layer: thousands for the installation's uncallable offerings)."""
        return any(bool(layer) for layer in self.layers)


def flat_layers(values: Mapping[str, LiveValues]) -> list[Mapping[str, LiveValues]]:
    """The live sources `values` reads, in order (first match wins), `Layered` unfolded and
    empty ones left out."""
    if isinstance(values, Layered):
        return [inner for layer in values.layers for inner in flat_layers(layer)]
    return [values] if values else []


def not_available(ids: Iterable[str], values: Mapping[str, LiveValues]) -> set[str]:
    """Which of `ids` have a live status other than `available` (an id no source lists is
    available): each source is probed once for all the ids still undecided (for a dict, by
    one C-level intersection that looks up each undecided id)."""
    out: set[str] = set()
    pending = set(ids)
    for layer in flat_layers(values):
        if not pending:
            break
        found = layer.keys() & pending if type(layer) is dict else \
            {oid for oid in pending if oid in layer}  # (dict keys & set: probes the set's)
        out.update(oid for oid in found if layer[oid].status != "available")
        pending -= found
    return out


def is_deprecated(deprecation_date: str | None, at: dt.datetime) -> bool:
    """An offering is deprecated from its deprecation date on; no date means not deprecated."""
    return deprecation_date is not None and dt.date.fromisoformat(deprecation_date) <= at.date()


def disabled_values(catalog: Catalog) -> dict[str, LiveValues]:
    """Live values for the offerings the catalog's overlays disabled (status `disabled`); put
    them in front of any other live source (keys, circuits, observations)."""
    return {oid: _DISABLED for oid in sorted(catalog.disabled)}


_DISABLED = LiveValues(status="disabled", reason="disabled by an operator overlay")


def with_disabled(live: LiveState, catalog: Catalog) -> LiveState:
    """`live` with every offering the catalog's overlays disabled set to status `disabled`.

    Applies whether or not live state was consulted: a disabled offering is operator
    configuration, not an observation.
    """
    if not catalog.disabled:
        return live
    return LiveState(Layered(disabled_values(catalog), live.values), consulted=live.consulted)
