"""Ground facts for a compiled program: the catalog snapshot (and, in full mode, the request).

Only the attributes the program reads are asserted. Every value was validated by pydantic
before it gets here, so no `None`, NaN or wrong type ever reaches the engine: an unknown value
is an explicit `u_ATTR(O)` fact (closed world).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from router.catalog.offerings import Catalog, Offering
from router.engine.program import Program
from router.live.state import LiveState, is_deprecated
from router.policy.attributes import ATTRIBUTES, Kind, Source
from router.policy.terms import Policy
from router.request.features import RequestFeatures

Fact = tuple[str, tuple[object, ...]]


def est_cost(offering: Offering, input_tokens: int, max_output: int | None) -> float | None:
    """Spec §2: input tokens × input_price + max output tokens × output_price, over 1e6."""
    return cost(input_tokens, offering.input_price, offering.output_price, max_output)


def cost(input_tokens: int, input_price: float | None, output_price: float | None,
         max_output: int | None) -> float | None:
    if input_price is None or output_price is None or max_output is None:
        return None
    return (input_tokens * input_price + max_output * output_price) / 1e6


def asked_max_output(features: RequestFeatures, policy: Policy) -> int | None:
    """The max output asked for: a policy `set`, else the request's, else a policy `default`."""
    forced = policy.set_max_tokens()
    if forced is not None:
        return forced
    if features.max_output_tokens is not None:
        return features.max_output_tokens
    return policy.default_max_tokens()


def effective_max_output(offering: Offering, features: RequestFeatures,
                         policy: Policy) -> int | None:
    """The max output of the call to this offering: the ask (`asked_max_output`), clamped to
    the offering's limit when the policy clamps; with no ask, the offering's own limit."""
    return call_max_output(asked_max_output(features, policy), offering.max_output_tokens,
                           policy.clamps_max_tokens)


def call_max_output(asked: int | None, limit: int | None, clamps: bool) -> int | None:
    """The ask, clamped to the offering's limit when the policy clamps; no ask: the limit."""
    if asked is None:
        return limit
    if clamps and limit is not None:
        return min(asked, limit)
    return asked


def static_facts(program: Program, catalog: Catalog, policy: Policy) -> Iterator[Fact]:
    attrs = sorted(program.attributes)
    for o in catalog:
        yield "offering", (o.id,)
        for attr in attrs:
            spec = ATTRIBUTES[attr]
            if spec.source is Source.STATIC:
                yield from _static_attr(o, attr, spec.kind)
            elif program.mode == "partial":
                yield from _residual_attr(o, attr)
        if program.needs_evidence:
            yield "model_of", (o.id, o.model)
    if program.needs_evidence:
        for metric, table in sorted(policy.evidence.items()):
            for model, score in sorted(table.items()):
                yield "ev_score", (metric, model, score)
                yield "ev_known", (metric, model)


def _static_attr(o: Offering, attr: str, kind: Kind) -> Iterator[Fact]:
    value = o.attr(attr)
    if value is None:
        yield f"u_{attr}", (o.id,)
    elif kind is Kind.SET:
        yield f"k_{attr}", (o.id,)
        for element in sorted(value):
            yield f"a_{attr}", (o.id, element)
    else:
        yield f"a_{attr}", (o.id, value)


def _residual_attr(o: Offering, attr: str) -> Iterator[Fact]:
    if attr == "est_cost":
        if o.input_price is None or o.output_price is None:
            yield "u_est_cost", (o.id,)
        else:
            yield "r_est_cost", (o.id, "")
    elif attr == "deprecated":
        if o.deprecation_date is None:
            yield "a_deprecated", (o.id, False)
        else:
            yield "r_deprecated", (o.id, o.deprecation_date)
    else:  # live: status, latency_ms, error_rate
        yield f"r_{attr}", (o.id, "")


def request_facts(program: Program, catalog: Catalog, policy: Policy,
                  features: RequestFeatures, live: LiveState, at: dt.datetime) -> Iterator[Fact]:
    """Full mode: the request, live state and decision time asserted as facts."""
    for o in catalog:
        lv = live.of(o.id)
        max_out = effective_max_output(o, features, policy)
        for attr in sorted(program.attributes):
            spec = ATTRIBUTES[attr]
            if spec.source is Source.STATIC:
                continue
            value: object
            if attr == "est_cost":
                value = est_cost(o, features.input_tokens, max_out)
            elif attr == "deprecated":
                value = is_deprecated(o.deprecation_date, at)
            else:
                value = getattr(lv, attr)
            yield (f"u_{attr}", (o.id,)) if value is None else (f"a_{attr}", (o.id, value))
        for feature in sorted(program.numeric_features):
            fv = features.input_tokens if feature == "input_tokens" else max_out
            yield (f"uf_{feature}", (o.id,)) if fv is None else (f"f_{feature}", (o.id, fv))
    for feature in sorted(program.set_features):
        elements = features.needs if feature == "needs" else features.labels
        for element in elements:
            yield f"fe_{feature}", (element,)
