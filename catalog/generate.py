"""Generate the embedded default catalog (``catalog/default.json``) from public price data.

Run from the project root::

    python -m catalog.generate --sources ../shared/catalog-sources -o catalog/default.json

An *offering* is one model served by one provider in one region.  Offerings come from LiteLLM's
price map (``litellm/model_prices_and_context_window_backup.json``); the models.dev TOML tree only
fills fields LiteLLM leaves empty for the *same* offering.  The output is reproducible: no clock,
no network, sorted keys, offerings sorted by ``id``.  See ``docs/catalog.md`` for the full rules.

Mapping of one LiteLLM entry (``mode == "chat"`` only) to an offering:

* ``provider``  ``litellm_provider`` normalised (``bedrock_converse`` -> ``bedrock``,
  ``vertex_ai-*`` -> ``vertex_ai``, ``cohere_chat`` -> ``cohere``; ``bedrock/claude_platform/``
  keys -> ``bedrock_claude_platform``, a separate Anthropic-operated service).
* ``region``    Bedrock geo prefixes (``eu.``, ``us.``, ``apac.``, ``global.``, ``jp.``, ``au.``,
  ``ca.``, ``in.``, ``us-gov.``), Azure path regions (``azure/eu/``, ``azure/us/``,
  ``azure/global/``, ``azure/apac/``, ``azure/us-gov/``), AWS region path segments
  (``bedrock/eu-west-1/`` -> ``eu``, ``ap-*`` -> ``apac``, ``us-gov-*`` -> ``us-gov``, ...);
  everything else ``global``.
* ``model``     key without routing prefixes, Bedrock geo/vendor prefixes and version suffixes;
  last path segment (``org/model/variant`` -> ``model-variant``); lowercased; ``@VERSION`` ->
  ``-VERSION`` (``@default`` dropped); Vertex ``-maas`` dropped.
* ``api_model`` the name the provider's API expects, only where it differs from ``model``.
* ``id``        ``provider/model`` (region ``global``) or ``provider/region/model``.
* prices        ``*_cost_per_token`` x 1e6 (USD per 1M tokens); tiered/batch/priority ignored;
  a 0 price is kept only for known-free offerings, otherwise it is unknown (omitted).
* limits        ``max_input_tokens`` -> ``context_window``, ``max_output_tokens``.
* capabilities  ``supports_*`` flags, plus ``streaming`` for every chat model.

Skipped: ``sample_spec``, ``alias_of`` entries, non-chat modes, wildcard keys, ``ft:`` templates,
entries without a provider, provisioned-throughput commitments, pricing-tier pseudo entries,
entries with no token data at all, embedding/TTS models filed as chat, unparseable keys, and
duplicate ids (the first by a fixed preference order wins).  Nothing runs at import.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import math
import pathlib
import re
import sys
import tomllib
from collections import Counter
from dataclasses import dataclass
from typing import Any, Final

JsonObj = dict[str, Any]

LITELLM_FILE: Final = "litellm/model_prices_and_context_window_backup.json"
MODELS_DEV_DIR: Final = "models.dev"
PROVENANCE_FILE: Final = "PROVENANCE.md"

PROVIDER_RE: Final = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
REGION_RE: Final = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
ISO_DATE_RE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")

PROVIDER_ALIASES: Final = {"bedrock_converse": "bedrock", "cohere_chat": "cohere"}
# Key prefixes LiteLLM uses for a provider when they differ from the provider name.
KEY_PREFIX_ALIASES: Final = {"amazon_nova": "amazon-nova", "bedrock_converse": "bedrock"}
BEDROCK_PROVIDERS: Final = frozenset({"bedrock", "bedrock_mantle"})
BEDROCK_ROUTES: Final = frozenset({"converse", "invoke"})
BEDROCK_GEOS: Final = ("us-gov", "us", "eu", "apac", "global", "jp", "au", "ca", "in")
BEDROCK_ID_RE: Final = re.compile(
    r"^(?:(?P<geo>" + "|".join(re.escape(g) for g in BEDROCK_GEOS) + r")\.)?"
    r"(?:(?P<vendor>[a-z0-9]+)\.)?(?P<name>[^.].*)$"
)
BEDROCK_VERSION_RE: Final = re.compile(r"^(?P<base>.*\d.*?)-(?:v?\d+:\d+|v1)$")
AWS_REGION_RE: Final = re.compile(r"^(?P<area>us-gov|[a-z]{2})-[a-z]+-\d+$")
AWS_AREAS: Final = {
    "us": "us", "us-gov": "us-gov", "eu": "eu", "ap": "apac", "ca": "ca",
    "sa": "sa", "me": "me", "af": "af", "il": "il", "mx": "mx",
}
COMMITMENT_RE: Final = re.compile(r"^\d+-month-commitment$")
AZURE_REGIONS: Final = {"eu": "eu", "us": "us", "global": "global", "apac": "apac",
                        "us-gov": "us-gov", "global-standard": "global"}
# Path prefixes inside a provider's model names that carry no model identity
# (Fireworks ``accounts/<account>/models|routers/``, Cloudflare ``@cf/``, ``@hf/``, ...).
PATH_NOISE_RE: Final = re.compile(r"^(?:accounts/[^/]+/(?:models|routers)/|@[a-z]+/)")
PRICING_TIER_RE: Final = re.compile(r"^(together-ai|fireworks-ai)-")
VERSION_AT_RE: Final = re.compile(r"@(?P<version>[a-z0-9.-]+)$")
FINE_TUNE_RE: Final = re.compile(r"(^|/)ft:")
# Embedding and text-to-speech models that LiteLLM files under mode "chat".
NOT_CHAT_MODEL_RE: Final = re.compile(r"(^|[-/.])(embed|tts)($|[-/.])")

# Zero prices are real only for offerings that are known to be free of charge.
FREE_PROVIDERS: Final = frozenset({"ollama", "lemonade", "publicai"})
FREE_MODELS: Final = {
    "gemini": re.compile(r"^(gemma-|gemini-exp-|learnlm-.*-experimental$)"),
    "zai": re.compile(r"^glm-4\.[57]-flash$"),
}
FREE_MARKER_RE: Final = re.compile(r"(^|[-:])free($|[-:])")

PRICE_FIELDS: Final = {
    "input_price": "input_cost_per_token",
    "output_price": "output_cost_per_token",
    "cached_input_price": "cache_read_input_token_cost",
}
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

# Offering provider -> models.dev provider directories (same service, same model ids).
MODELS_DEV_PROVIDERS: Final[dict[str, tuple[str, ...]]] = {
    "anthropic": ("anthropic",), "openai": ("openai",), "azure": ("azure",),
    "bedrock": ("amazon-bedrock",), "bedrock_mantle": ("amazon-bedrock",),
    "gemini": ("google",), "vertex_ai": ("google-vertex", "google-vertex-anthropic"),
    "mistral": ("mistral",), "xai": ("xai",), "deepseek": ("deepseek",), "groq": ("groq",),
    "cerebras": ("cerebras",), "together_ai": ("togetherai",), "fireworks_ai": ("fireworks-ai",),
    "deepinfra": ("deepinfra",), "novita": ("novita-ai",), "nebius": ("nebius",),
    "perplexity": ("perplexity",), "moonshot": ("moonshotai",), "minimax": ("minimax",),
    "zai": ("zai",), "cohere": ("cohere",), "databricks": ("databricks",), "wandb": ("wandb",),
    "baseten": ("baseten",), "ovhcloud": ("ovhcloud",), "scaleway": ("scaleway",),
    "github_copilot": ("github-copilot",), "cloudflare": ("cloudflare-workers-ai",),
    "snowflake": ("snowflake-cortex",), "vercel_ai_gateway": ("vercel",), "morph": ("morph",),
    "inception": ("inception",), "v0": ("v0",), "sarvam": ("sarvam",),
    "friendliai": ("friendli",), "aihubmix": ("aihubmix",), "opencode_go": ("opencode-go",),
    "gmi": ("gmicloud",), "xiaomi_mimo": ("xiaomi",), "dashscope": ("alibaba",),
    "abliteration": ("abliteration-ai",), "meta_llama": ("llama",), "amazon_nova": ("nova",),
    "ollama": ("ollama-cloud",),
}
MODALITY_CAPABILITIES: Final = {"image": "vision", "pdf": "pdf_input", "audio": "audio_input"}


class Skip(Exception):
    """An entry that does not become an offering; ``reason`` is a stable report key."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Route:
    """Where a LiteLLM key points: provider, region, model names and a duplicate preference."""

    provider: str
    region: str
    model: str
    api_name: str
    preference: int  # lower wins when two keys map to the same offering id


@dataclass(frozen=True)
class Provenance:
    """Versions and date of the sources, read from PROVENANCE.md."""

    litellm_version: str
    models_dev_commit: str
    date: str


# --------------------------------------------------------------------------- provenance


def read_provenance(sources: pathlib.Path) -> Provenance:
    """Extract the LiteLLM version and the models.dev commit and date from PROVENANCE.md."""
    text = (sources / PROVENANCE_FILE).read_text(encoding="utf-8")
    version = re.search(r"`litellm`\s+(\d+(?:\.\d+)+)", text)
    commit = re.search(r"commit\s+([0-9a-f]{7,40})\s+\((\d{4}-\d{2}-\d{2})\)", text)
    if version is None or commit is None:
        raise ValueError(f"{PROVENANCE_FILE}: litellm version or models.dev commit not found")
    return Provenance(version.group(1), commit.group(1), commit.group(2))


def sha256_hex(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- models.dev


class ModelsDev:
    """The models.dev TOML tree: raw bytes of every file (for the hash), parsed on demand."""

    def __init__(self, root: pathlib.Path) -> None:
        self.root = root
        paths = sorted(root.rglob("*.toml"), key=lambda p: p.relative_to(root).as_posix())
        self.files: dict[str, bytes] = {p.relative_to(root).as_posix(): p.read_bytes()
                                        for p in paths}
        self._index: dict[str, dict[str, str]] = {}

    def digest(self) -> str:
        """sha256 over (relative path, sha256 of content) of every TOML file, in path order."""
        h = hashlib.sha256()
        for rel, data in self.files.items():
            h.update(rel.encode("utf-8") + b"\0" + hashlib.sha256(data).digest())
        return h.hexdigest()

    def _provider_index(self, directory: str) -> dict[str, str]:
        """Lowercased model id -> relative path for one provider directory."""
        if directory not in self._index:
            prefix = f"providers/{directory}/models/"
            self._index[directory] = {
                rel[len(prefix):-len(".toml")].lower(): rel
                for rel in self.files if rel.startswith(prefix)
            }
        return self._index[directory]

    def _load(self, rel: str) -> JsonObj:
        return tomllib.loads(self.files[rel].decode("utf-8"))

    def resolve(self, rel: str) -> JsonObj:
        """Parse one provider model file and apply ``base_model`` inheritance."""
        entry = self._load(rel)
        base_name = entry.get("base_model")
        if not isinstance(base_name, str):
            return entry
        base_rel = f"models/{base_name}.toml"
        if base_rel not in self.files:
            return entry
        base = self._load(base_rel)
        omit = entry.get("base_model_omit", [])
        for dotted in omit if isinstance(omit, list) else []:
            drop_dotted(base, str(dotted))
        return overlay(base, entry)

    def lookup(self, provider: str, api_name: str) -> JsonObj | None:
        """The models.dev entry for this provider's model id (first mapped directory wins)."""
        for directory in MODELS_DEV_PROVIDERS.get(provider, ()):
            rel = self._provider_index(directory).get(api_name.lower())
            if rel is not None:
                return self.resolve(rel)
        return None


def drop_dotted(obj: JsonObj, dotted: str) -> None:
    """Delete ``a.b.c`` from nested dicts if present."""
    *parents, leaf = dotted.split(".")
    node: Any = obj
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node.pop(leaf, None)


def overlay(base: JsonObj, top: JsonObj) -> JsonObj:
    """``base`` updated by ``top``; tables are merged one level deep."""
    merged = dict(base)
    for key, value in top.items():
        old = merged.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            merged[key] = {**old, **value}
        else:
            merged[key] = value
    return merged


# --------------------------------------------------------------------------- key parsing


def normalise_provider(raw: str) -> str:
    """LiteLLM provider name -> offering provider."""
    if raw.startswith("vertex_ai"):
        return "vertex_ai"
    return PROVIDER_ALIASES.get(raw, raw)


def strip_provider_prefix(key: str, raw: str, provider: str) -> tuple[str, bool]:
    """Remove a leading ``<provider>/`` routing segment; report whether one was present."""
    head, sep, rest = key.partition("/")
    prefixes = {raw, provider, KEY_PREFIX_ALIASES.get(raw, raw)}
    if sep and head in prefixes:
        return rest, True
    return key, False


def canonical_name(name: str) -> str:
    """Lowercase; Vertex-style ``@VERSION`` -> ``-VERSION`` (``@20240620`` -> ``-20240620``,
    ``@2407`` -> ``-2407``), except ``@default`` which is dropped."""
    name = name.lower()
    match = VERSION_AT_RE.search(name)
    if match is None:
        return name
    version = match.group("version")
    base = name[: match.start()]
    return base if version == "default" else f"{base}-{version}"


def aws_region_to_area(segment: str) -> str | None:
    """``eu-west-1`` -> ``eu``, ``ap-south-1`` -> ``apac``; ``None`` if not an AWS region."""
    match = AWS_REGION_RE.match(segment)
    if match is None:
        return None
    area = AWS_AREAS.get(match.group("area"))
    if area is None:
        raise Skip("ambiguous_aws_region")
    return area


def bedrock_model(model_id: str) -> tuple[str | None, str]:
    """Bedrock model id -> (geo prefix or None, canonical model name)."""
    match = BEDROCK_ID_RE.match(model_id.lower())
    if match is None:
        raise Skip("unparseable_key")
    geo, vendor, name = match.group("geo"), match.group("vendor"), match.group("name")
    if vendor is not None and re.match(r"^[a-z]\d", name):
        name = f"{vendor}-{name}"  # deepseek.v3.2 -> deepseek-v3.2, deepseek.r1 -> deepseek-r1
    version = BEDROCK_VERSION_RE.match(name)
    if version is not None:
        name = version.group("base")
    elif name.endswith(":0"):
        name = name[: -len(":0")]
    return geo, canonical_name(name)


def route_bedrock(rest: str, provider: str, prefixed: bool) -> Route:
    """Parse the part of a Bedrock key after ``bedrock/`` (or the bare model id)."""
    parts = rest.split("/")
    preference = 1 if prefixed else 0
    if parts[0] in BEDROCK_ROUTES:
        parts, preference = parts[1:], preference + 1
    aws_area = aws_region_to_area(parts[0]) if len(parts) > 1 else None
    if aws_area is not None:
        parts, preference = parts[1:], preference + 10
    if len(parts) > 1 and COMMITMENT_RE.match(parts[0]):
        raise Skip("provisioned_throughput")
    if len(parts) == 2 and parts[0] == "claude_platform":
        name = canonical_name(parts[1])
        return Route("bedrock_claude_platform", aws_area or "global", name, parts[1], preference)
    if len(parts) != 1:
        raise Skip("unparseable_key")
    geo, model = bedrock_model(parts[0])
    if geo is not None:
        preference -= 1  # an explicit inference-profile prefix states the region exactly
    return Route(provider, geo or aws_area or "global", model, parts[0], preference)


def route_azure(rest: str, provider: str) -> Route:
    """Parse the part of an Azure key after ``azure/``."""
    parts = rest.split("/")
    region, preference = "global", 1
    if len(parts) == 2 and parts[0] in AZURE_REGIONS:
        region = AZURE_REGIONS[parts[0]]
        preference = 2 if parts[0] == "global-standard" else 0
        parts = parts[1:]
    if len(parts) != 1:
        raise Skip("unparseable_key")
    return Route(provider, region, canonical_name(parts[0]), parts[0], preference)


def route_generic(rest: str, provider: str, prefixed: bool) -> Route:
    """Any other provider: ``model`` or ``org/model`` -> model; ``org/model/variant`` ->
    ``model-variant``.  ``api_name`` keeps the provider's full model path."""
    segments = [s for s in PATH_NOISE_RE.sub("", rest).split("/") if s]
    if not segments:
        raise Skip("unparseable_key")
    name = segments[-1] if len(segments) <= 2 else "-".join(segments[1:])
    model = canonical_name(name)
    if provider == "vertex_ai" and model.endswith("-maas"):
        model = model[: -len("-maas")]
    return Route(provider, "global", model, rest, 0 if prefixed else 1)


def route_key(key: str, raw_provider: str) -> Route:
    """Map one LiteLLM key to its offering route."""
    provider = normalise_provider(raw_provider)
    rest, prefixed = strip_provider_prefix(key, raw_provider, provider)
    if provider in BEDROCK_PROVIDERS:
        route = route_bedrock(rest, provider, prefixed)
    elif provider == "azure" and prefixed:
        route = route_azure(rest, provider)
    else:
        route = route_generic(rest, provider, prefixed)
    if not route.model or "/" in route.model or re.search(r"\s", route.model):
        raise Skip("unparseable_key")
    if not PROVIDER_RE.match(route.provider) or not REGION_RE.match(route.region):
        raise Skip("unparseable_key")
    return route


def offering_id(route: Route) -> str:
    """``provider/model`` for global offerings, ``provider/region/model`` otherwise."""
    if route.region == "global":
        return f"{route.provider}/{route.model}"
    return f"{route.provider}/{route.region}/{route.model}"


# --------------------------------------------------------------------------- field mapping


def check_entry(key: str, entry: Any) -> str:
    """Return the raw provider of a usable chat entry, or raise ``Skip``."""
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


def positive_int(value: Any) -> int | None:
    """``value`` if it is an int > 0 (bools and floats with fractions rejected)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return value if isinstance(value, int) and value > 0 else None


def scaled_price(value: Any, scale: float) -> float | None:
    """``value`` x ``scale``, float noise rounded away; None unless a finite number >= 0."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or value < 0:
        return None
    return float(round(value * scale, 6))


def per_million(value: Any) -> float | None:
    """LiteLLM USD per token -> USD per 1M tokens."""
    return scaled_price(value, 1e6)


def price_from_toml(value: Any) -> float | None:
    """models.dev prices are already USD per 1M tokens."""
    return scaled_price(value, 1.0)


def is_free(route: Route) -> bool:
    """True when a 0 price is genuine: a free provider, a free model, or a ``free`` marker."""
    if route.provider in FREE_PROVIDERS and not route.model.endswith("-cloud"):
        return True
    pattern = FREE_MODELS.get(route.provider)
    if pattern is not None and pattern.search(route.model):
        return True
    return bool(FREE_MARKER_RE.search(route.model))


def valid_date(value: Any) -> str | None:
    """An ISO ``YYYY-MM-DD`` calendar date, or None."""
    if not isinstance(value, str) or not ISO_DATE_RE.match(value):
        return None
    try:
        datetime.date.fromisoformat(value)
    except ValueError:
        return None
    return value


def litellm_capabilities(entry: JsonObj) -> set[str]:
    """Capabilities from LiteLLM ``supports_*`` flags, plus streaming for every chat model."""
    caps = {"streaming"}
    caps.update(cap for flag, cap in CAPABILITY_FLAGS.items() if entry.get(flag) is True)
    return caps


def base_offering(route: Route, entry: JsonObj) -> JsonObj:
    """The offering fields LiteLLM provides (zero prices still raw; see ``apply_zero_rule``)."""
    offering: JsonObj = {
        "id": offering_id(route), "model": route.model, "provider": route.provider,
        "region": route.region, "tags": [],
    }
    if route.api_name != route.model:
        offering["api_model"] = route.api_name
    for field, source in (("context_window", "max_input_tokens"),
                          ("max_output_tokens", "max_output_tokens")):
        number = positive_int(entry.get(source))
        if number is not None:
            offering[field] = number
    for field, source in PRICE_FIELDS.items():
        price = per_million(entry.get(source))
        if price is not None:
            offering[field] = price
    deprecation = valid_date(entry.get("deprecation_date"))
    if deprecation is not None:
        offering["deprecation_date"] = deprecation
    offering["capabilities"] = litellm_capabilities(entry)
    return offering


def apply_zero_rule(offering: JsonObj, free: bool, counts: Counter[str]) -> None:
    """Drop 0 prices (unknown) unless the offering is known to be free."""
    if free:
        return
    for field in PRICE_FIELDS:
        if offering.get(field) == 0:
            del offering[field]
            counts[f"zero_price_dropped.{field}"] += 1


def table(md: JsonObj, name: str) -> JsonObj:
    """A TOML table of ``md`` or an empty dict."""
    value = md.get(name)
    return value if isinstance(value, dict) else {}


def models_dev_values(md: JsonObj) -> JsonObj:
    """The gap-filling values one models.dev entry offers, in offering field names."""
    limit = table(md, "limit")
    cost = table(md, "cost")
    values: JsonObj = {
        "context_window": positive_int(limit.get("input", limit.get("context"))),
        "max_output_tokens": positive_int(limit.get("output")),
        "input_price": price_from_toml(cost.get("input")),
        "output_price": price_from_toml(cost.get("output")),
        "cached_input_price": price_from_toml(cost.get("cache_read")),
    }
    return {k: v for k, v in values.items() if v is not None}


def models_dev_capabilities(md: JsonObj) -> dict[str, bool]:
    """Capability -> supported, as far as models.dev states it."""
    caps: dict[str, bool] = {}
    for field, cap in (("tool_call", "tools"), ("reasoning", "reasoning"),
                       ("structured_output", "json_schema")):
        if isinstance(md.get(field), bool):
            caps[cap] = md[field]
    modalities = md.get("modalities")
    inputs = modalities.get("input") if isinstance(modalities, dict) else None
    if isinstance(inputs, list):
        for modality, cap in MODALITY_CAPABILITIES.items():
            caps[cap] = modality in inputs
    return caps


def fill_gaps(offering: JsonObj, entry: JsonObj, md: JsonObj, free: bool,
              counts: Counter[str]) -> None:
    """Fill fields LiteLLM lacks from the same offering's models.dev entry."""
    for field, value in models_dev_values(md).items():
        if field in offering or (value == 0 and not free):
            continue
        offering[field] = value
        counts[f"models_dev_filled.{field}"] += 1
    flags = {cap: flag for flag, cap in CAPABILITY_FLAGS.items()}
    caps: set[str] = offering["capabilities"]
    for cap, supported in models_dev_capabilities(md).items():
        if supported and flags[cap] not in entry and cap not in caps:
            caps.add(cap)
            counts[f"models_dev_filled.capability.{cap}"] += 1


def finish(offering: JsonObj) -> JsonObj:
    """Freeze set-valued fields into sorted lists."""
    offering["capabilities"] = sorted(offering["capabilities"])
    offering["tags"] = sorted(offering["tags"])
    return offering


# --------------------------------------------------------------------------- generation


def completeness(entry: JsonObj) -> int:
    """How many of the core numeric fields an entry carries (more wins among duplicates)."""
    return sum(1 for f in (*TOKEN_FIELDS, "cache_read_input_token_cost") if f in entry)


def candidate_routes(prices: JsonObj, skipped: Counter[str]) -> dict[str, list[tuple[str, Route]]]:
    """Offering id -> [(key, route), ...] best first; skips are counted in ``skipped``.

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


def build_offering(key: str, route: Route, entry: JsonObj, md: ModelsDev,
                   counts: Counter[str]) -> JsonObj:
    """One offering from its chosen LiteLLM entry, gaps filled from models.dev."""
    offering = base_offering(route, entry)
    free = is_free(route)
    apply_zero_rule(offering, free, counts)
    md_entry = md.lookup(route.provider, route.api_name)
    if md_entry is not None:
        counts["models_dev_matched"] += 1
        fill_gaps(offering, entry, md_entry, free, counts)
    return finish(offering)


def build_offerings(prices: JsonObj, md: ModelsDev, skipped: Counter[str],
                    counts: Counter[str], conflicts: list[str]) -> list[JsonObj]:
    """One offering per id, in id order; the other keys of an id are counted as duplicates.

    Ids whose duplicates disagree on input/output price are appended to ``conflicts``.
    """
    offerings: list[JsonObj] = []
    for oid, group in sorted(candidate_routes(prices, skipped).items()):
        key, route = group[0]
        skipped["duplicate_id"] += len(group) - 1
        if len({token_prices(prices[k]) for k, _ in group}) > 1:
            conflicts.append(oid)
        offerings.append(build_offering(key, route, prices[key], md, counts))
    return offerings


def generate(sources: pathlib.Path) -> tuple[JsonObj, JsonObj]:
    """Build the catalog from ``sources``; return (catalog, report)."""
    provenance = read_provenance(sources)
    litellm_path = sources / LITELLM_FILE
    raw = litellm_path.read_bytes()
    prices: JsonObj = json.loads(raw)
    md = ModelsDev(sources / MODELS_DEV_DIR)
    skipped: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    conflicts: list[str] = []
    offerings = build_offerings(prices, md, skipped, counts, conflicts)
    catalog: JsonObj = {
        "schema": 1,
        "source": (
            "generated by catalog/generate.py from LiteLLM "
            f"{litellm_path.name} (litellm {provenance.litellm_version}) "
            f"+ models.dev {provenance.models_dev_commit}"
        ),
        "generated": {
            "litellm": f"{litellm_path.name} sha256:{sha256_hex(raw)}",
            "models_dev": (
                f"{provenance.models_dev_commit} ({provenance.date}) "
                f"sha256:{md.digest()} over {len(md.files)} toml files"
            ),
            "date": provenance.date,
        },
        "offerings": offerings,
    }
    report = build_report(len(prices), offerings, skipped, counts)
    report["duplicate_price_conflicts"] = conflicts
    return catalog, report


def build_report(read: int, offerings: list[JsonObj], skipped: Counter[str],
                 counts: Counter[str]) -> JsonObj:
    """Counts: entries read, offerings imported, skips by reason, fills, by provider/region."""
    providers = Counter(str(o["provider"]) for o in offerings)
    regions = Counter(str(o["region"]) for o in offerings)
    return {
        "read": read,
        "imported": len(offerings),
        "skipped": dict(sorted(skipped.items())),
        "skipped_total": sum(skipped.values()),
        "adjustments": dict(sorted(counts.items())),
        "by_provider": dict(providers.most_common()),
        "by_region": dict(regions.most_common()),
    }


def render(catalog: JsonObj) -> str:
    """The exact on-disk form of a catalog."""
    return json.dumps(catalog, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """CLI: write the catalog, print the report to stderr."""
    parser = argparse.ArgumentParser(prog="python -m catalog.generate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sources", type=pathlib.Path, required=True,
                        help="directory holding PROVENANCE.md, litellm/ and models.dev/")
    parser.add_argument("-o", "--output", type=pathlib.Path, required=True,
                        help="catalog file to write (e.g. catalog/default.json)")
    args = parser.parse_args(argv)
    catalog, report = generate(args.sources)
    args.output.write_text(render(catalog), encoding="utf-8")
    print(json.dumps(report, indent=1), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
