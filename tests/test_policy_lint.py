"""`policy lint`: one policy per finding over a small real catalog, a clean policy, the
embedded catalog, and the command line's exit codes (0 clean, 1 findings, 2 refused)."""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router.catalog.offerings import Catalog, build_catalog, default_catalog
from router.cli import main as cli_main
from router.cli.lint import add_parser
from router.decide.evaluate import Context, Evaluator
from router.engine.derive import Derivation, derive
from router.explain.lint import Finding, lint, lint_derivation
from router.live.state import LiveState
from router.policy.admit import admit
from router.policy.terms import When
from router.policy.truth import Truth
from router.request.features import RequestFeatures

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
AT = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


def offering(oid: str, provider: str, region: str, ctx: int | None, max_out: int,
             prices: tuple[float, float], tags: list[str], **extra: Any) -> dict[str, Any]:
    o: dict[str, Any] = {"id": oid, "model": oid.rsplit("/", 1)[-1], "provider": provider,
                         "region": region, "max_output_tokens": max_out,
                         "input_price": prices[0], "output_price": prices[1],
                         "capabilities": ["streaming", "tools"], "tags": tags, **extra}
    if ctx is not None:
        o["context_window"] = ctx
    return o


CATALOG_DOC: dict[str, Any] = {"schema": 1, "source": "lint tests", "offerings": [
    offering("openai/gpt-a", "openai", "global", 128000, 16000, (1.0, 4.0), ["approved"],
             cached_input_price=0.5),
    offering("openai/gpt-b", "openai", "global", 200000, 32000, (2.5, 10.0),
             ["approved", "zdr"]),
    offering("anthropic/claude-c", "anthropic", "global", 200000, 8000, (3.0, 15.0), ["zdr"]),
    offering("bedrock/eu/claude-c", "bedrock", "eu", 200000, 8000, (3.5, 16.0), ["approved"]),
    offering("mistral/eu/small", "mistral", "eu", 32000, 4000, (0.2, 0.6), []),
    # No context window: the built-in clauses reject it whatever the policy says.
    offering("nowindow/x", "nowindow", "us", None, 4000, (0.1, 0.1), ["approved"]),
]}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return build_catalog(CATALOG_DOC)


def policy(*clauses: Any, rank: list[Any] | None = None, cascade: int = 0,
           evidence: list[Any] | None = None, mutate: list[Any] | None = None) -> list[Any]:
    select: list[Any] = ["select", ["first"]] + ([["cascade", cascade]] if cascade else [])
    return ["policy", evidence or ["ev_zero"], ["filter", *clauses], ["rank", *(rank or [])],
            select, ["mutate", *(mutate or [])], ["fallback"]]


def findings(catalog: Catalog, pol: list[Any]) -> list[Finding]:
    return lint(admit(pol), catalog, at=AT)


def codes(catalog: Catalog, pol: list[Any]) -> list[tuple[str, str]]:
    return [(f.code, f.pointer) for f in findings(catalog, pol)]


def one(catalog: Catalog, pol: list[Any], code: str) -> Finding:
    [found] = [f for f in findings(catalog, pol) if f.code == code]
    return found


CLEAN = policy([">=", "context_window", 150000], ["has", "tags", "approved"],
               ["when", ["req", "pii"], ["in", "region", ["eu"]]],
               rank=[["asc", "input_price"]], cascade=1)


# -- the analysis ----------------------------------------------------------------------------


def test_clean_policy_has_no_findings(catalog: Catalog) -> None:
    assert findings(catalog, CLEAN) == []


def test_rejects_all(catalog: Catalog) -> None:
    pol = policy(["has", "tags", "approved"], ["<", "context_window", 1000])
    assert codes(catalog, pol) == [("lint.admits_nothing", "/2"), ("lint.rejects_all", "/2/2")]
    f = one(catalog, pol, "lint.rejects_all")
    assert "rejects every offering in this catalog (all 5)" in f.message
    assert "e.g. `anthropic/claude-c`: context_window 200000 >= 1000" in f.message


def test_rejects_all_when_the_condition_holds(catalog: Catalog) -> None:
    pol = policy(["when", ["req", "pii"], ["in", "region", ["us"]]])
    assert codes(catalog, pol) == [("lint.rejects_all", "/2/1/2")]
    f = one(catalog, pol, "lint.rejects_all")
    assert f.message.startswith("when request label `pii` present, `[\"in\", \"region\"")


def test_admits_all_is_redundant_here(catalog: Catalog) -> None:
    # `nowindow/x` is not counted: the built-in clauses reject it (no context window).
    pol = policy([">=", "context_window", 32000], ["has", "tags", "approved"])
    assert codes(catalog, pol) == [("lint.admits_all", "/2/1")]
    f = one(catalog, pol, "lint.admits_all")
    assert "admits every offering in this catalog (all 5): redundant here" in f.message


def test_a_when_whose_clause_admits_all_is_redundant(catalog: Catalog) -> None:
    pol = policy(["has", "tags", "zdr"], ["when", ["req", "pii"], ["<=", "input_price", 10]])
    assert codes(catalog, pol) == [("lint.admits_all", "/2/2")]


def test_contradiction(catalog: Catalog) -> None:
    pol = policy(["in", "region", ["eu"]], ["==", "provider", "openai"])
    assert codes(catalog, pol) == [("lint.admits_nothing", "/2"),
                                   ("lint.contradiction", "/2/2")]
    f = one(catalog, pol, "lint.contradiction")
    assert "contradicts /2/1" in f.message and "over this catalog" in f.message


def test_contradiction_under_a_request_condition(catalog: Catalog) -> None:
    pol = policy(["==", "provider", "openai"], ["when", ["req", "pii"], ["in", "region", ["eu"]]])
    assert codes(catalog, pol) == [("lint.contradiction", "/2/2")]
    f = one(catalog, pol, "lint.contradiction")
    assert f.message.startswith('when request label `pii` present, `["in", "region", ["eu"]]` '
                                'contradicts /2/1 `["==", "provider", "openai"]` over this catalog')
    assert "for those requests" in (f.hint or "")


def test_contradicting_conditions_are_not_a_contradiction(catalog: Catalog) -> None:
    """Nothing passes both clauses, but no request makes both apply."""
    pol = policy(["when", ["req", "pii"], ["in", "region", ["eu"]]],
                 ["when", ["not", ["req", "pii"]], ["in", "region", ["global"]]])
    assert codes(catalog, pol) == []


def test_implied_over_this_catalog(catalog: Catalog) -> None:
    # Every `zdr` offering here has a 200k window: the window clause adds nothing.
    pol = policy([">=", "context_window", 150000], ["has", "tags", "zdr"])
    assert codes(catalog, pol) == [("lint.implied", "/2/1")]
    f = one(catalog, pol, "lint.implied")
    assert "is implied by /2/2" in f.message and "over this catalog" in f.message


def test_equivalent_clauses_are_reported_once_at_the_later(catalog: Catalog) -> None:
    pol = policy(["has", "tags", "zdr"], ["in", "id", ["openai/gpt-b", "anthropic/claude-c"]])
    assert codes(catalog, pol) == [("lint.implied", "/2/2")]
    assert "is implied by /2/1" in one(catalog, pol, "lint.implied").message


def test_a_clause_implied_by_a_narrower_one(catalog: Catalog) -> None:
    pol = policy(["has", "tags", "zdr"], [">=", "input_price", 2.5], ["<=", "input_price", 3.2])
    by_pointer = {f.pointer: f.message for f in findings(catalog, pol)}
    assert sorted(by_pointer) == ["/2/2", "/2/3"]
    assert "is implied by /2/1" in by_pointer["/2/2"]
    assert "is implied by /2/1" in by_pointer["/2/3"]


def test_unknown_tag_suggests_the_catalogs_value(catalog: Catalog) -> None:
    pol = policy(["has", "tags", "aproved"])
    f = one(catalog, pol, "lint.unknown_value")
    assert (f.pointer, f.message, f.hint) == (
        "/2/1/2", "no offering in this catalog has tag `aproved`", "did you mean `approved`?")
    assert codes(catalog, pol) == [("lint.admits_nothing", "/2"), ("lint.rejects_all", "/2/1"),
                                   ("lint.unknown_value", "/2/1/2")]


def test_unknown_provider_region_and_evidence_model(catalog: Catalog) -> None:
    pol = policy(["any", ["in", "provider", ["opnai", "anthropic"]], ["==", "region", "mars"]],
                 evidence=["ev", ["score", "pass", {"claude-c": 0.9, "gpt-bb": 0.5}]])
    found = {f.pointer: f for f in findings(catalog, pol) if f.code == "lint.unknown_value"}
    assert sorted(found) == ["/1/1/2/gpt-bb", "/2/1/1/2/0", "/2/1/2/2"]
    assert found["/2/1/1/2/0"].hint == "did you mean `openai`?"
    assert found["/2/1/2/2"].message == "no offering in this catalog has region `mars`"
    assert found["/1/1/2/gpt-bb"].hint == "did you mean `gpt-b`?"


def test_when_unsatisfiable(catalog: Catalog) -> None:
    pol = policy(["when", ["<", ["req", "input_tokens"], 0], ["has", "tags", "zdr"]])
    assert codes(catalog, pol) == [("lint.when_unsatisfiable", "/2/1/1")]
    f = one(catalog, pol, "lint.when_unsatisfiable")
    assert "`input_tokens` is a whole number ≥ 0" in f.message
    assert "the clause at /2/1/2 never applies" in f.message


def test_when_always_true(catalog: Catalog) -> None:
    pol = policy(["when", [">", ["req", "input_tokens"], -1], ["has", "tags", "zdr"]])
    assert codes(catalog, pol) == [("lint.when_always_true", "/2/1/1")]


def test_when_unsatisfiable_with_its_enclosing_when(catalog: Catalog) -> None:
    pol = policy(["when", ["req", "pii"], ["when", ["not", ["req", "pii"]],
                                           ["has", "tags", "zdr"]]])
    assert codes(catalog, pol) == [("lint.when_unsatisfiable", "/2/1/2/1")]
    assert "enclosing" in one(catalog, pol, "lint.when_unsatisfiable").message


def test_when_over_a_max_output_the_policy_sets(catalog: Catalog) -> None:
    pol = policy(["when", [">", ["req", "max_output_tokens"], 2000], ["has", "tags", "zdr"]],
                 mutate=[["set", "max_tokens", 1000]])
    f = one(catalog, pol, "lint.when_unsatisfiable")
    assert "`max_output_tokens` is always 1000 (the policy sets it)" in f.message


def test_a_label_no_request_can_carry(catalog: Catalog) -> None:
    pol = policy(["when", ["req", "has space"], ["has", "tags", "zdr"]])
    assert codes(catalog, pol) == [("lint.when_unsatisfiable", "/2/1/1")]


def test_dead_rank_key_all_equal(catalog: Catalog) -> None:
    pol = policy([">=", "context_window", 200000], rank=[["asc", "context_window"]])
    assert codes(catalog, pol) == [("lint.dead_rank_key", "/3/1")]
    f = one(catalog, pol, "lint.dead_rank_key")
    assert "among the 3 offerings admissible for a representative request" in f.message
    assert "every one has the same value (200000)" in f.message


def test_dead_rank_key_after_a_deciding_key(catalog: Catalog) -> None:
    pol = policy(rank=[["asc", "input_price"], ["desc", "context_window"]])
    assert codes(catalog, pol) == [("lint.dead_rank_key", "/3/2")]
    assert "the keys before it already order every one" in one(
        catalog, pol, "lint.dead_rank_key").message


def test_dead_rank_key_among_ties(catalog: Catalog) -> None:
    # claude-c and bedrock/eu/claude-c tie on max output (8000) and both have a 200k window.
    pol = policy(rank=[["asc", "max_output_tokens"], ["asc", "context_window"]])
    assert codes(catalog, pol) == [("lint.dead_rank_key", "/3/2")]
    assert "those tied on the keys before it have the same `context_window`" in one(
        catalog, pol, "lint.dead_rank_key").message


def test_est_cost_is_judged_for_a_representative_request(catalog: Catalog) -> None:
    # For one short message the output bound dominates: gpt-a and gpt-b never tie on it.
    pol = policy(rank=[["asc", "est_cost"], ["asc", "input_price"]])
    f = one(catalog, pol, "lint.dead_rank_key")
    assert f.pointer == "/3/2" and "(one short user message)" in f.message


def test_rank_key_mostly_unknown(catalog: Catalog) -> None:
    pol = policy(rank=[["asc", "cached_input_price"]])
    assert codes(catalog, pol) == [("lint.rank_key_mostly_unknown", "/3/1")]
    f = one(catalog, pol, "lint.rank_key_mostly_unknown")
    assert "unknown for 4 of the 5 offerings admissible" in f.message and "(80 %)" in f.message


def test_evidence_rank_key_mostly_unknown(catalog: Catalog) -> None:
    pol = policy(rank=[["desc", ["ev", "pass"]]],
                 evidence=["ev", ["score", "pass", {"small": 0.4}]])
    f = one(catalog, pol, "lint.rank_key_mostly_unknown")
    assert f.hint == "give evidence for more models in metric `pass`"


def test_cascade_too_long(catalog: Catalog) -> None:
    pol = policy([">=", "context_window", 200000], cascade=3)
    assert codes(catalog, pol) == [("lint.cascade_too_long", "/4/2")]
    f = one(catalog, pol, "lint.cascade_too_long")
    assert "at most 3 can be admitted" in f.message and f.hint == 'use ["cascade", 2]'


def test_admits_nothing_when_the_built_ins_reject_everything() -> None:
    only = build_catalog({"schema": 1, "source": "t", "offerings": [
        offering("nowindow/x", "nowindow", "us", None, 4000, (0.1, 0.1), [])]})
    assert codes(only, policy(cascade=1)) == [("lint.admits_nothing", "/2")]


def test_findings_are_lines_and_json(catalog: Catalog) -> None:
    f = one(catalog, policy(["has", "tags", "aproved"]), "lint.unknown_value")
    assert f.line() == ("lint.unknown_value at /2/1/2: no offering in this catalog has tag "
                        "`aproved` (did you mean `approved`?)")
    assert f.model_dump() == {"code": "lint.unknown_value", "pointer": "/2/1/2",
                           "message": "no offering in this catalog has tag `aproved`",
                           "hint": "did you mean `approved`?"}


def test_the_example_policy_is_clean_over_the_embedded_catalog() -> None:
    pol = json.loads((EXAMPLES / "support-tickets.policy.json").read_text("utf-8"))
    assert lint(admit(pol), default_catalog(), at=AT) == []


# -- soundness: what lint claims holds for every request ---------------------------------

POOL: list[Any] = [
    [">=", "context_window", 150000], ["<", "context_window", 100000],
    ["has", "tags", "approved"], ["has", "tags", "zdr"], ["in", "region", ["eu"]],
    ["==", "provider", "openai"], ["<=", "input_price", 3.0], [">", "output_price", 5.0],
    ["<=", "est_cost", 0.05], ["<=", "cached_input_price", 1.0],
    ["when", ["req", "pii"], ["in", "region", ["eu"]]],
    ["when", [">", ["req", "input_tokens"], 1000], [">=", "context_window", 200000]],
    ["any", ["has", "tags", "zdr"], ["<", "input_price", 1.0]],
    ["not", ["==", "provider", "mistral"]], [">=", "context_window", ["req", "input_tokens"]],
    ["<", "context_window", 1000], [">", "max_output_tokens", 100],
    ["when", ["req", "pii"], ["in", "region", ["us"]]],
]
REQUESTS = [RequestFeatures(input_tokens=n, max_output_tokens=m, labels=labels)
            for n, m, labels in itertools.product((10, 5000, 150000), (None, 1000),
                                                  ((), ("pii",)))]
_NAMED = re.compile(r"(?:contradicts|implied by) (/[0-9/]+)")


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(range(len(POOL))), min_size=1, max_size=4, unique=True))
def test_findings_hold_for_every_request(catalog: Catalog, picks: list[int]) -> None:
    """rejects_all, admits_all, contradiction and implied, checked against `decide`'s final
    truths for a grid of requests, on every offering the built-in clauses let through."""
    d = derive(admit(policy(*(POOL[i] for i in picks))), catalog)
    ev = Evaluator(d)
    judged = [o for o in catalog if o.context_window is not None]
    contexts = [Context(f, LiveState.not_consulted(), AT) for f in REQUESTS]

    def passes(pointer: str) -> set[tuple[str, int]]:
        return {(o.id, k) for o in judged for k, ctx in enumerate(contexts)
                if ev.truth(pointer, o, ctx) == Truth.T}

    every = {(o.id, k) for o in judged for k in range(len(contexts))}
    for f in lint_derivation(d, at=AT):
        named = _NAMED.search(f.message)
        if f.code == "lint.rejects_all":
            assert passes(f.pointer) == set(), f.line()
        elif f.code == "lint.admits_all":
            assert passes(f.pointer) == every, f.line()
        elif f.code == "lint.contradiction":
            assert named is not None
            assert passes(_body(d, f.pointer)) & passes(named.group(1)) == set(), f.line()
        elif f.code == "lint.implied":
            assert named is not None
            assert passes(named.group(1)) <= passes(f.pointer), f.line()


def _body(d: Derivation, pointer: str) -> str:
    """A top-level `when`'s clause (what a contradiction judges), else the clause itself."""
    node = d.program.node(pointer)
    return node.children[1] if isinstance(node.clause, When) else pointer


# -- the command line ------------------------------------------------------------------------


def own_parser() -> argparse.ArgumentParser:
    """`policy lint` through `add_parser`, as `router.cli.main` wires it."""
    p = argparse.ArgumentParser(prog="unhardcoded")
    sub = p.add_subparsers(dest="command", required=True)
    pol_sub = sub.add_parser("policy").add_subparsers(dest="policy_command", required=True)

    def catalog_opt(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--catalog")
        sp.add_argument("--overlay", action="append", default=[])

    add_parser(pol_sub, catalog_opt)
    return p


def run_own(argv: list[str]) -> int:
    args = own_parser().parse_args(argv)
    code: int = args.fn(args)
    return code


@pytest.fixture()
def files(tmp_path: Path) -> dict[str, str]:
    out = {"catalog": tmp_path / "catalog.json", "clean": tmp_path / "clean.json",
           "typo": tmp_path / "typo.json", "bad": tmp_path / "bad.json",
           "overlay": tmp_path / "ops.json"}
    out["catalog"].write_text(json.dumps(CATALOG_DOC), "utf-8")
    out["clean"].write_text(json.dumps(CLEAN), "utf-8")
    out["typo"].write_text(json.dumps(policy(["has", "tags", "aproved"])), "utf-8")
    out["bad"].write_text(json.dumps(policy([">=", "context", 1])), "utf-8")
    out["overlay"].write_text(json.dumps({"schema": 1, "disable": ["openai/gpt-b"]}), "utf-8")
    return {k: str(v) for k, v in out.items()}


@pytest.mark.parametrize("run", [run_own, cli_main.main], ids=["add_parser", "main"])
def test_cli_exit_codes(run: Any, files: dict[str, str],
                        capsys: pytest.CaptureFixture[str]) -> None:
    cat = ["--catalog", files["catalog"]]
    assert run(["policy", "lint", files["clean"], *cat]) == 0
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("no findings: policy ")

    assert run(["policy", "lint", files["typo"], *cat]) == 1
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == 3
    assert lines[0] == (
        "lint.admits_nothing at /2: no offering in the catalog passes every clause (5 judged): "
        "the policy admits nothing, whatever the request (see the other findings; "
        "`unhardcoded route` names each rejection)")
    assert "lint.unknown_value at /2/1/2: no offering in this catalog has tag `aproved` " \
           "(did you mean `approved`?)" in out.splitlines()
    assert err.startswith("3 findings: ")

    assert run(["policy", "lint", files["typo"], *cat, "--json"]) == 1
    out, _ = capsys.readouterr()
    assert [(f["code"], f["pointer"]) for f in json.loads(out)] == [
        ("lint.admits_nothing", "/2"), ("lint.rejects_all", "/2/1"),
        ("lint.unknown_value", "/2/1/2")]

    assert run(["policy", "lint", files["bad"], *cat]) == 2
    _, err = capsys.readouterr()
    refusal = json.loads(err)
    assert refusal["refused"] == "policy"
    assert refusal["problems"][0]["code"] == "policy.unknown_attribute"

    missing = files["catalog"] + ".missing"
    assert run(["policy", "lint", files["clean"], "--catalog", missing]) == 2
    _, err = capsys.readouterr()
    assert json.loads(err)["problems"][0]["code"].startswith("catalog.")

    assert run(["policy", "lint", files["clean"] + ".missing", *cat]) == 2
    _, err = capsys.readouterr()
    assert json.loads(err)["problems"][0]["code"] == "policy.unreadable"


@pytest.mark.parametrize("run", [run_own, cli_main.main], ids=["add_parser", "main"])
def test_cli_overlay_changes_the_catalog_linted(run: Any, files: dict[str, str],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """With `openai/gpt-b` disabled, one 200k offering with `approved` is left: cascade 1 is
    too long."""
    args = ["policy", "lint", files["clean"], "--catalog", files["catalog"], "--json"]
    assert run(args) == 0
    capsys.readouterr()
    assert run([*args, "--overlay", files["overlay"]]) == 1
    out, _ = capsys.readouterr()
    assert [f["code"] for f in json.loads(out)] == ["lint.cascade_too_long"]
