"""Errors in OpenAI's shape — `{"error": {"message", "type", "code", "param"}}` — with our codes
and, where they help, our details (`problems`, `rejections`, `hops`, `trace_id`).

| status | code | when |
|---|---|---|
| 400 | `invalid_json`, `invalid_request`, `policy_invalid` | bad body, bad request, bad policy |
| 401 | `invalid_api_key` | missing or unknown bearer key |
| 403 | `policy_not_allowed` | the key is limited to other policies |
| 404 | `policy_not_found`, `model_not_found`, `not_found` | unknown name (with "did you mean") |
| 405, 408, 413, 415 | `method_not_allowed`, `body_timeout`, `body_too_large`, … | |
| 422 | `no_admissible_offering` | nothing passes the policy: counts per clause, nearest offering |
| 4xx | the provider's | a provider refused the request: its status and (scrubbed) body |
| 502 | `upstream_failed` | every hop failed: the hops |
| 503 | `not_ready`, `derivation_failed`, `records_not_stored` | |
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from router.common.problems import Problem
from router.dispatch.completion import (
    CascadeExhausted,
    DispatchError,
    NoAdmissibleOffering,
    ProviderRejected,
)
from router.explain.explanation import explain_one
from router.facade import Router

TYPES = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}
MAX_PROBLEMS = 50
MAX_CLAUSES = 50


@dataclass
class ServiceError(Exception):
    status: int
    code: str
    message: str
    param: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        kind = TYPES.get(self.status, "api_error" if self.status >= 500
                         else "invalid_request_error")  # every other 4xx
        return {"error": {"message": self.message, "type": kind, "code": self.code,
                          "param": self.param, **self.extra}}


def refused(status: int, code: str, problems: Sequence[Problem], what: str) -> ServiceError:
    """A refused input: every problem (the first `MAX_PROBLEMS`), the first one's pointer as
    `param`."""
    shown = list(problems)[:MAX_PROBLEMS]
    lines = "; ".join(p.line() for p in shown)
    more = f" (and {len(problems) - len(shown)} more)" if len(problems) > len(shown) else ""
    return ServiceError(status, code, f"{what} refused: {lines}{more}",
                        shown[0].pointer if shown else None,
                        {"problems": [p.model_dump() for p in shown]})


def from_dispatch(exc: DispatchError, router: Router) -> ServiceError:
    trace = {"trace_id": exc.record.get("trace_id")}
    if isinstance(exc, NoAdmissibleOffering):
        return ServiceError(422, "no_admissible_offering", _first_line(exc.message), None,
                            {**trace, **rejection_summary(exc, router)})
    if isinstance(exc, ProviderRejected):
        status = exc.status if exc.status is not None and 400 <= exc.status < 500 else 400
        detail = _provider_error(exc.provider_error)
        return ServiceError(status, str(detail.get("code") or "provider_rejected"),
                            str(detail.get("message") or exc.message),
                            detail.get("param") if isinstance(detail.get("param"), str) else None,
                            {**trace, "provider_error": exc.provider_error,
                             "served_by": _last_offering(exc.record)})
    hops = [{k: a.get(k) for k in ("offering", "hop", "retry", "outcome", "status", "detail")}
            for a in exc.record.get("attempts") or []]
    code = "upstream_failed" if isinstance(exc, CascadeExhausted) else exc.code
    return ServiceError(502, code, _first_line(exc.message), None, {**trace, "hops": hops})


def rejection_summary(exc: NoAdmissibleOffering, router: Router) -> dict[str, Any]:
    """How many offerings each clause struck, and the nearest offering: of those the fewest
    policy clauses reject (no built-in among them), the one the policy ranks first, with the
    smallest change that admits it."""
    rejected: Mapping[str, list[dict[str, Any]]] = exc.record.get("rejected", {})
    per_clause: Counter[str] = Counter()
    for entries in rejected.values():
        per_clause.update({e["pointer"] for e in entries})
    summary: dict[str, Any] = {
        "rejected": len(rejected),
        "rejections_by_clause": dict(per_clause.most_common(MAX_CLAUSES)),
    }
    fixable = [(len(entries), oid) for oid, entries in rejected.items()
               if not any(e["pointer"].startswith("builtin:") for e in entries)]
    decision = exc.decision
    if fixable and decision is not None:
        fewest = min(n for n, _ in fixable)
        d = decision.derivation
        closest = [o for n, oid in fixable if n == fewest
                   for o in [d.catalog.get(oid)] if o is not None]
        ranked = router.decider(d.policy, d.catalog).order(closest, decision.context)
        offering = d.catalog.get(ranked[0].offering_id) if ranked else None
        if offering is not None:
            oid = offering.id
            why = explain_one(decision, offering)
            summary["nearest"] = {"offering": oid,
                                  "failed": [f.reason for f in why.failed],
                                  "smallest_change": list(why.changes),
                                  "change_note": why.change_note}
    return summary


def _provider_error(body: Any) -> dict[str, Any]:
    if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
        return dict(body["error"])
    if isinstance(body, Mapping):
        return dict(body)
    return {"message": str(body)[:2000]} if body else {}


def _last_offering(record: Mapping[str, Any]) -> str | None:
    attempts = record.get("attempts") or []
    return attempts[-1].get("offering") if attempts else None


def _first_line(message: str) -> str:
    return message.split("\n", 1)[0].rstrip(":")
