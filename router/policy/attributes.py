"""The declared offering attributes: the only names a policy may use (spec §2).

One table, read by admission (type checks), the compiler (which facts a clause needs) and the
oracle-free parts of decide. Schema version 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

SCHEMA_VERSION = 1


class Kind(str, Enum):
    NUMBER = "number"
    STRING = "string"
    BOOL = "bool"
    SET = "set"


class Source(str, Enum):
    """Where a value comes from, which decides when a clause over it can be evaluated."""

    STATIC = "static"  # catalog snapshot: ground at derive time
    LIVE = "live"  # live state: read by decide, never from a file
    REQUEST = "request"  # derived per request (est_cost) or per decision time (deprecated)


@dataclass(frozen=True)
class Attribute:
    name: str
    kind: Kind
    source: Source
    integer: bool = False


ATTRIBUTES: dict[str, Attribute] = {
    a.name: a
    for a in (
        Attribute("id", Kind.STRING, Source.STATIC),
        Attribute("model", Kind.STRING, Source.STATIC),
        Attribute("provider", Kind.STRING, Source.STATIC),
        Attribute("region", Kind.STRING, Source.STATIC),
        Attribute("context_window", Kind.NUMBER, Source.STATIC, integer=True),
        Attribute("max_output_tokens", Kind.NUMBER, Source.STATIC, integer=True),
        Attribute("input_price", Kind.NUMBER, Source.STATIC),
        Attribute("output_price", Kind.NUMBER, Source.STATIC),
        Attribute("cached_input_price", Kind.NUMBER, Source.STATIC),
        Attribute("capabilities", Kind.SET, Source.STATIC),
        Attribute("tags", Kind.SET, Source.STATIC),
        Attribute("deprecated", Kind.BOOL, Source.REQUEST),
        Attribute("status", Kind.STRING, Source.LIVE),
        Attribute("latency_ms", Kind.NUMBER, Source.LIVE),
        Attribute("error_rate", Kind.NUMBER, Source.LIVE),
        # Extension (documented): the per-request cost bound may also be filtered on.
        Attribute("est_cost", Kind.NUMBER, Source.REQUEST),
    )
}

CAPABILITIES = (
    "tools",
    "vision",
    "json_schema",
    "reasoning",
    "streaming",
    "pdf_input",
    "audio_input",
    "prompt_caching",
)

STATUSES = ("available", "no_key", "unsupported", "not_entitled", "circuit_open", "disabled")

# Request features a policy may read with ["req", NAME] (spec §3).
NUMERIC_FEATURES = ("input_tokens", "max_output_tokens")
SET_FEATURES = ("needs", "labels")

# Metrics a rank key may name (besides ["ev", NAME]).
RANK_METRICS = tuple(
    a.name for a in ATTRIBUTES.values() if a.kind is Kind.NUMBER
)

STATIC_NUMERIC = tuple(
    a.name for a in ATTRIBUTES.values() if a.kind is Kind.NUMBER and a.source is Source.STATIC
)
