"""Differential tests: the router (derive + decide) against an independent oracle, against a
full derivation with the request asserted as facts, its own proofs, and its own replay.

Every property draws a small random catalog, an admitted policy over every operator, request
features and live state (see `tests/strategies.py`). The oracle (`tests/oracle.py`) is a plain
reading of the spec and shares no evaluation code with the router.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router.catalog.offerings import Catalog, build_catalog
from router.decide.decider import CostOrder, Decider, Decision
from router.decide.evaluate import Context
from router.engine.compile import compile_policy, load_ruleset
from router.engine.datalog import run
from router.engine.derive import Derivation, derive
from router.engine.facts import request_facts, static_facts
from router.explain.proof import check_proof, proof_of
from router.explain.record import replay, same_decision, to_record
from router.live.state import LiveState, LiveValues
from router.policy.admit import admit
from router.request.features import RequestFeatures
from tests.oracle import oracle_decide, oracle_truths
from tests.strategies import AT, Scenario, scenarios

# ~100 examples per property keep this file well under a minute on two cores; set
# DIFFERENTIAL_EXAMPLES=2000 for a deeper run.
EXAMPLES = int(os.environ.get("DIFFERENTIAL_EXAMPLES", "100"))
FAST = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def decide(s: Scenario) -> tuple[Derivation, Decision]:
    d = derive(s.policy, s.catalog)
    return d, Decider(d).decide(s.features, s.live, s.at)


def router_failures(d: Derivation, decision: Decision) -> dict[str, list[str]]:
    """Offering id → the failing top-level pointers the router reports (derive + decide)."""
    out: dict[str, list[str]] = {}
    for oid in decision.rejected_ids():
        out[oid] = sorted(decision.failed_clauses(oid))
    return out


def describe(s: Scenario) -> str:
    """What a failing example was, in the terms a maintainer would paste into a repro."""
    live = {k: v.model_dump(exclude_none=True) for k, v in s.live.values.items()}
    return (f"policy={s.policy.canonical}\ncatalog={s.catalog.to_json()['offerings']}\n"
            f"features={s.features.model_dump()}\nlive={live}\nat={s.at.isoformat()}")


# -- 1. derive + decide == oracle --------------------------------------------------------------


@FAST
@given(scenarios())
def test_decide_matches_oracle(s: Scenario) -> None:
    d, decision = decide(s)
    want = oracle_decide(s.policy, s.catalog, s.features, s.live, s.at)
    note = describe(s)
    assert list(decision.admissible) == want["admissible"], note
    assert [r.keys for r in decision.ranking] == want["ranking_keys"], note
    assert decision.selected == want["selected"], note
    assert list(decision.cascade) == want["cascade"], note
    got = router_failures(d, decision)
    # Same offerings rejected, and every pointer the router blames really fails.
    assert set(got) == set(want["rejected"]), note
    for oid, pointers in got.items():
        assert set(pointers) <= set(want["rejected"][oid]), (oid, note)


@FAST
@given(scenarios())
def test_rejections_name_every_failed_clause(s: Scenario) -> None:
    """Spec §10: `rejected` lists, per offering, *every* failed clause (§7: every reason)."""
    d, decision = decide(s)
    want = oracle_decide(s.policy, s.catalog, s.features, s.live, s.at)
    assert router_failures(d, decision) == want["rejected"], describe(s)


# -- 2. partial derivation + decide == full derivation ------------------------------------------


@FAST
@given(scenarios())
def test_bound_clauses_equal_the_reference_evaluator(s: Scenario) -> None:
    """decide's specialised closures (`Evaluator.bind`) agree with `Evaluator.truth` on every
    clause node (not only top-level ones) of every offering."""
    d, decision = decide(s)
    ev, ctx = decision.evaluator, decision.context
    for o in d.catalog:
        for node in d.program.nodes:
            assert ev.bind(node.pointer, o)(ctx) == ev.truth(node.pointer, o, ctx), (
                node.pointer, o.id, describe(s))


@FAST
@given(scenarios())
def test_label_settled_clauses_equal_the_reference_evaluator(s: Scenario) -> None:
    """What decide settles from the request's labels alone (`Evaluator.settled_by_labels`) is
    the reference truth of that node for this request, on every node of every offering."""
    d, decision = decide(s)
    ev, ctx = decision.evaluator, decision.context
    labels = frozenset(s.features.labels)
    for o in d.catalog:
        for node in d.program.nodes:
            settled = ev.settled_by_labels(node.pointer, o, labels)
            if settled is not None:
                assert settled == ev.truth(node.pointer, o, ctx), (
                    node.pointer, o.id, describe(s))


@FAST
@given(scenarios(), scenarios())
def test_one_decider_serves_every_label_set(s: Scenario, other: Scenario) -> None:
    """A decider that has built label views for another request decides this one exactly as
    a fresh decider does (views are per label set, never mixed up)."""
    d = derive(s.policy, s.catalog)
    warm = Decider(d)
    for features in (other.features, s.features.model_copy(update={"labels": ()})):
        to_record(warm.decide(features, s.live, s.at), "t")  # fills the evaluator's memo
    got = warm.decide(s.features, s.live, s.at)
    fresh = Decider(d).decide(s.features, s.live, s.at)
    assert (got.selected, got.cascade, got.ranking) == (fresh.selected, fresh.cascade,
                                                         fresh.ranking), describe(s)
    assert got.late_rejected == fresh.late_rejected, describe(s)
    # Record entries memoised per label tuple / live values are this request's own.
    assert to_record(got, "t") == to_record(fresh, "t"), describe(s)


def full_verdicts(s: Scenario) -> dict[str, dict[str, set[str]]]:
    """Offering id → top-level pointer → the set of truths the full-mode program derives."""
    program = compile_policy(s.policy, load_ruleset(), "full")
    facts = list(static_facts(program, s.catalog, s.policy)) + list(
        request_facts(program, s.catalog, s.policy, s.features, s.live, s.at))
    raw = run(program, facts)
    out: dict[str, dict[str, set[str]]] = {o.id: {} for o in s.catalog}
    for node in program.nodes:
        if not node.top:
            continue
        for o in s.catalog:
            out[o.id][node.pointer] = {v[0] for v in raw[node.pointer].get(o.id, [])}
    return out


def full_first_truths(s: Scenario) -> dict[str, dict[str, str | None]]:
    program = compile_policy(s.policy, load_ruleset(), "full")
    facts = list(static_facts(program, s.catalog, s.policy)) + list(
        request_facts(program, s.catalog, s.policy, s.features, s.live, s.at))
    raw = run(program, facts)
    out: dict[str, dict[str, str | None]] = {}
    for o in s.catalog:
        out[o.id] = {}
        for node in (n for n in program.nodes if n.top):
            verdicts = raw[node.pointer].get(o.id, [])
            out[o.id][node.pointer] = verdicts[0][0] if verdicts else None
    return out


@FAST
@given(scenarios())
def test_decide_matches_full_derivation(s: Scenario) -> None:
    _, decision = decide(s)
    first = full_first_truths(s)
    full_admissible = {oid for oid, per in first.items()
                       if all(t == "T" for t in per.values())}
    assert set(decision.admissible) == full_admissible, describe(s)


@FAST
@given(scenarios())
def test_full_derivation_matches_oracle_per_clause(s: Scenario) -> None:
    """Each top-level clause gets exactly one truth in full mode, and it is the oracle's."""
    got = full_verdicts(s)
    want = oracle_truths(s.policy, s.catalog, s.features, s.live, s.at)
    for oid, per in want.items():
        for ptr, truth in per.items():
            assert got[oid][ptr] == {truth}, (oid, ptr, got[oid][ptr], truth, describe(s))


@FAST
@given(scenarios())
def test_offerings_equal_on_what_a_clause_reads_share_one_derivation(s: Scenario) -> None:
    """Deriving each class of equal offerings once gives every offering the verdicts (truths,
    rules, witnesses and their order) deriving every offering gives it, in both modes."""
    for mode in ("partial", "full"):
        program = compile_policy(s.policy, load_ruleset(), mode)
        facts = list(static_facts(program, s.catalog, s.policy))
        if mode == "full":
            facts += request_facts(program, s.catalog, s.policy, s.features, s.live, s.at)
        shared = run(program, facts)
        every = run(program, facts, share_classes=False)
        assert shared == every, (mode, describe(s))


def test_embedded_catalog_shared_classes_equal_every_offering() -> None:
    """The lint benchmark's mixed 15-clause policy over 800 offerings of the embedded catalog
    (region, price, capability, `when`, `any`, `not` clauses): far fewer offerings derived,
    the same verdicts."""
    from benchmarks.test_policy_lint import FILTER_15, make_policy
    from router.catalog.offerings import default_catalog
    from router.engine.datalog import _Facts, _groups

    data = default_catalog().to_json()
    catalog = build_catalog({**data, "offerings": data["offerings"][:800]})
    policy = admit(make_policy(FILTER_15))
    program = compile_policy(policy, load_ruleset(), "partial")
    facts = list(static_facts(program, catalog, policy))
    store = _Facts.of(program, facts)
    derived = 0
    for group in _groups(program):
        rules = [r for r in program.rules if r.pointer in group.pointers]
        derived += len(store.classes(store.read_by(rules)))
    assert derived < 0.2 * 800 * len(_groups(program))
    assert run(program, facts) == run(program, facts, share_classes=False)


def test_values_of_different_types_are_not_one_class() -> None:
    """`1`, `1.0` and `True` are equal in Python; as catalog values they stay apart."""
    from router.engine.datalog import _Facts

    policy = admit(["policy", ["ev_zero"], ["filter", ["==", "context_window", 1]], ["rank"],
                    ["select", ["first"], ["cascade", 1]], ["mutate"], ["fallback"]])
    program = compile_policy(policy, load_ruleset(), "partial")
    facts: list[tuple[str, tuple[object, ...]]] = [
        ("offering", ("a",)), ("a_context_window", ("a", 1)),
        ("offering", ("b",)), ("a_context_window", ("b", 1.0)),
        ("offering", ("c",)), ("a_context_window", ("c", True))]
    store = _Facts.of(program, facts)
    assert len(store.classes(("a_context_window",))) == 3


@FAST
@given(scenarios())
def test_failed_all_equals_failed_one_by_one(s: Scenario) -> None:
    """The batched residual built-ins of a record's full ranking give every candidate the
    failed clauses, in order, that checking it alone gives."""
    from router.decide.evaluate import Context

    decider = Decider(derive(s.policy, s.catalog))
    ctx = Context(s.features, s.live, s.at)
    ids = [o.id for o, _ in decider.candidates]
    one_by_one = {oid: f for oid in ids if (f := decider.failed(oid, ctx))}
    assert decider.failed_all(ids, ctx) == one_by_one, describe(s)


@FAST
@given(st.data())
def test_each_batched_builtin_equals_its_one_offering_form(data: st.DataObject) -> None:
    """`router.decide.batch`: the indexes built once per decider (sorted windows, memoised
    needs, the ids probed together) strike exactly the offerings the one-offering check
    fails, for windows equal to, below and above the input and unknown ones; asked twice (the
    second answer from the memo) they answer the same."""
    from router.decide.batch import BUILTIN_BATCH
    from router.decide.evaluate import _BUILTIN_FAST
    from tests.strategies import catalogs, live_states, request_features

    assert set(BUILTIN_BATCH) == set(_BUILTIN_FAST)
    catalog = data.draw(catalogs())
    offerings = list(catalog.offerings)
    live = data.draw(live_states(catalog))
    for ptr, batch in BUILTIN_BATCH.items():
        index = batch(offerings)
        for _ in range(3):
            ctx = Context(data.draw(request_features()), live, AT)
            want = {o.id for o in offerings if not _BUILTIN_FAST[ptr](o, ctx)}
            assert set(index(ctx)) == want, ptr
            assert set(index(ctx)) == want, ptr


# -- 3. proofs check -----------------------------------------------------------------------------


@FAST
@given(scenarios())
def test_static_rejection_proofs_check(s: Scenario) -> None:
    d = derive(s.policy, s.catalog)
    for oid, pointers in d.rejected.items():
        offering = s.catalog.get(oid)
        assert offering is not None
        for ptr in pointers:
            problems = check_proof(proof_of(d, ptr, oid), offering, s.policy)
            assert problems == [], (oid, ptr, problems, describe(s))


# -- 4. replay -----------------------------------------------------------------------------------


@FAST
@given(scenarios())
def test_record_replays(s: Scenario) -> None:
    _, decision = decide(s)
    record = json.loads(json.dumps(to_record(decision, "t")))  # records travel as JSON
    replayed = replay(record, s.catalog)
    assert same_decision(record, replayed), describe(s)
    assert replayed.selected == decision.selected
    assert replayed.cascade == decision.cascade


# -- pinned examples -----------------------------------------------------------------------------


def catalog(*entries: dict[str, Any]) -> Catalog:
    base = {"model": "m", "provider": "p", "region": "us", "context_window": 100000,
            "max_output_tokens": 4096, "input_price": 1.0, "output_price": 2.0,
            "capabilities": ["tools"]}
    offerings = [{**base, **e} for e in entries]
    for o in offerings:
        for k in [k for k, v in o.items() if v is None]:
            del o[k]
    return build_catalog({"schema": 1, "source": "pinned", "offerings": offerings})


def pol(*clauses: Any, rank: list[Any] | None = None, cascade: int = 0,
        mutate: list[Any] | None = None) -> Any:
    return admit(["policy", ["ev_zero"], ["filter", *clauses], ["rank", *(rank or [])],
                  ["select", ["first"], ["cascade", cascade]], ["mutate", *(mutate or [])],
                  ["fallback"]])


FEATURES = RequestFeatures(input_tokens=1000, max_output_tokens=1000)


def both(policy: Any, cat: Catalog, features: RequestFeatures = FEATURES,
         live: LiveState | None = None, at: dt.datetime = AT) -> dict[str, Any]:
    """Decide with the router and the oracle; assert they agree; return the oracle's view."""
    s = Scenario(policy, cat, features, live or LiveState(), at)
    d, decision = decide(s)
    want = oracle_decide(policy, cat, features, s.live, at)
    assert list(decision.admissible) == want["admissible"]
    assert [r.keys for r in decision.ranking] == want["ranking_keys"]
    assert decision.selected == want["selected"]
    assert list(decision.cascade) == want["cascade"]
    got = router_failures(d, decision)
    assert set(got) == set(want["rejected"])
    return want


def test_unknown_under_not_rejects() -> None:
    cat = catalog({"id": "unpriced", "output_price": None}, {"id": "dear", "output_price": 20.0},
                  {"id": "cheap", "output_price": 5.0})
    out = both(pol(["not", ["<", "output_price", 10]]), cat)
    assert out["admissible"] == ["dear"]
    assert out["rejected"] == {"cheap": ["/2/1"], "unpriced": ["/2/1"]}


def test_any_with_unknown_and_true_is_true() -> None:
    cat = catalog({"id": "eu-unpriced", "region": "eu", "output_price": None},
                  {"id": "us-unpriced", "region": "us", "output_price": None})
    out = both(pol(["any", ["<", "output_price", 10], ["==", "region", "eu"]]), cat)
    assert out["admissible"] == ["eu-unpriced"]
    assert out["rejected"] == {"us-unpriced": ["/2/1"]}


def test_all_with_unknown_and_false_is_false_and_not_flips_it() -> None:
    cat = catalog({"id": "a", "region": "us", "output_price": None})
    out = both(pol(["not", ["all", ["<", "output_price", 10], ["==", "region", "eu"]]]), cat)
    assert out["admissible"] == ["a"]


def test_when_with_absent_label_holds() -> None:
    cat = catalog({"id": "us", "region": "us"}, {"id": "eu", "region": "eu"})
    policy = pol(["when", ["req", "pii"], ["in", "region", ["eu"]]])
    assert both(policy, cat)["admissible"] == ["eu", "us"]
    pii = RequestFeatures(input_tokens=1000, max_output_tokens=1000, labels=("pii",))
    out = both(policy, cat, pii)
    assert out["admissible"] == ["eu"]
    assert out["rejected"] == {"us": ["/2/1"]}


def test_when_feature_predicate_uses_each_offerings_max_tokens() -> None:
    # No max tokens in the request or the policy: `["req", "max_output_tokens"]` is each
    # offering's own limit (spec §3), so the same predicate differs per offering.
    cat = catalog({"id": "long", "max_output_tokens": 4096},
                  {"id": "short", "max_output_tokens": 50})
    features = RequestFeatures(input_tokens=10)
    out = both(pol(["when", ["<", ["req", "max_output_tokens"], 100], ["==", "region", "eu"]]),
               cat, features)
    assert out["admissible"] == ["long"]
    assert out["rejected"] == {"short": ["/2/1"]}


def test_est_cost_with_unknown_price_is_unknown() -> None:
    cat = catalog({"id": "priced", "input_price": 1.0, "output_price": 2.0},
                  {"id": "no-input-price", "input_price": None})
    out = both(pol(rank=[["asc", "est_cost"]]), cat)
    assert out["admissible"] == ["priced", "no-input-price"]
    assert out["ranking_keys"] == [((1000 * 1.0 + 1000 * 2.0) / 1e6,), (None,)]
    out = both(pol(["<=", "est_cost", 1]), cat)
    assert out["rejected"] == {"no-input-price": ["/2/1"]}


def test_est_cost_uses_default_then_own_max_tokens() -> None:
    cat = catalog({"id": "a", "max_output_tokens": 8192, "output_price": 1.0})
    no_max = RequestFeatures(input_tokens=0)
    out = both(pol(rank=[["asc", "est_cost"]], mutate=[["default", "max_tokens", 50]]), cat,
               no_max)
    assert out["ranking_keys"] == [((0 * 1.0 + 50 * 1.0) / 1e6,)]
    out = both(pol(rank=[["asc", "est_cost"]]), cat, no_max)
    assert out["ranking_keys"] == [((0 * 1.0 + 8192 * 1.0) / 1e6,)]


def test_ties_broken_by_id() -> None:
    cat = catalog({"id": "b", "input_price": 1.0}, {"id": "a", "input_price": 1.0},
                  {"id": "C", "input_price": 1.0}, {"id": "z", "input_price": 0.5})
    out = both(pol(rank=[["asc", "input_price"]], cascade=2), cat)
    assert out["admissible"] == ["z", "C", "a", "b"]
    assert out["selected"] == "z"
    assert out["cascade"] == ["C", "a"]


def test_desc_puts_unknown_last() -> None:
    cat = catalog({"id": "a"}, {"id": "b"}, {"id": "c"}, {"id": "d"})
    live = LiveState({"a": LiveValues(latency_ms=100.0), "c": LiveValues(latency_ms=900.0),
                      "d": LiveValues(latency_ms=None)}, consulted=True)
    out = both(pol(rank=[["desc", "latency_ms"]], cascade=3), cat, live=live)
    assert out["admissible"] == ["c", "a", "b", "d"]
    assert out["ranking_keys"] == [(900.0,), (100.0,), (None,), (None,)]


def test_deprecated_from_its_date_on() -> None:
    cat = catalog({"id": "today", "deprecation_date": AT.date().isoformat()},
                  {"id": "tomorrow", "deprecation_date": "2099-01-01"}, {"id": "undated"})
    out = both(pol(["==", "deprecated", False]), cat)
    assert out["admissible"] == ["tomorrow", "undated"]


def test_builtins_reject_unknowns() -> None:
    cat = catalog({"id": "no-ctx", "context_window": None},
                  {"id": "no-caps", "capabilities": None},
                  {"id": "no-max", "max_output_tokens": None},
                  {"id": "off"}, {"id": "ok"})
    live = LiveState({"off": LiveValues(status="circuit_open")}, consulted=True)
    features = RequestFeatures(input_tokens=10, needs=("tools",))
    out = both(pol(), cat, features, live)
    assert out["admissible"] == ["ok"]
    assert out["rejected"] == {
        "no-caps": ["builtin:capabilities_cover_needs"],
        "no-ctx": ["builtin:context_fits_input"],
        "no-max": ["builtin:max_output_positive"],
        "off": ["builtin:status_available"],
    }


# -- regressions found by the properties above ---------------------------------------------------


def test_true_false_and_question_marks_stay_strings() -> None:
    # pyDatalog's Term() turns the strings "True"/"False" into bools and "??" into a variable.
    cat = catalog({"id": "True", "model": "False", "tags": ["True"]}, {"id": "b"})
    assert both(pol(["==", "id", "True"]), cat)["admissible"] == ["True"]
    assert both(pol(["in", "model", ["False"]]), cat)["admissible"] == ["True"]
    assert both(pol(["has", "tags", "True"]), cat)["admissible"] == ["True"]
    ev = admit(["policy", ["ev", ["score", "??", {"m": 0.9}]], ["filter", ["ev", "??", ">=", 0.5]],
                ["rank"], ["select", ["first"]], ["mutate"], ["fallback"]])
    out = both(ev, cat)
    assert out["admissible"] == ["b"]
    assert out["rejected"] == {"True": ["/2/1"]}  # model "False" has no evidence


def test_membership_over_live_and_derived_attributes() -> None:
    cat = catalog({"id": "a", "deprecation_date": "2024-01-01"}, {"id": "b"})
    live = LiveState({"a": LiveValues(latency_ms=100.0)}, consulted=True)
    assert both(pol(["in", "deprecated", [True]]), cat, live=live)["admissible"] == ["a"]
    out = both(pol(["not_in", "latency_ms", [250.5]]), cat, live=live)
    assert out["admissible"] == ["a"]
    assert out["rejected"] == {"b": ["/2/1"]}  # latency unknown


def test_empty_evidence_table_is_unknown_not_a_crash() -> None:
    policy = admit(["policy", ["ev", ["score", "s", {}]], ["filter", ["ev", "s", ">=", 0]],
                    ["rank"], ["select", ["first"]], ["mutate"], ["fallback"]])
    out = both(policy, catalog({"id": "a"}))
    assert out["rejected"] == {"a": ["/2/1"]}


def test_duplicate_rank_keys_replay() -> None:
    cat = catalog({"id": "a"}, {"id": "b", "input_price": 0.5})
    s = Scenario(pol(rank=[["asc", "input_price"], ["asc", "input_price"]]), cat, FEATURES,
                 LiveState(), AT)
    _, decision = decide(s)
    record = json.loads(json.dumps(to_record(decision, "t")))
    assert same_decision(record, replay(record, cat))


def test_membership_over_undated_deprecated_has_a_checking_proof() -> None:
    # An undated offering is statically not deprecated (a_deprecated(o, false)); the proof of
    # its `in`/`not_in` verdict must check just like the `==` one does.
    cat = catalog({"id": "a"})
    for clause in (["in", "deprecated", [True]], ["not_in", "deprecated", [False]],
                   ["==", "deprecated", True]):
        policy = pol(clause)
        d = derive(policy, cat)
        assert d.rejected == {"a": ("/2/1",)}
        offering = cat.get("a")
        assert offering is not None
        assert check_proof(proof_of(d, "/2/1", "a"), offering, policy) == [], clause


def test_full_mode_empty_request_labels_with_a_label_predicate() -> None:
    # No request labels: `has_all capabilities [req labels]` is vacuously true. A label
    # predicate elsewhere negates fe_labels; whatever makes that negation legal in the engine
    # must not add an element to the request's label set.
    cat = catalog({"id": "a"})
    policy = pol(["has_all", "capabilities", ["req", "labels"]],
                 ["when", ["req", "eu"], ["==", "region", "us"]])
    s = Scenario(policy, cat, RequestFeatures(input_tokens=1), LiveState(), AT)
    assert both(policy, cat, s.features)["admissible"] == ["a"]
    assert full_verdicts(s)["a"]["/2/1"] == {"T"}


# -- est_cost ranking: the cost-table path == the general ranking -------------------------------

COST_MUTATIONS = [[], [["clamp_max_tokens"]], [["set", "max_tokens", 64]],
                  [["default", "max_tokens", 4096]], [["clamp_max_tokens"], ["default",
                                                                               "max_tokens", 10]]]


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(scenarios(), st.sampled_from(["asc", "desc"]), st.sampled_from(COST_MUTATIONS),
       st.integers(min_value=0, max_value=3))
def test_est_cost_order_from_cost_tables_equals_the_general_ranking(
        s: Scenario, direction: str, mutations: list[Any], repeat: int) -> None:
    """A policy ranked by `est_cost` alone orders from per-view cost tables (ties broken by a
    stable sort over ids); the general ranking (`Decider.order`, `facts.cost`, tuple keys)
    must give the same order and values, for every ask and clamp, and a table reused for
    later requests must too."""
    term: list[Any] = ["policy", ["ev_zero"], ["filter"], ["rank", [direction, "est_cost"]],
                       ["select", ["first"], ["cascade", 2]], ["mutate", *mutations],
                       ["fallback", ["next"]]]
    decider = Decider(derive(admit(term), s.catalog))
    assert decider.only_est_cost
    for features in [s.features] * (1 + repeat) + [
            s.features.model_copy(update={"input_tokens": s.features.input_tokens * 7 + 1})]:
        ctx = Context(features, s.live, s.at)
        view = decider.view(features.labels)
        general = [(r.offering_id, r.keys) for r in decider.order(view.offerings, ctx)]
        assert list(decider.ordered(ctx, view)) == general, describe(s)


def test_a_cost_order_reads_as_the_list_of_its_pairs() -> None:
    """`CostOrder` (decide's est_cost order, its pairs made as read) indexes, slices,
    iterates and measures as the list it stands for."""
    ids = ["a", "b", "c"]
    order = CostOrder(ids, [0.3, 0.1, 0.2], [1, 2, 0], ["x", "y"])
    pairs = [("b", (0.1,)), ("c", (0.2,)), ("a", (0.3,)), ("x", (None,)), ("y", (None,))]
    assert list(order) == list(order) == order.pairs() == pairs
    assert len(order) == 5
    assert [order[i] for i in range(5)] == pairs
    assert [order[i] for i in range(-5, 0)] == pairs
    assert order[1:] == pairs[1:] and order[3:] == pairs[3:] and order[::2] == pairs[::2]
    for bad in (5, -6):
        with pytest.raises(IndexError):
            order[bad]
    assert list(CostOrder([], [], [], [])) == [] and len(CostOrder([], [], [], [])) == 0
