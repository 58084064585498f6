"""The decision record (spec §10) as a typed model: `DecisionRecord`, version `record_version`.

`RouteResult.record_model()`, `Completion.record_model()` and the records store's rebuilt
records give this model; `.to_json()` gives the JSON form, the same value as `record()` (a test
holds the two equal on generated decisions, dry runs, calls, streams and refusals). Its JSON
Schema (`DecisionRecord.model_json_schema()`, or `unhardcoded schema record`) documents every
field for readers in other languages. Values the policy language leaves open — a clause's term,
a compared value, a call parameter — are JSON values.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict

from router.policy.truth import Truth
from router.request.features import RequestFeatures

RECORD_VERSION: Final = 1  # what `to_record` writes; the model below reads this version
Json = Any  # any JSON value


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Proof(_Model):
    """How the derivation settled one clause for one offering: the rule that fired, the ground
    facts it used, and the proofs of its sub-clauses."""

    pointer: str
    truth: Truth
    rule: str
    clause: Json
    facts: list[str]
    children: list[Proof]


class Finished(_Model):
    """How `decide` finished a residual clause for this request: its truth, and the values it
    compared (or, for a sub-clause the derivation settled, `by: derivation`)."""

    pointer: str
    truth: Truth
    by: Literal["derivation"] | None = None
    compared: dict[str, Json] | None = None
    children: list[Finished] | None = None


class Rejection(_Model):
    pointer: str  # into the policy, or `builtin:NAME`
    clause: Json
    reason: str
    stage: Literal["derive", "decide"]
    proof: Proof | None = None  # absent in records asked for without proofs
    finished: Finished | None = None


class AdmittedClause(_Model):
    pointer: str
    stage: Literal["derive", "decide"]
    proof: Proof
    reason: str
    finished: Finished | None = None


class Admitted(_Model):
    offering: str
    clauses: list[AdmittedClause]


class KeyValue(_Model):
    key: str  # the rank key's label: `asc est_cost`, `desc ev:ticket_pass`
    value: float | None  # None: unknown


class Ranked(_Model):
    offering: str
    keys: list[KeyValue]


class Mutation(_Model):
    pointer: str
    op: str
    param: str | None
    value: Json


class Call(_Model):
    offering: str
    params: dict[str, Json]


class Fallback(_Model):
    on: list[str]
    retry: int
    backoff_ms: int
    timeout_ms: int
    then: Literal["next", "fail"]


class LiveRead(_Model):
    consulted: bool
    values: dict[str, dict[str, Json]]  # offering id → its live values, where not the default
    default: dict[str, Json]


class TokenEstimator(_Model):
    """Which estimator produced `request_features.input_tokens`; `upper_bound`: it is at least
    what OpenAI's o200k_base and cl100k_base tokenizers count (see `router.request.tokens`)."""

    name: str
    upper_bound: bool


class Omitted(_Model):
    rejections: int
    proofs: int
    why: str


class AttemptRecord(_Model):
    offering: str
    hop: int
    retry: int
    start: str
    latency_ms: float | None
    outcome: Literal["ok", "error", "timeout", "rate_limit", "bad_request", "skipped",
                     "cancelled"]
    status: int | None
    waited_ms: float
    params: dict[str, Json]
    detail: str | None = None
    retry_after_s: float | None = None


class UsageRecord(_Model):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cached_tokens: int | None = None


class CostRecord(_Model):
    usd: float | None  # None: a price it needed is unknown
    facts: list[Json]
    note: str | None = None


class DispatchFailure(_Model):
    kind: str | None
    message: str | None
    status: int | None
    provider_error: Json


class DecisionRecord(_Model):
    """One decision, dry run or dispatched; the dispatch fields are present when a call was
    made (`complete`, `stream`, the service's chat completions)."""

    record_version: Literal[1]
    trace_id: str
    at: str  # ISO 8601, UTC
    policy_hash: str
    policy: Json  # the admitted policy's term
    catalog_version: str
    ruleset_version: str
    config_hash: str
    request_features: RequestFeatures
    input_tokens_estimator: TokenEstimator | None = None  # absent from records before it
    live: LiveRead
    candidates: list[str]
    rejected: dict[str, list[Rejection]]
    admissible: list[Admitted]
    ranking: list[Ranked]
    selected: str | None
    cascade: list[str]
    mutations: list[Mutation]
    calls: list[Call]
    fallback: Fallback
    omitted: Omitted | None = None
    # dispatch
    attempts: list[AttemptRecord] | None = None
    served_by: str | None = None
    usage: UsageRecord | None = None
    cost_usd: float | None = None
    cost: CostRecord | None = None
    latency_ms: float | None = None
    outcome: Literal["ok", "failed"] | None = None
    error: DispatchFailure | None = None

    @classmethod
    def of(cls, record: dict[str, Any]) -> DecisionRecord:
        """The typed record of a record's JSON form (raises pydantic's `ValidationError`)."""
        return cls.model_validate(record)

    def to_json(self) -> dict[str, Any]:
        """The JSON form: exactly the fields the record has (a dry run has no dispatch
        fields; an explicit null stays null)."""
        return self.model_dump(mode="json", exclude_unset=True)
