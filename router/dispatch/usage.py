"""Usage from a provider's response, priced with the catalog's price facts.

A response without usage is *unreported* (`None`), never zero tokens; its cost is unknown and
the record says why. Cached prompt tokens are priced at `cached_input_price` when the catalog
knows it, else at `input_price` — the cost names the facts it used either way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from router.catalog.offerings import Offering

MAX_TOKENS_REPORTED = 10**12


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"prompt_tokens": self.prompt_tokens,
                               "completion_tokens": self.completion_tokens,
                               "total_tokens": self.prompt_tokens + self.completion_tokens}
        if self.cached_tokens is not None:
            out["cached_tokens"] = self.cached_tokens
        return out


@dataclass(frozen=True)
class Cost:
    usd: float | None
    facts: tuple[dict[str, Any], ...]  # {"offering", "attribute", "value"} per price used
    note: str | None = None  # why usd is unknown

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"usd": self.usd, "facts": list(self.facts)}
        if self.note:
            out["note"] = self.note
        return out


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 <= value <= MAX_TOKENS_REPORTED else None


def usage_of(response: Mapping[str, Any]) -> Usage | None:
    """Usage from an OpenAI-form response or final stream chunk; None when not reported."""
    raw = response.get("usage")
    if not isinstance(raw, Mapping):
        return None
    prompt = _count(raw.get("prompt_tokens"))
    completion = _count(raw.get("completion_tokens"))
    if prompt is None or completion is None:
        return None
    details = raw.get("prompt_tokens_details")
    cached = _count(details.get("cached_tokens")) if isinstance(details, Mapping) else None
    if cached is not None:
        cached = min(cached, prompt)
    return Usage(prompt, completion, cached)


def price(usage: Usage | None, offering: Offering) -> Cost:
    if usage is None:
        return Cost(None, (), "the provider reported no usage")
    facts: list[dict[str, Any]] = []

    def fact(attribute: str) -> float | None:
        value: float | None = getattr(offering, attribute)
        facts.append({"offering": offering.id, "attribute": attribute, "value": value})
        return value

    cached = usage.cached_tokens or 0
    fresh = usage.prompt_tokens - cached
    input_price = fact("input_price")
    output_price = fact("output_price")
    cached_price = input_price
    if cached:
        known = fact("cached_input_price")
        cached_price = known if known is not None else input_price
    missing = [f["attribute"] for f in facts
               if f["value"] is None and f["attribute"] != "cached_input_price"]
    if missing or input_price is None or output_price is None or cached_price is None:
        return Cost(None, tuple(facts), f"price unknown: {', '.join(missing)}")
    usd = (fresh * input_price + cached * cached_price
           + usage.completion_tokens * output_price) / 1e6
    return Cost(round(usd, 12), tuple(facts))
