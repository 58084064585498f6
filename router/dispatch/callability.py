"""Which of a catalog's offerings this installation can call, per provider, and why not
(`unhardcoded catalog stats`).

*Callable* is static: an adapter exists for the provider and its extra is installed; dry runs
reject the rest (`Router.installed_state`). *Configured* (with `--live`) also needs the
environment: keys, base URLs, cloud credentials.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from router.catalog.offerings import Catalog
from router.dispatch.reachability import from_environment, uncallable


@dataclass(frozen=True)
class ProviderCallability:
    provider: str
    offerings: int
    callable: int
    reason: str | None  # why its offerings cannot be called here (static), if they cannot
    configured: int | None = None  # callable with this environment (None: not checked)
    missing: str | None = None  # the most common reason the environment lacks

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"offerings": self.offerings, "callable": self.callable,
                               "reason": self.reason}
        if self.configured is not None:
            out["configured"] = self.configured
            out["missing"] = self.missing
        return out


@dataclass(frozen=True)
class Callability:
    providers: tuple[ProviderCallability, ...]  # most offerings first, ties by name

    @property
    def offerings(self) -> int:
        return sum(p.offerings for p in self.providers)

    @property
    def callable(self) -> int:
        return sum(p.callable for p in self.providers)

    @property
    def share(self) -> float:
        return self.callable / self.offerings if self.offerings else 0.0

    def to_json(self) -> dict[str, Any]:
        return {"offerings": self.offerings, "callable": self.callable,
                "callable_share": round(self.share, 4),
                "by_provider": {p.provider: p.to_json() for p in self.providers}}


def callability(catalog: Catalog, environ: Mapping[str, str] | None = None) -> Callability:
    """Per provider: offerings, how many are callable here, and why the rest are not; with
    `environ`, also how many that environment configures."""
    static = uncallable(catalog)
    live = from_environment(catalog, environ).values if environ is not None else None
    totals: Counter[str] = Counter(o.provider for o in catalog)
    can: Counter[str] = Counter()
    reasons: dict[str, str] = {}
    configured: Counter[str] = Counter()
    missing: dict[str, Counter[str]] = {}
    for o in catalog:
        why = static.get(o.id)
        if why is not None:
            reasons.setdefault(o.provider, why.reason or why.status)
            continue
        can[o.provider] += 1
        if live is None:
            continue
        v = live.get(o.id)
        if v is None:
            configured[o.provider] += 1
        else:
            missing.setdefault(o.provider, Counter())[v.reason or v.status] += 1
    rows = []
    for provider, n in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0])):
        lacks = missing.get(provider)
        rows.append(ProviderCallability(
            provider, n, can[provider], reasons.get(provider),
            configured[provider] if live is not None else None,
            lacks.most_common(1)[0][0] if lacks else None))
    return Callability(tuple(rows))


def callability_text(result: Callability, top: int | None = None) -> str:
    """A terminal table: one line per provider (the `top` largest when given)."""
    live = any(p.configured is not None for p in result.providers)
    lines = [f"callable by this installation: {result.callable} of {result.offerings} "
             f"offerings ({result.share:.1%})"]
    head = f"  {'provider':<26}{'offerings':>10}{'callable':>10}"
    lines.append(head + (f"{'configured':>12}" if live else "") + "  why not")
    shown = result.providers if top is None else result.providers[:top]
    for p in shown:
        line = f"  {p.provider:<26}{p.offerings:>10}{p.callable:>10}"
        if live:
            line += f"{p.configured if p.configured is not None else '-':>12}"
        why = p.reason or (p.missing if live and p.missing else "")
        lines.append((line + "  " + why).rstrip())
    if top is not None and len(result.providers) > top:
        rest = result.providers[top:]
        label = f"… {len(rest)} more providers"
        lines.append(f"  {label:<26}{sum(p.offerings for p in rest):>10}"
                     f"{sum(p.callable for p in rest):>10}")
    return "\n".join(lines) + "\n"
