"""Import LiteLLM's `model_prices_and_context_window.json` (USD per token, regions in keys).

One LiteLLM entry with `mode == "chat"` becomes one offering: provider from
`litellm_provider`, region and canonical model from the key (see `_names`), prices x 1e6 to USD
per 1M tokens, `max_input_tokens` -> `context_window`, `supports_*` flags -> capabilities.
Tiered (`*_above_200k_tokens`), batch, priority and flex prices are ignored: the base price is
the price of a normal, short request. A 0 price is kept only for known-free offerings.
`sample_spec`, `alias_of` entries, wildcard keys, non-chat modes and the like are skipped and
counted. Several keys for one offering id: the preferred one wins (docs/catalog.md, Duplicates).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from router.catalog.importers._common import (
    MAX_SOURCE_ENTRIES,
    ImportResult,
    JsonObj,
    Skip,
    check_bool,
    check_count,
    check_date,
    check_number,
    finish_import,
    parse_json,
    per_million,
    pointer,
    positive_int,
    problem,
    read_source,
    sha256_hex,
    valid_date,
)
from router.catalog.importers._names import Route, is_free, offering_id, route_key
from router.common.problems import CatalogError, Problem

PRICING_TIER_RE: Final = re.compile(r"^(together-ai|fireworks-ai)-")
FINE_TUNE_RE: Final = re.compile(r"(^|/)ft:")
# Embedding and text-to-speech models that LiteLLM files under mode "chat".
NOT_CHAT_MODEL_RE: Final = re.compile(r"(^|[-/.])(embed|tts)($|[-/.])")
TIERED_PRICE_RE: Final = re.compile(r"_above_\d+k_tokens")

PRICE_FIELDS: Final = {
    "input_price": "input_cost_per_token",
    "output_price": "output_cost_per_token",
    "cached_input_price": "cache_read_input_token_cost",
}
LIMIT_FIELDS: Final = {"context_window": "max_input_tokens",
                       "max_output_tokens": "max_output_tokens"}
CAPABILITY_FLAGS: Final = {
    "supports_function_calling": "tools",
    "supports_vision": "vision",
    "supports_response_schema": "json_schema",
    "supports_reasoning": "reasoning",
    "supports_pdf_input": "pdf_input",
    "supports_audio_input": "audio_input",
    "supports_prompt_caching": "prompt_caching",
}
TOKEN_FIELDS: Final = (
    "input_cost_per_token", "output_cost_per_token", "max_input_tokens", "max_output_tokens",
)

# Fills gaps of one offering from another source: (offering, route, entry, free, counts).
Fill = Callable[[JsonObj, Route, JsonObj, bool, Counter[str]], None]


# --------------------------------------------------------------------------- one entry


def check_entry(key: str, entry: Any) -> str:
    """Return the raw provider of a usable chat entry, or raise `Skip`."""
    if key == "sample_spec":
        raise Skip("sample_spec")
    if not isinstance(entry, dict):
        raise Skip("not_an_object")
    if "alias_of" in entry:
        raise Skip("alias")
    if entry.get("mode") != "chat":
        raise Skip("not_chat")
    if "*" in key:
        raise Skip("wildcard")
    if FINE_TUNE_RE.search(key):
        raise Skip("fine_tune_template")
    raw = entry.get("litellm_provider")
    if not isinstance(raw, str) or not raw:
        raise Skip("no_provider")
    if PRICING_TIER_RE.match(key):
        raise Skip("pricing_tier")
    if not any(f in entry for f in TOKEN_FIELDS):
        raise Skip("no_token_data")
    if NOT_CHAT_MODEL_RE.search(key.lower()):
        raise Skip("not_a_chat_model")
    return raw


def entry_problems(key: str, entry: JsonObj) -> list[Problem]:
    """Malformed values of a usable entry: each names the key, the field and why."""
    problems: list[Problem] = []
    label = f"entry `{key}`"
    for name in PRICE_FIELDS.values():
        check_number(entry.get(name), pointer(key, name), label, name, problems)
    for name in LIMIT_FIELDS.values():
        check_count(entry.get(name), pointer(key, name), label, name, problems)
    for name in CAPABILITY_FLAGS:
        check_bool(entry.get(name), pointer(key, name), label, name, problems)
    check_date(entry.get("deprecation_date"), pointer(key, "deprecation_date"), label,
               "deprecation_date", problems)
    return problems


def litellm_capabilities(entry: JsonObj) -> set[str]:
    """Capabilities from LiteLLM `supports_*` flags, plus streaming for every chat model."""
    caps = {"streaming"}
    caps.update(cap for flag, cap in CAPABILITY_FLAGS.items() if entry.get(flag) is True)
    return caps


def base_offering(route: Route, entry: JsonObj) -> JsonObj:
    """The offering fields LiteLLM provides (zero prices still raw; see `apply_zero_rule`)."""
    offering: JsonObj = {
        "id": offering_id(route), "model": route.model, "provider": route.provider,
        "region": route.region, "tags": [],
    }
    if route.api_name != route.model:
        offering["api_model"] = route.api_name
    for name, source in LIMIT_FIELDS.items():
        number = positive_int(entry.get(source))
        if number is not None:
            offering[name] = number
    for name, source in PRICE_FIELDS.items():
        price = per_million(entry.get(source))
        if price is not None:
            offering[name] = price
    deprecation = valid_date(entry.get("deprecation_date"))
    if deprecation is not None:
        offering["deprecation_date"] = deprecation
    offering["capabilities"] = litellm_capabilities(entry)
    return offering


def apply_zero_rule(offering: JsonObj, free: bool, counts: Counter[str]) -> None:
    """Drop 0 prices (unknown) unless the offering is known to be free."""
    if free:
        return
    for name in PRICE_FIELDS:
        if offering.get(name) == 0:
            del offering[name]
            counts[f"zero_price_dropped.{name}"] += 1


def finish(offering: JsonObj) -> JsonObj:
    """Freeze set-valued fields into sorted lists."""
    offering["capabilities"] = sorted(offering["capabilities"])
    offering["tags"] = sorted(offering["tags"])
    return offering


# --------------------------------------------------------------------------- the file


def completeness(entry: JsonObj) -> int:
    """How many of the core numeric fields an entry carries (more wins among duplicates)."""
    return sum(1 for f in (*TOKEN_FIELDS, "cache_read_input_token_cost") if f in entry)


def candidate_routes(prices: JsonObj, skipped: Counter[str],
                     problems: list[Problem]) -> dict[str, list[tuple[str, Route]]]:
    """Offering id -> [(key, route), ...] best first; skips are counted in `skipped`, malformed
    values of usable entries appended to `problems`.

    Best = lowest route preference, then most complete entry, then key order.
    """
    ranked: list[tuple[str, int, int, str, Route]] = []
    for key, entry in prices.items():
        try:
            raw = check_entry(key, entry)
            route = route_key(key, raw)
        except Skip as skip:
            skipped[skip.reason] += 1
            continue
        problems.extend(entry_problems(key, entry))
        ranked.append((offering_id(route), route.preference, -completeness(entry), key, route))
    ranked.sort(key=lambda c: c[:4])
    groups: dict[str, list[tuple[str, Route]]] = {}
    for oid, _pref, _complete, key, route in ranked:
        groups.setdefault(oid, []).append((key, route))
    return groups


def token_prices(entry: JsonObj) -> tuple[float | None, float | None]:
    """(input, output) USD per 1M tokens of a LiteLLM entry, for duplicate comparison."""
    return (per_million(entry.get("input_cost_per_token")),
            per_million(entry.get("output_cost_per_token")))


def build_offering(route: Route, entry: JsonObj, counts: Counter[str],
                   fill: Fill | None = None) -> JsonObj:
    """One offering from its chosen LiteLLM entry, gaps filled by `fill` if given."""
    offering = base_offering(route, entry)
    free = is_free(route)
    apply_zero_rule(offering, free, counts)
    if any(TIERED_PRICE_RE.search(k) for k in entry):
        counts["tiered_prices_ignored"] += 1
    if fill is not None:
        fill(offering, route, entry, free, counts)
    return finish(offering)


def build_offerings(prices: JsonObj, skipped: Counter[str], counts: Counter[str],
                    conflicts: list[str], fill: Fill | None = None
                    ) -> list[tuple[str, JsonObj]]:
    """(source key, offering) per id, in id order; other keys of an id count as duplicates.

    Ids whose duplicates disagree on input/output price are appended to `conflicts`. Raises
    `CatalogError` naming every malformed value of a usable entry.
    """
    problems: list[Problem] = []
    groups = candidate_routes(prices, skipped, problems)
    if problems:
        raise CatalogError(problems)
    offerings: list[tuple[str, JsonObj]] = []
    for oid, group in sorted(groups.items()):
        key, route = group[0]
        skipped["duplicate_id"] += len(group) - 1
        if len({token_prices(prices[k]) for k, _ in group}) > 1:
            conflicts.append(oid)
        offerings.append((key, build_offering(route, prices[key], counts, fill)))
    return offerings


def check_shape(data: object, where: str) -> JsonObj:
    """The top level must be an object of entries, not too many of them."""
    if not isinstance(data, dict):
        raise CatalogError([problem(
            "import.shape", "",
            f"`{where}`: expected a JSON object mapping model keys to entries, "
            f"got {type(data).__name__}",
            "is this LiteLLM's model_prices_and_context_window.json?")])
    if len(data) > MAX_SOURCE_ENTRIES:
        raise CatalogError([problem("import.too_large", "",
                                    f"`{where}`: {len(data)} entries; the limit is "
                                    f"{MAX_SOURCE_ENTRIES}")])
    return data


def import_litellm(data: object, *, where: str = "litellm",
                   digest: str | None = None) -> ImportResult:
    """Map a parsed LiteLLM price map to a validated catalog (raises `CatalogError`)."""
    prices = check_shape(data, where)
    skipped: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    conflicts: list[str] = []
    offerings = build_offerings(prices, skipped, counts, conflicts)
    name = Path(where).name
    generated = {"importer": "litellm"}
    if digest is not None:
        generated["litellm"] = f"{name} sha256:{digest}"
    return finish_import(
        source="litellm", where=where,
        header=f"imported from LiteLLM {name} by `unhardcoded catalog import`",
        generated=generated, offerings=[(pointer(k), o) for k, o in offerings],
        read=len(prices), skipped=skipped, adjustments=counts, conflicts=conflicts,
    )


def import_litellm_file(path: Path) -> ImportResult:
    raw = read_source(path)
    return import_litellm(parse_json(raw, str(path)), where=str(path), digest=sha256_hex(raw))
