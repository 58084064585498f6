"""Which adapter calls which provider, where, and with which key.

Keys and base URLs come from an environment mapping (the process environment by default):
`OPENAI_API_KEY`, `ANTHROPIC_API_KEY`, … and `<PROVIDER>_BASE_URL` (e.g. `OPENAI_BASE_URL`,
`ANTHROPIC_BASE_URL`, `VLLM_BASE_URL`) to point a provider somewhere else. An offering's own
`base_url` (a private deployment from an overlay) wins over both.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from router.dispatch.providers.anthropic import AnthropicMessages
from router.dispatch.providers.base import Endpoint, Provider, Secret
from router.dispatch.providers.openai_compat import OpenAICompatible

_HTTP_URL = re.compile(r"^https?://[^\s/?#@]+(/[^\s?#]*)?$")


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


def resolve(provider: str, environ: Mapping[str, str],
            offering_base_url: str | None = None) -> Endpoint | Unreachable:
    """The endpoint to call a provider at, or why it cannot be called."""
    spec = SPECS.get(provider)
    if spec is None:
        return Unreachable("unsupported", f"no adapter for provider `{provider}` in this router")
    key = next((environ[v] for v in spec.key_vars if environ.get(v)), None)
    if key is None and spec.key_required:
        return Unreachable("no_key", "no key: set " + " or ".join(spec.key_vars))
    base = offering_base_url or environ.get(base_url_variable(provider)) or spec.base_url
    if not base:  # a local runtime (vLLM, Ollama, LM Studio): configured, or not called
        return Unreachable("no_key", f"not configured: set {base_url_variable(provider)} "
                                     f"(`{provider}` runs where you run it; it needs no key)")
    if not _HTTP_URL.match(base):
        return Unreachable("unsupported", f"{base_url_variable(provider)} is not an http(s) URL")
    return Endpoint(provider, spec.wire, base, Secret(key) if key else None)


def adapter(wire: str) -> Provider:
    return ADAPTERS[wire]
