"""Provider, region and canonical model names from a provider's model key.

Shared by the importers so that one model gets one canonical name whichever source it comes
from: LiteLLM keys (`eu.anthropic.claude-haiku-4-5-20251001-v1:0`, `azure/eu/gpt-4o`,
`vertex_ai/claude-3-5-sonnet@20240620`) and models.dev model ids go through the same rules.
The rules are documented in docs/catalog.md (Regions, Model names).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from router.catalog.importers._common import Skip, valid_id, valid_name

PROVIDER_RE: Final = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
REGION_RE: Final = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")

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
# (Fireworks `accounts/<account>/models|routers/`, Cloudflare `@cf/`, `@hf/`, ...).
PATH_NOISE_RE: Final = re.compile(r"^(?:accounts/[^/]+/(?:models|routers)/|@[a-z]+/)")
VERSION_AT_RE: Final = re.compile(r"@(?P<version>[a-z0-9.-]+)$")

# Zero prices are real only for offerings that are known to be free of charge.
FREE_PROVIDERS: Final = frozenset({"ollama", "lemonade", "publicai"})
FREE_MODELS: Final = {
    "gemini": re.compile(r"^(gemma-|gemini-exp-|learnlm-.*-experimental$)"),
    "zai": re.compile(r"^glm-4\.[57]-flash$"),
}
FREE_MARKER_RE: Final = re.compile(r"(^|[-:])free($|[-:])")


@dataclass(frozen=True)
class Route:
    """Where a key points: provider, region, model names and a duplicate preference."""

    provider: str
    region: str
    model: str
    api_name: str
    preference: int  # lower wins when two keys map to the same offering id


def normalise_provider(raw: str) -> str:
    """LiteLLM provider name -> offering provider."""
    if raw.startswith("vertex_ai"):
        return "vertex_ai"
    return PROVIDER_ALIASES.get(raw, raw)


def strip_provider_prefix(key: str, raw: str, provider: str) -> tuple[str, bool]:
    """Remove a leading `<provider>/` routing segment; report whether one was present."""
    head, sep, rest = key.partition("/")
    prefixes = {raw, provider, KEY_PREFIX_ALIASES.get(raw, raw)}
    if sep and head in prefixes:
        return rest, True
    return key, False


def canonical_name(name: str) -> str:
    """Lowercase; Vertex-style `@VERSION` -> `-VERSION` (`@20240620` -> `-20240620`,
    `@2407` -> `-2407`), except `@default` which is dropped."""
    name = name.lower()
    match = VERSION_AT_RE.search(name)
    if match is None:
        return name
    version = match.group("version")
    base = name[: match.start()]
    return base if version == "default" else f"{base}-{version}"


def aws_region_to_area(segment: str) -> str | None:
    """`eu-west-1` -> `eu`, `ap-south-1` -> `apac`; None if not an AWS region."""
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
    """Parse the part of a Bedrock key after `bedrock/` (or the bare model id)."""
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
    """Parse the part of an Azure key after `azure/`."""
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
    """Any other provider: `model` or `org/model` -> model; `org/model/variant` ->
    `model-variant`.  `api_name` keeps the provider's full model path."""
    segments = [s for s in PATH_NOISE_RE.sub("", rest).split("/") if s]
    if not segments:
        raise Skip("unparseable_key")
    name = segments[-1] if len(segments) <= 2 else "-".join(segments[1:])
    model = canonical_name(name)
    if provider == "vertex_ai" and model.endswith("-maas"):
        model = model[: -len("-maas")]
    return Route(provider, "global", model, rest, 0 if prefixed else 1)


def route_key(key: str, raw_provider: str) -> Route:
    """Map one provider model key to its offering route (raises `Skip`)."""
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
    if not valid_name(route.model) or not valid_id(offering_id(route)) \
            or not 0 < len(route.api_name) <= 200:
        raise Skip("unparseable_key")
    return route


def offering_id(route: Route) -> str:
    """`provider/model` for global offerings, `provider/region/model` otherwise."""
    if route.region == "global":
        return f"{route.provider}/{route.model}"
    return f"{route.provider}/{route.region}/{route.model}"


def is_free(route: Route) -> bool:
    """True when a 0 price is genuine: a free provider, a free model, or a `free` marker."""
    if route.provider in FREE_PROVIDERS and not route.model.endswith("-cloud"):
        return True
    pattern = FREE_MODELS.get(route.provider)
    if pattern is not None and pattern.search(route.model):
        return True
    return bool(FREE_MARKER_RE.search(route.model))
