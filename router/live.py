"""Live state: what `decide` reads that no file holds (status, latency, error rate).

Live values never force a new derivation; the decision record lists the ones it read. Without
live state consulted (a dry run without `--live`), every offering is `available` and latency and
error rate are unknown.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict

# Provider → environment variable that holds its key.
PROVIDER_KEYS: dict[str, tuple[str, ...]] = {
    "openai": ("OPENAI_API_KEY",),
    "anthropic": ("ANTHROPIC_API_KEY",),
    "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
    "mistral": ("MISTRAL_API_KEY",),
    "deepseek": ("DEEPSEEK_API_KEY",),
    "xai": ("XAI_API_KEY",),
    "groq": ("GROQ_API_KEY",),
    "together_ai": ("TOGETHER_API_KEY", "TOGETHERAI_API_KEY"),
    "openrouter": ("OPENROUTER_API_KEY",),
    "bedrock": ("AWS_ACCESS_KEY_ID", "AWS_BEARER_TOKEN_BEDROCK"),
    "azure": ("AZURE_API_KEY", "AZURE_OPENAI_API_KEY"),
    "azure_ai": ("AZURE_AI_API_KEY",),
    "vertex_ai": ("GOOGLE_APPLICATION_CREDENTIALS", "VERTEXAI_PROJECT"),
    "cohere": ("COHERE_API_KEY",),
    "cohere_chat": ("COHERE_API_KEY",),
    "perplexity": ("PERPLEXITYAI_API_KEY", "PERPLEXITY_API_KEY"),
    "fireworks_ai": ("FIREWORKS_API_KEY", "FIREWORKS_AI_API_KEY"),
    "cerebras": ("CEREBRAS_API_KEY",),
    "deepinfra": ("DEEPINFRA_API_KEY",),
}


def key_variables(provider: str) -> tuple[str, ...]:
    """Env variables that can hold a provider's key (the default is PROVIDER_API_KEY)."""
    return PROVIDER_KEYS.get(provider, (provider.upper().replace("-", "_").replace(".", "_")
                                        + "_API_KEY",))


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


def from_environment(offerings: Iterable[tuple[str, str]],
                     environ: Mapping[str, str] | None = None) -> LiveState:
    """Mark offerings whose provider has no key in the environment as `no_key`.

    `offerings` yields (offering id, provider). Key values are never read beyond presence.
    """
    env = os.environ if environ is None else environ
    values: dict[str, LiveValues] = {}
    present: dict[str, bool] = {}
    for offering_id, provider in offerings:
        if provider not in present:
            present[provider] = any(env.get(v) for v in key_variables(provider))
        if not present[provider]:
            names = " or ".join(key_variables(provider))
            values[offering_id] = LiveValues(status="no_key", reason=f"no key: set {names}")
    return LiveState(values, consulted=True)


def is_deprecated(deprecation_date: str | None, at: dt.datetime) -> bool:
    """An offering is deprecated from its deprecation date on; no date means not deprecated."""
    return deprecation_date is not None and dt.date.fromisoformat(deprecation_date) <= at.date()
