"""Issue 11, finding 6: small policies that cost a great deal to derive.

A policy of 255 `==` clauses (6.9 KB) took 19 s and 0.5 GB to derive over the embedded catalog
(and its record 255 MB); `["any", 255 clauses]` compiled to ~130,000 rule literals and grew
quadratically; `has_any` over 256 tags compiled one rule per value and proved each rejection
with 257 facts. Now: lists are one `member` fact set joined once, junctions are linear, and a
budget refuses what is still too costly — at admission from the policy alone, and before the
engine starts when the catalog is too large for it (`policy.too_complex`, with the figures).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router.catalog.offerings import Catalog, build_catalog
from router.cli.main import main
from router.common.problems import PolicyError
from router.config import RouterConfig
from router.decide.decider import Decider
from router.engine.compile import compile_policy, load_ruleset
from router.engine.datalog import run
from router.engine.derive import MAX_DERIVE_COST, derive
from router.engine.facts import request_facts, static_facts
from router.explain.proof import check_proof, proof_of
from router.facade import Router
from router.live.state import LiveState
from router.policy.admit import admit, admit_text
from router.policy.cost import FAN_IN, MAX_POLICY_COST, SHORT_LIST, policy_cost
from router.policy.terms import Policy
from router.request.features import features_of
from tests.conftest import AT
from tests.oracle import oracle_decide, oracle_truths
from tests.strategies import (
    STRING_ATTRS,
    STRING_POOLS,
    TAGS,
    catalogs,
    leaf_clauses,
    live_states,
    policies,
    request_features,
)

REQ: dict[str, Any] = {"messages": [{"role": "user", "content": "hello"}]}
FAST = settings(max_examples=25, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def term(*clauses: Any) -> list[Any]:
    return ["policy", ["ev_zero"], ["filter", *clauses], ["rank"], ["select", ["first"]],
            ["mutate"], ["fallback"]]


def refusal(exc: pytest.ExceptionInfo[PolicyError]) -> dict[str, Any]:
    [problem] = exc.value.to_json()
    assert problem["code"] == "policy.too_complex"
    return problem


def builtin_cost() -> int:
    return compile_policy(admit(term()), load_ruleset(), "partial").cost()


# -- admission: the budget, with the figure --------------------------------------------------


def test_255_equalities_are_refused_at_admission_with_the_figure() -> None:
    """The finding's policy: 255 `==` clauses side by side, 6.9 KB of text."""
    text = json.dumps(term(*[["==", "provider", f"x{i}"] for i in range(255)]))
    assert 6_000 < len(text) < 8_000
    with pytest.raises(PolicyError) as exc:
        admit_text(text)
    problem = refusal(exc)
    assert problem["pointer"] == "/2"  # spread over the filter: no one clause to blame
    assert problem["message"] == ("the filter costs 1,275 units per offering to derive over "
                                  "255 clauses; the limit is 500")
    assert "`in`" in problem["hint"]


def test_one_costly_clause_is_named() -> None:
    """`any` over 255 alternatives: the clause at /2/2 holds nearly all of the cost."""
    wide = ["any", *[["==", "model", f"m{i}"] for i in range(255)]]
    with pytest.raises(PolicyError) as exc:
        admit(term([">=", "context_window", 1000], wide))
    problem = refusal(exc)
    assert problem["pointer"] == "/2/2"
    cost = 255 * 5 * 2 + 8 * 255 + (255 + 32 + 4)  # leaves one level down, the junction
    assert problem["message"] == (f"the filter costs {cost + 5:,} units per offering to "
                                  f"derive, {cost:,} of them in this clause; the limit is 500")


def test_the_same_choice_as_one_list_is_admitted_and_cheap() -> None:
    """What the hint says to do: one `in` list costs the same as a one-value list."""
    long = admit(term(["in", "provider", [f"x{i}" for i in range(256)]]))
    short = admit(term(["in", "provider", ["x0"]]))
    assert policy_cost(long).total == policy_cost(short).total == 5


def test_the_cli_reports_the_refusal_as_json_not_a_traceback(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps(term(*[["<", "input_price", i] for i in range(255)])))
    assert main(["policy", "check", str(path)]) == 2
    err = json.loads(capsys.readouterr().err)
    assert err["ok"] is False
    assert [p["code"] for p in err["problems"]] == ["policy.too_complex"]


def test_a_policy_at_the_limit_is_admitted() -> None:
    at_limit = admit(term(*[["==", "provider", f"x{i}"] for i in range(MAX_POLICY_COST // 5)]))
    assert policy_cost(at_limit).total == MAX_POLICY_COST


# -- the estimate is the compiled program's own count ----------------------------------------


def wide_junction_terms() -> st.SearchStrategy[list[Any]]:
    """`any`/`all`/`when` over more than FAN_IN parts (so conjunctions get folded), nested, and
    small enough to be admitted."""
    heads = st.sampled_from(("any", "all"))

    def junction(most: int) -> st.SearchStrategy[list[Any]]:
        return st.builds(lambda head, kids: [head, *kids], heads,
                         st.lists(leaf_clauses(()), min_size=FAN_IN + 1, max_size=most))

    nested = st.builds(lambda head, inner, kids: [head, ["not", inner], *kids], heads,
                       st.builds(lambda head, kids: [head, *kids], heads,
                                 st.lists(leaf_clauses(()), min_size=1, max_size=3)),
                       st.lists(leaf_clauses(()), min_size=FAN_IN, max_size=FAN_IN))
    guarded = st.builds(lambda inner: ["when", ["req", "pii"], inner], junction(FAN_IN + 1))
    return st.one_of(junction(2 * FAN_IN), nested, guarded)


@st.composite
def long_lists(draw: st.DrawFn) -> list[Any]:
    """A list clause with up to 256 values: a few the catalog may hold, many it does not."""
    head = draw(st.sampled_from(("in", "not_in", "has_any", "has_none", "has_all")))
    if head in ("in", "not_in"):
        attr = draw(st.sampled_from([a for a in STRING_ATTRS if a != "status"]))
        pool: tuple[Any, ...] = STRING_POOLS[attr]
    else:
        attr, pool = "tags", (*TAGS, "it's")
    fillers = [f"v{i}" for i in range(draw(st.integers(FAN_IN, 250)))]
    chosen = draw(st.lists(st.sampled_from(pool), max_size=4))
    return [head, attr, draw(st.permutations([*fillers, *chosen]))]


@FAST
@given(policies())
def test_admission_cost_equals_the_compiled_cost(policy: Policy) -> None:
    program = compile_policy(policy, load_ruleset(), "partial")
    assert policy_cost(policy).total == program.cost() - builtin_cost()


@FAST
@given(wide_junction_terms())
def test_admission_cost_equals_the_compiled_cost_for_wide_junctions(clause: list[Any]) -> None:
    policy = admit(term(clause))
    program = compile_policy(policy, load_ruleset(), "partial")
    assert policy_cost(policy).total == program.cost() - builtin_cost()


# -- compilation: lists are one fact set, junctions are linear -------------------------------


@pytest.mark.parametrize("clause", [
    ["in", "provider", [f"x{i}" for i in range(256)]],
    ["not_in", "context_window", list(range(1000, 257_000, 1000))],
    ["has_any", "tags", [f"t{i}" for i in range(256)]],
    ["has_none", "tags", [f"t{i}" for i in range(256)]],
    ["has_all", "tags", [f"t{i}" for i in range(256)]],
])
def test_a_long_list_compiles_like_a_short_one(clause: list[Any]) -> None:
    """One membership fact per value, joined by the same few rules as a five-value list (up to
    four values, a rule or comparison per value is the faster form)."""
    short = [*clause[:2], clause[2][:SHORT_LIST + 1]]
    ruleset = load_ruleset()
    long_program = compile_policy(admit(term(clause)), ruleset, "partial")
    short_program = compile_policy(admit(term(short)), ruleset, "partial")
    assert [r.text() for r in long_program.rules] == [r.text() for r in short_program.rules]
    assert long_program.facts == tuple(("member", ("/2/1/2", v)) for v in clause[2])


def test_a_wide_junction_compiles_to_linear_short_rules() -> None:
    """`U` rules used to negate every sibling (2n + 1 literals each, n of them) and the
    all-agree rule joined n children in one body; both are now bounded."""
    n = 24
    policy = admit(term(["any", *[["in", "model", [f"m{i}"]] for i in range(n)]]))
    program = compile_policy(policy, load_ruleset(), "partial")
    mine = [r for r in program.rules if r.pointer.startswith("/2/")]
    assert sum(len(r.body) for r in mine) <= 15 * n
    assert max(len(r.body) for r in mine) <= FAN_IN


def test_a_has_any_rejection_proof_names_the_offerings_facts_not_the_whole_list(
        fixture_catalog: Catalog) -> None:
    policy = admit(term(["has_any", "tags", [f"t{i}" for i in range(256)]]))
    d = derive(policy, fixture_catalog)
    assert set(d.rejected) == {o.id for o in fixture_catalog}
    bedrock = fixture_catalog.get("bedrock/eu/claude-haiku-4-5")
    assert bedrock is not None
    proof = proof_of(d, "/2/1", bedrock.id)
    assert proof.truth == "F"
    assert proof.facts == (("k_tags", (bedrock.id,)), ("a_tags", (bedrock.id, "approved")),
                           ("a_tags", (bedrock.id, "zdr")))
    assert check_proof(proof, bedrock, policy) == []
    gpt = fixture_catalog.get("openai/gpt-4o")  # no tags: the known, empty set is the proof
    assert gpt is not None
    assert proof_of(d, "/2/1", gpt.id).facts == (("k_tags", (gpt.id,)),)
    assert check_proof(proof_of(d, "/2/1", gpt.id), gpt, policy) == []


def test_list_witnesses_keep_list_order(fixture_catalog: Catalog) -> None:
    """`has_all` names the first listed value the set lacks, as one rule per value did."""
    policy = admit(term(["has_all", "capabilities", ["vision", "tools", "reasoning",
                                                     "json_schema"]]))
    d = derive(policy, fixture_catalog)
    assert d.verdict("/2/1", "anthropic/claude-haiku-4-5")[2] == "reasoning"
    assert d.verdict("/2/1", "mystery/unpriced")[2] == "vision"


def test_membership_compares_numbers_as_numbers(fixture_catalog: Catalog) -> None:
    """A fact join must agree with `==`: 128000.0 is the integer context window 128000."""
    policy = admit(term(["in", "context_window", [128000.0, 1]],
                        ["not_in", "deprecated", [True]]))
    features, live = features_of(REQ), LiveState.not_consulted()
    decision = Decider(derive(policy, fixture_catalog)).decide(features, live, AT)
    want = oracle_decide(policy, fixture_catalog, features, live, AT)
    assert list(decision.admissible) == want["admissible"]
    assert set(decision.admissible) == {"azure/eu/gpt-4o", "openai/gpt-4o"}


# -- wide junctions and long lists agree with the oracle, and their proofs check -------------


@FAST
@given(st.data())
def test_wide_junctions_and_long_lists_match_the_oracle(data: st.DataObject) -> None:
    clause = data.draw(wide_junction_terms())
    policy = admit(term(clause, data.draw(long_lists()), data.draw(leaf_clauses(()))))
    catalog = data.draw(catalogs())
    features = data.draw(request_features())
    live = data.draw(live_states(catalog))
    at = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    d = derive(policy, catalog)
    decision = Decider(d).decide(features, live, at)
    want = oracle_decide(policy, catalog, features, live, at)
    assert list(decision.admissible) == want["admissible"]
    assert {oid: sorted(decision.failed_clauses(oid)) for oid in decision.rejected_ids()} \
        == want["rejected"]
    for oid, pointers in d.rejected.items():
        offering = catalog.get(oid)
        assert offering is not None
        for ptr in pointers:
            assert check_proof(proof_of(d, ptr, oid), offering, policy) == []
    # The full-mode program (request asserted as facts) agrees clause by clause.
    program = compile_policy(policy, load_ruleset(), "full")
    raw = run(program, [*static_facts(program, catalog, policy),
                        *request_facts(program, catalog, policy, features, live, at)])
    truths = oracle_truths(policy, catalog, features, live, at)
    for oid, per in truths.items():
        for ptr, truth in per.items():
            assert {v[0] for v in raw[ptr].get(oid, [])} == {truth}, (oid, ptr)


# -- derive: the budget over the catalog in force --------------------------------------------


def big_catalog(n: int) -> Catalog:
    return build_catalog({"schema": 1, "source": "test", "offerings": [
        {"id": f"p/m{i}", "model": f"m{i}", "provider": "openai", "region": "us",
         "context_window": 100_000, "max_output_tokens": 4096, "input_price": 1.0,
         "output_price": 2.0, "capabilities": ["tools"]} for i in range(n)]})


def test_an_admitted_policy_too_costly_for_the_catalog_is_refused_before_deriving() -> None:
    """100 comparisons (500 units) are admissible; over 8,000 offerings they would be over
    4 million units of work. The refusal comes before the engine starts; nothing is cached,
    and the router goes on serving other policies."""
    heavy = term(*[[">=", "context_window", i] for i in range(100)])
    light = term([">=", "context_window", 1000])
    catalog = big_catalog(8_000)
    per_offering = 500 + builtin_cost()
    assert per_offering * len(catalog) > MAX_DERIVE_COST
    with pytest.raises(PolicyError) as exc:
        derive(admit(heavy), catalog)
    problem = refusal(exc)
    assert problem["pointer"] == "/2"
    assert problem["message"] == (
        f"deriving the filter over 8,000 offerings costs {per_offering * 8_000:,} units "
        f"({per_offering:,} per offering, built-in clauses included); the limit is "
        f"{MAX_DERIVE_COST:,}")
    for in_processes in (False, True):  # the same refusal whether workers derive or not
        config = RouterConfig(derive_in_processes=in_processes, records=None)
        with Router(catalog, config=config) as router:
            with pytest.raises(PolicyError) as again:
                router.route(heavy, REQ)
            assert refusal(again)["message"] == problem["message"]
            assert router.deciders.cache.peek(admit(heavy), catalog) is None
            assert router.route(light, REQ).selected == "p/m0"


def test_one_record_holds_a_bounded_number_of_rejections_and_proofs(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A policy whose every clause rejects every offering: the record lists the first
    `MAX_LISTED_PER_OFFERING` failed clauses of each, at most `MAX_PROOFS` proofs, and says
    what it left out; `explain` still gives one offering in full."""
    from router.explain import record as record_module

    monkeypatch.setattr(record_module, "MAX_PROOFS", 1000)
    providers = ["openai", "mistral", "deepseek", "groq", "xai", "cerebras", "together_ai"]
    offerings = [{"id": f"p{i % 7}/m{i}", "model": f"m{i}", "provider": providers[i % 7],
                  "region": "us", "context_window": 100_000, "max_output_tokens": 1000,
                  "input_price": 1.0, "output_price": 2.0, "capabilities": ["tools"]}
                 for i in range(200)]
    catalog = build_catalog({"schema": 1, "source": "test", "offerings": offerings})
    clauses = [["==", "provider", f"nope{i}"] for i in range(12)]
    term = ["policy", ["ev_zero"], ["filter", *clauses], ["rank"], ["select", ["first"]],
            ["mutate"], ["fallback"]]
    with Router(catalog, config=RouterConfig(records=None, derive_in_processes=False)) as r:
        result = r.route(term, {"messages": [{"role": "user", "content": "x"}]})
        rec = result.record()
        listed = record_module.MAX_LISTED_PER_OFFERING
        assert {len(v) for v in rec["rejected"].values()} == {listed}
        with_proof = sum("proof" in e for v in rec["rejected"].values() for e in v)
        assert with_proof == 1000
        assert rec["omitted"]["rejections"] == 200 * (12 - listed)
        assert rec["omitted"]["proofs"] == 200 * listed - 1000
        assert len(r.explain(term, "p0/m0")[0].failed) == 12
        small = r.route(["policy", ["ev_zero"], ["filter", clauses[0]], ["rank"],
                         ["select", ["first"]], ["mutate"], ["fallback"]],
                        {"messages": [{"role": "user", "content": "x"}]}).record()
    assert "omitted" not in small
