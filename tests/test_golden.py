"""Golden cases: per operator, the admissible set (in rank order) and every rejection."""

from __future__ import annotations

from typing import Any

import pytest

from router.catalog.offerings import Catalog
from router.config import RouterConfig
from router.explain.record import replay, same_decision
from router.facade import Router
from router.live.state import LiveState, LiveValues
from tests.conftest import AT

HAIKU, BEDROCK, GPT, AZURE, GEMINI, MYSTERY = (
    "anthropic/claude-haiku-4-5", "bedrock/eu/claude-haiku-4-5", "openai/gpt-4o",
    "azure/eu/gpt-4o", "gemini/gemini-2.5-pro", "mystery/unpriced",
)
REQ: dict[str, Any] = {"messages": [{"role": "user", "content": "hello"}], "max_tokens": 1000}


def policy(*clauses: Any, rank: list[Any] | None = None, cascade: int = 2,
           evidence: list[Any] | None = None) -> list[Any]:
    return ["policy", evidence or ["ev_zero"], ["filter", *clauses],
            ["rank", *(rank if rank is not None else [])],
            ["select", ["first"], ["cascade", cascade]], ["mutate"], ["fallback"]]


def route(catalog: Catalog, pol: list[Any], request: dict[str, Any] | None = None,
          live: LiveState | None = None) -> tuple[list[str], dict[str, list[tuple[str, str]]]]:
    router = Router(catalog, config=RouterConfig(clock=lambda: AT, trace_ids=lambda: "t"))
    result = router.route(pol, request or REQ, live)
    record = result.record()
    rejected = {oid: [(e["pointer"], e["reason"]) for e in entries]
                for oid, entries in record["rejected"].items()}
    assert same_decision(record, replay(record, catalog))
    return [r["offering"] for r in record["ranking"]], rejected


CASES: list[tuple[str, list[Any], list[str], dict[str, list[tuple[str, str]]]]] = [
    ("empty filter: by id", policy(), [HAIKU, AZURE, BEDROCK, GEMINI, MYSTERY, GPT], {}),
    ("numeric floor", policy([">=", "context_window", 200000]), [HAIKU, BEDROCK, GEMINI], {
        AZURE: [("/2/1", "context_window 128000 < 200000")],
        GPT: [("/2/1", "context_window 128000 < 200000")],
        MYSTERY: [("/2/1", "context_window 32000 < 200000")]}),
    ("ceiling with unknown", policy(["<=", "output_price", 10.0]), [HAIKU, BEDROCK, GEMINI, GPT], {
        AZURE: [("/2/1", "output_price 11.0 > 10")],
        MYSTERY: [("/2/1", "output_price unknown")]}),
    ("in", policy(["in", "region", ["eu"]]), [AZURE, BEDROCK], {
        HAIKU: [("/2/1", "region `global` not in [eu]")],
        GPT: [("/2/1", "region `global` not in [eu]")],
        GEMINI: [("/2/1", "region `global` not in [eu]")],
        MYSTERY: [("/2/1", "region `us` not in [eu]")]}),
    ("not_in", policy(["not_in", "provider", ["openai", "azure", "vllm"]]),
     [HAIKU, BEDROCK, GEMINI], {
        AZURE: [("/2/1", "provider `azure` in [openai, azure, vllm]")],
        GPT: [("/2/1", "provider `openai` in [openai, azure, vllm]")],
        MYSTERY: [("/2/1", "provider `vllm` in [openai, azure, vllm]")]}),
    ("has", policy(["has", "tags", "zdr"]), [BEDROCK], {
        o: [("/2/1", "tags lacks `zdr`")] for o in (HAIKU, AZURE, GEMINI, MYSTERY, GPT)}),
    ("has_all", policy(["has_all", "capabilities", ["tools", "json_schema"]]),
     [AZURE, GEMINI, GPT], {
        HAIKU: [("/2/1", "capabilities lacks `json_schema`")],
        BEDROCK: [("/2/1", "capabilities lacks `json_schema`")],
        MYSTERY: [("/2/1", "capabilities lacks `tools`")]}),
    ("has_any", policy(["has_any", "capabilities", ["reasoning", "prompt_caching"]]),
     [HAIKU, GEMINI], {
        o: [("/2/1", "capabilities has none of [reasoning, prompt_caching]")]
        for o in (AZURE, BEDROCK, MYSTERY, GPT)}),
    ("has_none", policy(["has_none", "tags", ["approved"]]), [GEMINI, MYSTERY, GPT], {
        o: [("/2/1", "tags has `approved`")] for o in (HAIKU, AZURE, BEDROCK)}),
    ("not over unknown stays unknown", policy(["not", [">", "input_price", 2.0]]),
     [HAIKU, BEDROCK, GEMINI], {
        AZURE: [("/2/1", "not (input_price 2.75 > 2)")],
        GPT: [("/2/1", "not (input_price 2.5 > 2)")],
        MYSTERY: [("/2/1", "not (input_price unknown)")]}),
    ("any", policy(["any", ["in", "region", ["eu"]], ["<", "input_price", 1.2]]),
     [HAIKU, AZURE, BEDROCK], {
        GEMINI: [("/2/1",
                  "any: none held (region `global` not in [eu]; input_price 1.25 >= 1.2)")],
        GPT: [("/2/1", "any: none held (region `global` not in [eu]; input_price 2.5 >= 1.2)")],
        MYSTERY: [("/2/1", "any: unknown (region `us` not in [eu]; input_price unknown)")]}),
    ("all", policy(["all", ["==", "provider", "openai"], ["==", "deprecated", False]]), [GPT], {
        HAIKU: [("/2/1", "all: (provider `anthropic` != `openai`)")],
        AZURE: [("/2/1", "all: (provider `azure` != `openai`)")],
        BEDROCK: [("/2/1", "all: (provider `bedrock` != `openai`)")],
        GEMINI: [("/2/1", "all: (provider `gemini` != `openai`)")],
        MYSTERY: [("/2/1", "all: (provider `vllm` != `openai`)")]}),
]


@pytest.mark.parametrize(("name", "pol", "admissible", "rejected"), CASES,
                         ids=[c[0] for c in CASES])
def test_golden(fixture_catalog: Catalog, name: str, pol: list[Any], admissible: list[str],
                rejected: dict[str, list[tuple[str, str]]]) -> None:
    got_admissible, got_rejected = route(fixture_catalog, pol)
    assert got_admissible == admissible
    assert got_rejected == rejected


def test_when_applies_only_with_label(fixture_catalog: Catalog) -> None:
    pol = policy(["when", ["req", "pii"], ["in", "region", ["eu"]]])
    admissible, rejected = route(fixture_catalog, pol)
    assert admissible == [HAIKU, AZURE, BEDROCK, GEMINI, MYSTERY, GPT] and rejected == {}
    admissible, rejected = route(fixture_catalog, pol, {**REQ, "labels": ["pii"]})
    assert admissible == [AZURE, BEDROCK]
    assert rejected[HAIKU] == [
        ("/2/1", "when request label `pii` present: region `global` not in [eu]")]


def test_when_with_feature_predicate(fixture_catalog: Catalog) -> None:
    pol = policy(["when", [">", ["req", "input_tokens"], 1000], [">=", "context_window", 1e6]])
    assert route(fixture_catalog, pol)[0] == [HAIKU, AZURE, BEDROCK, GEMINI, MYSTERY, GPT]
    big = {"messages": [{"role": "user", "content": "x" * 8000}], "max_tokens": 100}
    assert route(fixture_catalog, pol, big)[0] == [GEMINI]


def test_evidence_filter_and_rank(fixture_catalog: Catalog) -> None:
    ev = ["ev", ["score", "support_acc", {"claude-haiku-4-5": 0.91, "gpt-4o": 0.84,
                                          "gemini-2.5-pro": 0.88}]]
    pol = policy(["ev", "support_acc", ">=", 0.85], rank=[["desc", ["ev", "support_acc"]]],
                 evidence=ev)
    admissible, rejected = route(fixture_catalog, pol)
    assert admissible == [HAIKU, BEDROCK, GEMINI]
    assert rejected[GPT] == [("/2/1", "ev support_acc 0.84 < 0.85")]
    assert rejected[MYSTERY] == [("/2/1", "no evidence `support_acc` for model `unpriced`")]


def test_rank_est_cost_unknown_last_and_id_tiebreak(fixture_catalog: Catalog) -> None:
    pol = policy(rank=[["asc", "est_cost"]], cascade=5)
    admissible, _ = route(fixture_catalog, pol)
    # 1000 output tokens dominate; haiku (5.0) < bedrock (5.5) < gemini = gpt (10.0; input
    # breaks it) < azure (11.0); the unpriced offering ranks last.
    assert admissible == [HAIKU, BEDROCK, GEMINI, GPT, AZURE, MYSTERY]
    pol = policy(rank=[["desc", "output_price"]], cascade=5)
    assert route(fixture_catalog, pol)[0] == [AZURE, GEMINI, GPT, BEDROCK, HAIKU, MYSTERY]


def test_builtins_are_residual_and_reported(fixture_catalog: Catalog) -> None:
    request = {"messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "data:,"}}]}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}}
    live = LiveState({AZURE: LiveValues(status="no_key", reason="no key: set AZURE_API_KEY")},
                     consulted=True)
    admissible, rejected = route(fixture_catalog, policy(), request, live)
    assert admissible == [GEMINI, GPT]
    assert rejected[AZURE] == [("builtin:status_available",
                                "status `no_key` != `available` (no key: set AZURE_API_KEY)")]
    assert rejected[HAIKU] == [("builtin:capabilities_cover_needs",
                                "capabilities lacks `json_schema` (needed by request needs)")]
    assert rejected[MYSTERY] == [("builtin:capabilities_cover_needs",
                                  "capabilities lacks `json_schema` (needed by request needs)")]


def test_context_builtin_and_cascade(fixture_catalog: Catalog) -> None:
    big = {"messages": [{"role": "user", "content": "x" * 1_000_000}], "max_tokens": 100}
    router = Router(fixture_catalog, config=RouterConfig(clock=lambda: AT))
    result = router.route(policy(cascade=1), big)
    assert result.selected == GEMINI and result.cascade == ()
    reasons = {e["pointer"]: e["reason"] for e in result.record()["rejected"][HAIKU]}
    assert reasons == {"builtin:context_fits_input":
                       "context_window 200000 < 209175 (request input_tokens)"}


def test_clamp_mutation_per_hop(fixture_catalog: Catalog) -> None:
    pol = ["policy", ["ev_zero"], ["filter"], ["rank", ["desc", "context_window"]],
           ["select", ["first"], ["cascade", 1]], ["mutate", ["clamp_max_tokens"],
                                                   ["set", "temperature", 0.2]], ["fallback"]]
    request = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 65000}
    result = Router(fixture_catalog, config=RouterConfig(clock=lambda: AT)).route(pol, request)
    calls = result.record()["calls"]
    assert calls == [
        {"offering": GEMINI, "params": {"temperature": 0.2, "max_tokens": 65000}},
        {"offering": HAIKU, "params": {"temperature": 0.2, "max_tokens": 64000}},
    ]
