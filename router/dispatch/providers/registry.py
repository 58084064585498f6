"""Which adapter calls which provider, where, and with which key.

Keys and base URLs come from an environment mapping (the process environment by default):
`OPENAI_API_KEY`, `ANTHROPIC_API_KEY`, … and `<PROVIDER>_BASE_URL` (e.g. `OPENAI_BASE_URL`,
`ANTHROPIC_BASE_URL`, `VLLM_BASE_URL`) to point a provider somewhere else. An offering's own
`base_url` (a private deployment from an overlay) wins over both.

Trust model: catalogs and overlays are data that people share and import, so no catalog field
decides where a key goes. A key goes only to the URL the *environment* pairs with it:

- a provider's key variables (`OPENAI_API_KEY`, …) to that provider's endpoint:
  `<PROVIDER>_BASE_URL` when set, else the adapter's default;
- any other `X_API_KEY` (named by an offering's `api_key_env`) to `X_BASE_URL`, and nowhere
  else (there is no default).

An offering whose `base_url` is not the endpoint its key is paired with is called without a
key when its provider needs none (vLLM, Ollama, …) and is `no_key` otherwise, with a reason
that says how to name a key for it.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

from router.catalog.offerings import base_url_problem, normalise_base_url
from router.dispatch.providers.anthropic import AnthropicMessages
from router.dispatch.providers.base import Endpoint, Provider, Secret
from router.dispatch.providers.openai_compat import OpenAICompatible


@dataclass(frozen=True)
class ProviderSpec:
    name: str
    wire: str  # "openai" | "anthropic"
    base_url: str | None  # None: must be configured (`<PROVIDER>_BASE_URL` or the offering's)
    key_vars: tuple[str, ...]
    key_required: bool = True


def _spec(name: str, wire: str, base_url: str | None, *key_vars: str,
          key_required: bool = True) -> ProviderSpec:
    return ProviderSpec(name, wire, base_url, key_vars, key_required)


SPECS: dict[str, ProviderSpec] = {s.name: s for s in (
    _spec("openai", "openai", "https://api.openai.com/v1", "OPENAI_API_KEY"),
    _spec("anthropic", "anthropic", "https://api.anthropic.com", "ANTHROPIC_API_KEY"),
    _spec("gemini", "openai", "https://generativelanguage.googleapis.com/v1beta/openai",
          "GEMINI_API_KEY", "GOOGLE_API_KEY"),
    _spec("mistral", "openai", "https://api.mistral.ai/v1", "MISTRAL_API_KEY"),
    _spec("deepseek", "openai", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY"),
    _spec("xai", "openai", "https://api.x.ai/v1", "XAI_API_KEY"),
    _spec("groq", "openai", "https://api.groq.com/openai/v1", "GROQ_API_KEY"),
    _spec("together_ai", "openai", "https://api.together.xyz/v1", "TOGETHER_API_KEY",
          "TOGETHERAI_API_KEY"),
    _spec("openrouter", "openai", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"),
    _spec("fireworks_ai", "openai", "https://api.fireworks.ai/inference/v1",
          "FIREWORKS_API_KEY", "FIREWORKS_AI_API_KEY"),
    _spec("cerebras", "openai", "https://api.cerebras.ai/v1", "CEREBRAS_API_KEY"),
    _spec("deepinfra", "openai", "https://api.deepinfra.com/v1/openai", "DEEPINFRA_API_KEY"),
    _spec("perplexity", "openai", "https://api.perplexity.ai", "PERPLEXITYAI_API_KEY",
          "PERPLEXITY_API_KEY"),
    _spec("vllm", "openai", None, "VLLM_API_KEY", key_required=False),
    _spec("hosted_vllm", "openai", None, "HOSTED_VLLM_API_KEY", key_required=False),
    _spec("ollama", "openai", None, "OLLAMA_API_KEY", key_required=False),
    _spec("lm_studio", "openai", None, "LM_STUDIO_API_KEY", key_required=False),
)}

ADAPTERS: dict[str, Provider] = {"openai": OpenAICompatible(), "anthropic": AnthropicMessages()}

def env_prefix(provider: str) -> str:
    return provider.upper().replace("-", "_").replace(".", "_")


def base_url_variable(provider: str) -> str:
    return env_prefix(provider) + "_BASE_URL"


@dataclass(frozen=True)
class Unreachable:
    """Why an offering cannot be called: a live status and one human line."""

    status: str  # "no_key" | "unsupported"
    reason: str


@dataclass(frozen=True)
class KeyDestination:
    """Where the environment lets one key variable's value go."""

    variable: str  # the `..._BASE_URL` variable that names it
    url: str | None  # None: not configured (no variable set, no default)
    default: bool = False  # `url` is the adapter's default (the variable is not set)


def key_destination(key_variable: str, environ: Mapping[str, str]) -> KeyDestination:
    """The one URL `key_variable`'s value may be sent to: a provider's own key variable goes to
    that provider's endpoint (`<PROVIDER>_BASE_URL`, else its default), any other `X_API_KEY`
    to `X_BASE_URL`."""
    for spec in SPECS.values():
        if key_variable in spec.key_vars:
            variable = base_url_variable(spec.name)
            configured = environ.get(variable)
            if configured:
                return KeyDestination(variable, configured)
            return KeyDestination(variable, spec.base_url, default=spec.base_url is not None)
    variable = key_variable.removesuffix("_API_KEY") + "_BASE_URL"
    return KeyDestination(variable, environ.get(variable) or None)


def same_endpoint(a: str, b: str | None) -> bool:
    """Whether two base URLs name the same endpoint: scheme, host, port and path, ignoring the
    case of scheme and host, a default port and a trailing `/`."""
    if b is None:
        return False
    key = _endpoint_key(a)
    return key is not None and key == _endpoint_key(b)


def _endpoint_key(url: str) -> tuple[str, str, int, str] | None:
    try:
        parts = urllib.parse.urlsplit(url)
        scheme = parts.scheme.lower()
        port = parts.port or {"http": 80, "https": 443}.get(scheme)
    except ValueError:
        return None
    if port is None or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port, parts.path.rstrip("/")


def resolve(provider: str, environ: Mapping[str, str], offering_base_url: str | None = None,
            api_key_env: str | None = None) -> Endpoint | Unreachable:
    """The endpoint to call a provider at and the key to send there, or why it cannot be
    called. `offering_base_url` and `api_key_env` are the offering's own fields."""
    spec = SPECS.get(provider)
    if spec is None:
        return Unreachable("unsupported", f"no adapter for provider `{provider}` in this router")
    if api_key_env is not None:
        return _own_key(spec, environ, offering_base_url, api_key_env)
    variable = base_url_variable(provider)
    destination = key_destination(spec.key_vars[0], environ)
    if offering_base_url is None or same_endpoint(offering_base_url, destination.url):
        key = next((environ[v] for v in spec.key_vars if environ.get(v)), None)
        if key is None and spec.key_required:
            return Unreachable("no_key", "no key: set " + " or ".join(spec.key_vars))
        base = offering_base_url or destination.url
        if not base:  # a local runtime (vLLM, Ollama, LM Studio): configured, or not called
            return Unreachable("no_key", f"not configured: set {variable} "
                                         f"(`{provider}` runs where you run it; it needs no key)")
        return _endpoint(spec, base, key, "its base_url" if offering_base_url else variable)
    problem = base_url_problem(offering_base_url)
    if problem is not None:
        return Unreachable("unsupported", f"its base_url is refused: {problem}")
    if spec.key_required:
        return Unreachable("no_key", (
            f"no key for its base_url `{offering_base_url[:200]}`: "
            f"{' or '.join(spec.key_vars)} is only sent to {_described(destination)}; name "
            f"this deployment's own key variable in the offering's `api_key_env`"))
    return _endpoint(spec, offering_base_url, None, "its base_url")


def _own_key(spec: ProviderSpec, environ: Mapping[str, str], offering_base_url: str | None,
             api_key_env: str) -> Endpoint | Unreachable:
    """An offering that names its key variable: called at the URL the environment pairs with
    that variable (its own `base_url` must be that URL), with that key."""
    destination = key_destination(api_key_env, environ)
    if destination.url is None:
        return Unreachable("no_key", f"not configured: set {destination.variable} to the URL "
                                     f"that `{api_key_env}` may be sent to")
    if offering_base_url is not None and not same_endpoint(offering_base_url, destination.url):
        return Unreachable("no_key", (
            f"no key for its base_url `{offering_base_url[:200]}`: `{api_key_env}` is only sent "
            f"to {_described(destination)}"))
    key = environ.get(api_key_env)
    if not key:
        return Unreachable("no_key", f"no key: set {api_key_env}")
    return _endpoint(spec, offering_base_url or destination.url,
                     key, "its base_url" if offering_base_url else destination.variable)


def _described(destination: KeyDestination) -> str:
    """Where a key may go, for a reason: a URL from the environment is named by its variable,
    never quoted (it may name internal hosts); a built-in default is public."""
    if destination.url is None:
        return f"{destination.variable} (not set)"
    if destination.default:
        return f"`{destination.url}` (or {destination.variable} when set)"
    return destination.variable


def _endpoint(spec: ProviderSpec, base: str, key: str | None, where: str
              ) -> Endpoint | Unreachable:
    problem = base_url_problem(base)
    if problem is not None:
        return Unreachable("unsupported", f"{where} is not a usable base URL: {problem}")
    return Endpoint(spec.name, spec.wire, normalise_base_url(base), Secret(key) if key else None)


def adapter(wire: str) -> Provider:
    return ADAPTERS[wire]
