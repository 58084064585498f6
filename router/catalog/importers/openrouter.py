"""Import an OpenRouter `/api/v1/models` response (prices are decimal strings, USD per token).

Every OpenRouter model is one offering: provider `openrouter`, region `global`. The model is
the part of the OpenRouter id after the slash, lowercased, without a `:variant` suffix
(`deepseek/deepseek-v4-flash:free` -> `deepseek-v4-flash`); the offering id keeps the variant
(`openrouter/deepseek-v4-flash:free`) and `api_model` is the OpenRouter id. A price of `"-1"`
(router pseudo-models such as `openrouter/auto`: the price depends on the model chosen) is
unknown. A `:free` model, or one whose every price is 0, is free: its 0 prices are kept; any
other 0 price is unknown.
"""

from __future__ import annotations

import re
from collections import Counter
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final

from router.catalog.importers._common import (
    MAX_SOURCE_ENTRIES,
    ImportResult,
    JsonObj,
    Skip,
    bad_value,
    check_count,
    check_date,
    finish_import,
    parse_json,
    positive_int,
    problem,
    read_source,
    sha256_hex,
    valid_date,
    valid_id,
    valid_name,
)
from router.common.problems import CatalogError, Problem

PRICES: Final = {"input_price": "prompt", "output_price": "completion",
                 "cached_input_price": "input_cache_read"}
VARIABLE_PRICE: Final = "-1"
DECIMAL_RE: Final = re.compile(r"^(?:0|[1-9]\d{0,15})(?:\.\d{1,30})?(?:[eE][-+]?\d{1,3})?$")
VARIANT_RE: Final = re.compile(r":[a-z0-9_.-]+$")
PARAMETER_CAPABILITIES: Final = {
    "tools": "tools", "structured_outputs": "json_schema", "reasoning": "reasoning",
    "include_reasoning": "reasoning",
}
MODALITY_CAPABILITIES: Final = {"image": "vision", "audio": "audio_input", "file": "pdf_input"}


def parse_price(value: Any) -> Decimal | None:
    """A per-token price string (or number) as a Decimal; None for `"-1"` (variable price).
    Raises ValueError when it is neither."""
    if isinstance(value, str):
        if value == VARIABLE_PRICE:
            return None
        if DECIMAL_RE.match(value):
            return Decimal(value)
    elif isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        try:
            return Decimal(repr(value))
        except InvalidOperation:
            pass
    raise ValueError(value)


def per_million(price: Decimal) -> float | None:
    value = float(round(price * 1_000_000, 6))
    return value if value <= 1_000_000 else None


def entry_problems(entry: JsonObj, ptr: str, label: str) -> list[Problem]:
    """Malformed values of one model: each names the model, the field and why."""
    problems: list[Problem] = []
    pricing = entry.get("pricing")
    if not isinstance(pricing, dict):
        problems.append(bad_value(f"{ptr}/pricing", label, "pricing",
                                  "an object of price strings", pricing))
    else:
        for name in PRICES.values():
            if name in pricing and pricing[name] is not None:
                try:
                    parse_price(pricing[name])
                except ValueError:
                    problems.append(bad_value(f"{ptr}/pricing/{name}", label, f"pricing.{name}",
                                              'a decimal string such as "0.000003" (USD per '
                                              'token) or "-1"', pricing[name]))
    check_count(entry.get("context_length"), f"{ptr}/context_length", label, "context_length",
                problems)
    top = entry.get("top_provider")
    if top is not None and not isinstance(top, dict):
        problems.append(bad_value(f"{ptr}/top_provider", label, "top_provider", "an object",
                                  top))
    elif isinstance(top, dict):
        check_count(top.get("max_completion_tokens"), f"{ptr}/top_provider/max_completion_tokens",
                    label, "top_provider.max_completion_tokens", problems)
    for name in ("supported_parameters",):
        problems.extend(_string_list(entry.get(name), f"{ptr}/{name}", label, name))
    arch = entry.get("architecture")
    if arch is not None and not isinstance(arch, dict):
        problems.append(bad_value(f"{ptr}/architecture", label, "architecture", "an object",
                                  arch))
    elif isinstance(arch, dict):
        for name in ("input_modalities", "output_modalities"):
            problems.extend(_string_list(arch.get(name), f"{ptr}/architecture/{name}", label,
                                         f"architecture.{name}"))
    check_date(entry.get("expiration_date"), f"{ptr}/expiration_date", label, "expiration_date",
               problems)
    return problems


def _string_list(value: Any, ptr: str, label: str, name: str) -> list[Problem]:
    if value is None or (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        return []
    return [bad_value(ptr, label, name, "a list of strings", value)]


def names(model_id: str) -> tuple[str, str]:
    """OpenRouter id -> (offering id, model); raises `Skip` when it cannot be named."""
    _org, sep, rest = model_id.lower().partition("/")
    if not sep or not rest or "/" in rest:
        raise Skip("unparseable_id")
    model = VARIANT_RE.sub("", rest)
    oid = f"openrouter/{rest}"
    if not valid_name(model) or not valid_id(oid) or len(model_id) > 200:
        raise Skip("unparseable_id")
    return oid, model


def is_free(model_id: str, pricing: JsonObj) -> bool:
    """A `:free` variant, or a model whose prompt and completion prices, and every other price
    stated, are 0."""
    if model_id.lower().endswith(":free"):
        return True
    stated: dict[str, Decimal | None] = {}
    for key, value in pricing.items():
        try:
            stated[key] = parse_price(value)
        except ValueError:
            continue
    return all(stated.get(k) == 0 for k in ("prompt", "completion")) and \
        all(v == 0 for v in stated.values() if v is not None)


def capabilities(entry: JsonObj, cached: bool) -> list[str]:
    caps = {"streaming"}
    params = entry.get("supported_parameters") or []
    caps.update(cap for param, cap in PARAMETER_CAPABILITIES.items() if param in params)
    arch = entry.get("architecture") or {}
    inputs = arch.get("input_modalities") or []
    caps.update(cap for modality, cap in MODALITY_CAPABILITIES.items() if modality in inputs)
    if cached:
        caps.add("prompt_caching")
    return sorted(caps)


def map_model(entry: JsonObj, counts: Counter[str]) -> JsonObj:
    """One OpenRouter model -> one offering (the entry is already checked)."""
    model_id = str(entry["id"])
    oid, model = names(model_id)
    outputs = (entry.get("architecture") or {}).get("output_modalities")
    if isinstance(outputs, list) and outputs and "text" not in outputs:
        raise Skip("not_chat")
    pricing: JsonObj = entry["pricing"]
    offering: JsonObj = {"id": oid, "model": model, "provider": "openrouter",
                         "region": "global", "api_model": model_id, "tags": []}
    free = is_free(model_id, pricing)
    for name, key in PRICES.items():
        raw = pricing.get(key)
        if raw is None:
            continue
        price = parse_price(raw)
        if price is None:
            counts[f"variable_price_unknown.{name}"] += 1
            continue
        value = per_million(price)
        if value is None:
            counts[f"price_out_of_range.{name}"] += 1
        elif value == 0 and not free:
            counts[f"zero_price_dropped.{name}"] += 1
        else:
            offering[name] = value
    if free:
        counts["free_model"] += 1
    context = positive_int(entry.get("context_length"))
    if context is not None:
        offering["context_window"] = context
    top = entry.get("top_provider") or {}
    output = positive_int(top.get("max_completion_tokens"))
    if output is not None:
        offering["max_output_tokens"] = output
    date = valid_date(entry.get("expiration_date"))
    if date is not None:
        offering["deprecation_date"] = date
    offering["capabilities"] = capabilities(entry, "cached_input_price" in offering)
    return offering


def models_of(data: object, where: str) -> list[Any]:
    """The model list: `{"data": [...]}` (the API response) or a bare list."""
    models = data.get("data") if isinstance(data, dict) else data
    if not isinstance(models, list):
        raise CatalogError([problem(
            "import.shape", "/data" if isinstance(data, dict) else "",
            f"`{where}`: expected {{\"data\": [models...]}}",
            "is this OpenRouter's /api/v1/models response?")])
    if len(models) > MAX_SOURCE_ENTRIES:
        raise CatalogError([problem("import.too_large", "",
                                    f"`{where}`: {len(models)} models; the limit is "
                                    f"{MAX_SOURCE_ENTRIES}")])
    return models


def import_openrouter(data: object, *, where: str = "openrouter",
                      digest: str | None = None) -> ImportResult:
    """Map a parsed `/api/v1/models` response to a validated catalog (raises `CatalogError`)."""
    models = models_of(data, where)
    base = "/data" if isinstance(data, dict) else ""
    problems: list[Problem] = []
    skipped: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    offerings: list[tuple[str, JsonObj]] = []
    seen: set[str] = set()
    for index, entry in enumerate(models):
        ptr = f"{base}/{index}"
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            problems.append(problem("import.shape", ptr,
                                    f"model {index}: expected an object with a string `id`"))
            continue
        label = f"model {index} (`{entry['id'][:80]}`)"
        bad = entry_problems(entry, ptr, label)
        if bad:
            problems.extend(bad)
            continue
        try:
            offering = map_model(entry, counts)
        except Skip as skip:
            skipped[skip.reason] += 1
            continue
        if offering["id"] in seen:
            skipped["duplicate_id"] += 1
            continue
        seen.add(offering["id"])
        offerings.append((ptr, offering))
    if problems:
        raise CatalogError(problems)
    name = Path(where).name
    generated = {"importer": "openrouter"}
    if digest is not None:
        generated["openrouter"] = f"{name} sha256:{digest}"
    return finish_import(
        source="openrouter", where=where,
        header=f"imported from OpenRouter {name} by `unhardcoded catalog import`",
        generated=generated, offerings=offerings, read=len(models), skipped=skipped,
        adjustments=counts,
    )


def import_openrouter_file(path: Path) -> ImportResult:
    raw = read_source(path)
    return import_openrouter(parse_json(raw, str(path)), where=str(path),
                             digest=sha256_hex(raw))
