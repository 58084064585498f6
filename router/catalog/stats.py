"""Catalog statistics: counts by provider, region, capability and tag; prices summarised.

`catalog_stats(catalog)` is pure data (`CatalogStats.to_json()`); `stats_text` renders it for a
terminal. Unknown values are counted as unknown, never as 0.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from router.catalog.offerings import Catalog, Offering
from router.policy.attributes import CAPABILITIES

SUMMARISED = ("input_price", "output_price", "cached_input_price", "context_window",
              "max_output_tokens")


@dataclass(frozen=True)
class Summary:
    """min / median / max of one numeric attribute over the offerings that know it."""

    known: int
    unknown: int
    min: float | None
    median: float | None
    max: float | None
    min_id: str | None
    max_id: str | None

    def to_json(self) -> dict[str, Any]:
        return {"known": self.known, "unknown": self.unknown, "min": self.min,
                "median": self.median, "max": self.max, "min_id": self.min_id,
                "max_id": self.max_id}


@dataclass(frozen=True)
class CatalogStats:
    version: str
    source: str
    offerings: int
    models: int
    disabled: int
    by_provider: Counter[str]
    by_region: Counter[str]
    by_capability: Counter[str]
    capabilities_unknown: int
    by_tag: Counter[str]
    with_deprecation_date: int
    with_base_url: int
    summaries: dict[str, Summary]
    generated: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "source": self.source,
            "generated": self.generated,
            "offerings": self.offerings,
            "models": self.models,
            "disabled": self.disabled,
            "by_provider": _ordered(self.by_provider),
            "by_region": _ordered(self.by_region),
            "by_capability": {c: self.by_capability.get(c, 0) for c in CAPABILITIES},
            "capabilities_unknown": self.capabilities_unknown,
            "by_tag": _ordered(self.by_tag),
            "with_deprecation_date": self.with_deprecation_date,
            "with_base_url": self.with_base_url,
            "summary": {k: s.to_json() for k, s in self.summaries.items()},
        }


def _ordered(counts: Counter[str]) -> dict[str, int]:
    """Most common first, ties by name (stable output)."""
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def summarise(offerings: Iterable[Offering], name: str) -> Summary:
    known: list[tuple[float, str]] = []
    unknown = 0
    for o in offerings:
        value = getattr(o, name)
        if value is None:
            unknown += 1
        else:
            known.append((float(value), o.id))
    if not known:
        return Summary(0, unknown, None, None, None, None, None)
    known.sort()
    median = statistics.median(v for v, _ in known)
    return Summary(len(known), unknown, known[0][0], median, known[-1][0], known[0][1],
                   known[-1][1])


def catalog_stats(catalog: Catalog) -> CatalogStats:
    offerings = catalog.offerings
    caps: Counter[str] = Counter()
    for o in offerings:
        caps.update(o.capabilities or ())
    return CatalogStats(
        version=catalog.version,
        source=catalog.source,
        offerings=len(offerings),
        models=len({o.model for o in offerings}),
        disabled=len(catalog.disabled),
        by_provider=Counter(o.provider for o in offerings),
        by_region=Counter(o.region for o in offerings),
        by_capability=caps,
        capabilities_unknown=sum(1 for o in offerings if o.capabilities is None),
        by_tag=Counter(t for o in offerings for t in o.tags),
        with_deprecation_date=sum(1 for o in offerings if o.deprecation_date is not None),
        with_base_url=sum(1 for o in offerings if o.base_url is not None),
        summaries={name: summarise(offerings, name) for name in SUMMARISED},
        generated=dict(catalog.generated),
    )


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value.is_integer() and value >= 1000 else f"{value:g}"


def stats_text(stats: CatalogStats, top: int = 15) -> str:
    """A terminal rendering; `top` limits the provider list (the JSON has them all)."""
    lines = [f"catalog {stats.version}  {stats.offerings} offerings  {stats.models} models  "
             f"{stats.disabled} disabled",
             f"source: {stats.source}"]
    lines += [f"  {k}: {v}" for k, v in sorted(stats.generated.items())]
    lines.append("")
    lines.append("prices (USD per 1M tokens) and limits (tokens):")
    lines.append(f"  {'attribute':<20}{'known':>7}{'unknown':>9}{'min':>12}{'median':>12}"
                 f"{'max':>14}")
    for name, s in stats.summaries.items():
        lines.append(f"  {name:<20}{s.known:>7}{s.unknown:>9}{_num(s.min):>12}"
                     f"{_num(s.median):>12}{_num(s.max):>14}")
    lines.append("")
    lines.append(f"by provider ({len(stats.by_provider)}):")
    providers = list(_ordered(stats.by_provider).items())
    lines += [f"  {name:<32}{n:>6}" for name, n in providers[:top]]
    if len(providers) > top:
        rest = sum(n for _, n in providers[top:])
        label = f"… {len(providers) - top} more providers"
        lines.append(f"  {label:<32}{rest:>6}")
    lines.append("")
    lines.append(f"by region ({len(stats.by_region)}):")
    lines += [f"  {name:<32}{n:>6}" for name, n in _ordered(stats.by_region).items()]
    lines.append("")
    lines.append("by capability:")
    lines += [f"  {c:<32}{stats.by_capability.get(c, 0):>6}" for c in CAPABILITIES]
    lines.append(f"  {'(capabilities unknown)':<32}{stats.capabilities_unknown:>6}")
    if stats.by_tag:
        lines.append("")
        lines.append("by tag:")
        lines += [f"  {name:<32}{n:>6}" for name, n in _ordered(stats.by_tag).items()]
    lines.append("")
    lines.append(f"with a deprecation date: {stats.with_deprecation_date}  "
                 f"with a base URL: {stats.with_base_url}")
    return "\n".join(lines) + "\n"
