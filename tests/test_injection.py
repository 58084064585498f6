"""Injection (design: pyDatalog safety): offering ids, models, regions, tags and policy strings
that look like Python or Datalog are inert data. Decisions follow plain data semantics, nothing
is executed, and `pyDatalog.load` (which `exec()`s text) is never called."""

from __future__ import annotations

import glob
import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pyDatalog.pyDatalog
import pyDatalog.pyParser
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router.catalog.offerings import Catalog, build_catalog
from router.common.problems import CatalogError, RequestError
from router.engine import datalog
from router.engine.compile import compile_policy, load_ruleset
from router.engine.facts import request_facts, static_facts
from router.facade import Router
from router.live.state import LiveState
from router.request.features import RequestFeatures

PWNED = "/tmp/PWNED_"
PAYLOADS = [
    "eu')\n__import__('os').system('touch /tmp/PWNED_a')\n#",
    "__import__('os').system('touch /tmp/PWNED_b')",
    '"); __import__("os").system("touch /tmp/PWNED_c"); ("',
    "' + str(__import__('os').system('touch /tmp/PWNED_d')) + '",
    "__import__('builtins').open('/tmp/PWNED_e', 'w')",
    "X') <= (Y",
    "a(X) <= b(X)",
    "~rejected(O)",
    "X == X",
    "_",
    "~",
    "&",
    "X",
    "O",
    "Eu",
    "\n",
    "'",
    '"',
    "\\",
    "??",
]
# Capitalised names (pyDatalog variables when written as text) incl. the engine's own
# variable names (O, T, R, W, X, Y, E, M, S) and truth values (T, F, U, R).
CAPITALS = ["O", "T", "R", "W", "X", "Y", "E", "M", "S", "F", "U", "N", "Eu"]
REQUEST = {"messages": [{"role": "user", "content": "hello"}]}


def offering(oid: str, model: str, region: str, tags: list[str], price: float = 1.0,
             **extra: Any) -> dict[str, Any]:
    return {
        "id": oid, "model": model, "provider": "openai", "region": region,
        "context_window": 100_000, "max_output_tokens": 1_000,
        "input_price": price, "output_price": 2 * price,
        "capabilities": ["tools", "streaming"], "tags": tags, **extra,
    }


ENTRIES: list[dict[str, Any]] = [
    *(offering(name, name, name.lower(), [name], price=1 + i / 10)
      for i, name in enumerate(CAPITALS)),
    offering("p/X", "X", "eu", ["X", "approved"]),
    offering("p/x", "x", "eu", ["x"]),
    offering("p/Eu", "Eu", "eu", []),
    offering("p/eu", "eu", "us", ["eu"]),
    offering("a.b:c@d/e+f-g_h", "m:1@2/3+4-5_6.7", "x_y-z", ["a:b", "c.d", "e-f", "g_h"]),
    offering("0", "0", "0", ["0"]),
    offering("True", "True", "true", ["True"]),
    offering("False", "False", "false", ["False"]),
    offering("None", "None", "none", ["None"]),
]


@pytest.fixture(autouse=True)
def no_exec(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail if anything loads Datalog text, and if any payload ran."""

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"pyDatalog.load called with {args!r}")

    monkeypatch.setattr(pyDatalog.pyDatalog, "load", forbidden)
    monkeypatch.setattr(pyDatalog.pyParser, "load", forbidden)
    before = set(glob.glob(PWNED + "*"))
    yield
    created = set(glob.glob(PWNED + "*")) - before
    assert not created, f"a payload was executed: {sorted(created)}"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return build_catalog({"schema": 1, "source": "injection", "offerings": ENTRIES})


@pytest.fixture
def router(catalog: Catalog) -> Iterator[Router]:
    r = Router(catalog)
    yield r
    r.close()


def policy(*clauses: Any, ev: Any = None, rank: Any = None, mutate: Any = None) -> list[Any]:
    return ["policy", ev or ["ev_zero"], ["filter", *clauses], rank or ["rank"],
            ["select", ["first"], ["cascade", 16]], mutate or ["mutate"], ["fallback"]]


def admitted(router: Router, pol: list[Any], request: Any = None) -> list[str]:
    return list(router.route(pol, request or REQUEST).decision.admissible)


def expect(pred: Callable[[dict[str, Any]], bool]) -> list[str]:
    """Plain data semantics: ids (ranked by id) of the entries the predicate keeps."""
    return sorted(e["id"] for e in ENTRIES if pred(e))


def test_load_is_really_patched() -> None:
    with pytest.raises(AssertionError):
        pyDatalog.pyDatalog.load("p(X) <= q(X)")
    with pytest.raises(AssertionError):
        pyDatalog.pyParser.load("p(X) <= q(X)")


def test_catalog_keeps_the_odd_values_verbatim(catalog: Catalog) -> None:
    assert len(catalog) == len(ENTRIES)
    x = catalog.get("X")
    assert x is not None and x.model == "X" and x.region == "x" and x.tags == ("X",)
    odd = catalog.get("a.b:c@d/e+f-g_h")
    assert odd is not None and odd.model == "m:1@2/3+4-5_6.7" and odd.region == "x_y-z"


def test_empty_filter_admits_everything(router: Router) -> None:
    assert admitted(router, policy()) == expect(lambda e: True)


@pytest.mark.parametrize("name", [*CAPITALS, "x", "eu", "0", "True", "False", "None"])
def test_capitalised_model_is_a_constant(router: Router, name: str) -> None:
    got = admitted(router, policy(["==", "model", name]))
    assert got == expect(lambda e: e["model"] == name)
    assert got, "exactly the offerings whose model is literally the name"
    assert admitted(router, policy(["!=", "model", name])) == expect(
        lambda e: e["model"] != name)


@pytest.mark.parametrize("name", CAPITALS)
def test_capitalised_id_region_and_tag_are_constants(router: Router, name: str) -> None:
    assert admitted(router, policy(["==", "id", name])) == [name]
    assert admitted(router, policy(["in", "region", [name.lower()]])) == expect(
        lambda e: e["region"] == name.lower())
    assert admitted(router, policy(["has", "tags", name])) == expect(
        lambda e: name in e["tags"])


def test_region_is_case_sensitive(router: Router) -> None:
    assert admitted(router, policy(["==", "region", "Eu"])) == []
    assert admitted(router, policy(["in", "region", ["EU", "Eu", "X"]])) == []
    assert admitted(router, policy(["==", "region", "eu"])) == expect(
        lambda e: e["region"] == "eu")


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("attr", ["region", "model", "id", "provider"])
def test_payloads_in_in_lists_and_equality(router: Router, payload: str, attr: str) -> None:
    def matches(e: dict[str, Any]) -> bool:
        return bool(e[attr] == payload)

    assert admitted(router, policy(["in", attr, [payload]])) == expect(matches)
    assert admitted(router, policy(["not_in", attr, [payload, "zzz"]])) == expect(
        lambda e: not matches(e))
    assert admitted(router, policy(["==", attr, payload])) == expect(matches)
    assert admitted(router, policy(["!=", attr, payload])) == expect(lambda e: not matches(e))


def test_spec_design_payload_region(router: Router) -> None:
    payload = "eu')\n__import__('os').system('touch /tmp/PWNED')\n#"
    assert admitted(router, policy(["in", "region", [payload]])) == []
    assert admitted(router, policy(["in", "region", ["eu", payload]])) == expect(
        lambda e: e["region"] == "eu")


@pytest.mark.parametrize("payload", PAYLOADS)
def test_payloads_in_set_clauses(router: Router, payload: str) -> None:
    assert admitted(router, policy(["has", "tags", payload])) == expect(
        lambda e: payload in e["tags"])
    assert admitted(router, policy(["has_any", "tags", [payload, "approved"]])) == expect(
        lambda e: payload in e["tags"] or "approved" in e["tags"])
    assert admitted(router, policy(["has_none", "tags", [payload]])) == expect(
        lambda e: payload not in e["tags"])
    assert admitted(router, policy(["has_all", "tags", [payload, "X"]])) == expect(
        lambda e: payload in e["tags"] and "X" in e["tags"])


def test_odd_characters_in_set_and_scalar_values(router: Router) -> None:
    assert admitted(router, policy(["has_all", "tags", ["a:b", "c.d", "e-f", "g_h"]])) == [
        "a.b:c@d/e+f-g_h"]
    assert admitted(router, policy(["==", "model", "m:1@2/3+4-5_6.7"])) == ["a.b:c@d/e+f-g_h"]
    assert admitted(router, policy(["==", "region", "x_y-z"])) == ["a.b:c@d/e+f-g_h"]


def test_strings_that_look_like_other_types(router: Router) -> None:
    assert admitted(router, policy(["==", "model", "0"])) == ["0"]
    assert admitted(router, policy(["==", "model", "None"])) == ["None"]
    assert admitted(router, policy(["==", "model", "True"])) == ["True"]
    assert admitted(router, policy(["==", "model", "False"])) == ["False"]
    assert admitted(router, policy(["==", "id", "True"])) == ["True"]
    assert admitted(router, policy(["has", "tags", "True"])) == ["True"]
    assert "True" not in admitted(router, policy(["!=", "model", "True"]))
    assert "False" not in admitted(router, policy(["not_in", "region", ["false"]]))


def test_nested_clauses_with_capitals(router: Router) -> None:
    got = admitted(router, policy(["any", ["==", "model", "X"], ["==", "model", "O"]]))
    assert got == expect(lambda e: e["model"] in ("X", "O"))
    got = admitted(router, policy(["not", ["in", "model", ["X", "O", "_"]]]))
    assert got == expect(lambda e: e["model"] not in ("X", "O", "_"))
    got = admitted(router, policy(["all", ["==", "region", "eu"], ["has", "tags", "X"]]))
    assert got == ["p/X"]


@pytest.mark.parametrize("metric", ["acc", "X", "O", "True", "False", "??", *PAYLOADS[:5]])
def test_payloads_in_evidence_metric_and_model_keys(router: Router, metric: str) -> None:
    scores: dict[str, float] = {
        "X": 0.9, "O": 0.2, "T": 0.7, "eu": 0.6, "x": 0.5,
        PAYLOADS[0]: 1.0, PAYLOADS[1]: 1.0, "_": 1.0, "M": 0.95,
    }
    ev = ["ev", ["score", metric, scores]]
    got = admitted(router, policy(["ev", metric, ">=", 0.5], ev=ev))
    assert got == expect(lambda e: scores.get(e["model"], -1.0) >= 0.5)
    assert got == ["M", "T", "X", "p/X", "p/eu", "p/x"]
    ranked = admitted(router, policy(ev=ev, rank=["rank", ["desc", ["ev", metric]]]))
    with_score = sorted((e for e in ENTRIES if e["model"] in scores),
                        key=lambda e: (-scores[e["model"]], e["id"]))
    without = sorted(e["id"] for e in ENTRIES if e["model"] not in scores)
    assert ranked == [e["id"] for e in with_score] + without


@pytest.mark.parametrize("label", ["X", "O", "T", "pii", "Eu"])
def test_capitalised_request_labels(router: Router, label: str) -> None:
    pol = policy(["when", ["req", label], ["==", "model", "X"]])
    only_x = expect(lambda e: e["model"] == "X")
    everything = expect(lambda e: True)
    assert admitted(router, pol, {**REQUEST, "labels": [label]}) == only_x
    other = "Y" if label != "Y" else "Z"
    assert admitted(router, pol, {**REQUEST, "labels": [other, label.lower()]}) == (
        everything if label.lower() != label else only_x)
    assert admitted(router, pol, REQUEST) == everything
    negated = policy(["when", ["not", ["req", label]], ["==", "model", "X"]])
    assert admitted(router, negated, {**REQUEST, "labels": [label]}) == everything
    assert admitted(router, negated, REQUEST) == only_x


@pytest.mark.parametrize("payload", PAYLOADS)
def test_payload_labels_in_policy(router: Router, payload: str) -> None:
    pol = policy(["when", ["req", payload], ["==", "model", "X"]])
    everything = expect(lambda e: True)
    assert admitted(router, pol, REQUEST) == everything
    assert admitted(router, pol, {**REQUEST, "labels": ["X", "pii"]}) == (
        expect(lambda e: e["model"] == "X") if payload == "X" else everything)
    # Features built directly (not from a request body) may carry any string as a label.
    features = RequestFeatures(input_tokens=10, labels=(payload,))
    assert admitted(router, pol, features) == expect(lambda e: e["model"] == "X")
    features = RequestFeatures(input_tokens=10, labels=(payload + "!",))
    assert admitted(router, pol, features) == everything


@pytest.mark.parametrize("label", [p for p in PAYLOADS if p not in ("X", "O", "Eu")])
def test_payload_labels_in_a_request_are_refused(router: Router, label: str) -> None:
    with pytest.raises(RequestError) as info:
        router.route(policy(), {**REQUEST, "labels": [label]})
    assert [p.pointer for p in info.value.problems] == ["/labels/0"]


@pytest.mark.parametrize("payload", PAYLOADS[:5])
def test_payload_in_mutation_values_is_passed_verbatim(router: Router, payload: str) -> None:
    pol = policy(["==", "model", "X"], mutate=["mutate", ["set", "user", payload]])
    result = router.route(pol, REQUEST)
    assert result.selected == "X"
    assert [c.params for c in result.decision.calls] == [{"user": payload}, {"user": payload}]


def test_record_keeps_payloads_as_strings(router: Router) -> None:
    payload = PAYLOADS[0]
    pol = policy(["in", "region", [payload, "x"]])
    record = router.route(pol, REQUEST).record()
    assert record["policy"][2][1][2] == [payload, "x"]
    assert record["selected"] == "X"


def full_mode_admissible(catalog: Catalog, pol: list[Any], features: RequestFeatures,
                         router: Router) -> list[str]:
    """Everything asserted into the engine (request included), as the differential oracle."""
    admitted_policy = router.policies.admit(pol)
    program = compile_policy(admitted_policy, load_ruleset(), "full")
    live = LiveState.not_consulted()
    at = router.config.clock()
    facts = itertools.chain(
        static_facts(program, catalog, admitted_policy),
        request_facts(program, catalog, admitted_policy, features, live, at),
    )
    raw = datalog.run(program, facts)
    top = [n.pointer for n in program.nodes if n.top]
    ok = [o.id for o in catalog
          if all(raw[p].get(o.id, [("?", "", "")])[0][0] == "T" for p in top)]
    return sorted(ok)


@pytest.mark.parametrize(
    "payload", ["X", "O", "T", "_", "??", "True", PAYLOADS[0], PAYLOADS[2], "a(X) <= b(X)"])
def test_full_mode_engine_treats_labels_and_values_as_constants(
    catalog: Catalog, router: Router, payload: str
) -> None:
    """In full mode the request's labels are facts too: still constants."""
    pol = policy(
        ["when", ["req", payload], ["in", "model", [payload, "X"]]],
        ["not", ["has", "tags", payload]],
    )
    with_label = RequestFeatures(input_tokens=10, labels=(payload,))
    without = RequestFeatures(input_tokens=10, labels=("other",))
    expected_with = expect(lambda e: e["model"] in (payload, "X") and payload not in e["tags"])
    expected_without = expect(lambda e: payload not in e["tags"])
    assert full_mode_admissible(catalog, pol, with_label, router) == expected_with
    assert full_mode_admissible(catalog, pol, without, router) == expected_without
    assert admitted(router, pol, with_label) == expected_with
    assert admitted(router, pol, without) == expected_without


# --------------------------------------------------------------------------------------------
# What validation refuses (so it never reaches the engine)

BAD_IDS = [
    "eu')\n__import__('os')", "a b", "_x", "-x", "x'y", 'x"y', "x\ny", "x(y)", "x;y", "x~y",
    "x&y", "", "x" * 201, "x,y", "x\\y", "é",
]
BAD_REGIONS = ["Eu", "EU", "eu')\n#", "_eu", "e u", "eu\n", "x" * 33, "", "eu.west", "eu/1"]
BAD_TAGS = ["_x", "a b", "x'y", "x\ny", "~", "&", "x/y", "x@y", "", "t" * 65, "x(y)"]


def refused(entry: dict[str, Any]) -> CatalogError:
    with pytest.raises(CatalogError) as info:
        build_catalog({"schema": 1, "offerings": [offering("ok", "ok", "eu", []), entry]})
    return info.value


@pytest.mark.parametrize("bad", BAD_IDS)
def test_bad_ids_and_models_are_refused(bad: str) -> None:
    err = refused(offering(bad, "m", "eu", []))
    assert [(p.code, p.pointer) for p in err.problems] == [
        ("catalog.invalid_entry", "/offerings/1/id")]
    err = refused(offering("good", bad, "eu", []))
    assert [(p.code, p.pointer) for p in err.problems] == [
        ("catalog.invalid_entry", "/offerings/1/model")]
    assert "`model`" in err.problems[0].message


@pytest.mark.parametrize("bad", BAD_REGIONS)
def test_bad_regions_are_refused(bad: str) -> None:
    err = refused(offering("good", "m", bad, []))
    assert [(p.code, p.pointer) for p in err.problems] == [
        ("catalog.invalid_entry", "/offerings/1/region")]


@pytest.mark.parametrize("bad", BAD_TAGS)
def test_bad_tags_are_refused(bad: str) -> None:
    err = refused(offering("good", "m", "eu", ["fine", bad]))
    assert len(err.problems) == 1
    assert err.problems[0].code == "catalog.invalid_entry"
    assert err.problems[0].pointer.startswith("/offerings/1/tags")


def test_valid_edge_values_are_accepted() -> None:
    cat = build_catalog({"schema": 1, "offerings": [
        offering("A", "B", "c", ["D"]),
        offering("x" * 200, "y" * 200, "z" * 32, ["t" * 64]),
        offering("0/_.:@+-", "0/_.:@+-", "0_-", ["0_.:-"]),
    ]})
    assert len(cat) == 3


# --------------------------------------------------------------------------------------------
# Property: any string value compares as itself


MODELS = sorted({e["model"] for e in ENTRIES})
strings = (
    st.sampled_from(MODELS)
    | st.sampled_from([*PAYLOADS, "True", "False", "None", "??", "X1", "_x", "Model"])
    | st.text(max_size=20)
    | st.text(alphabet="XOTRW_~&()'\"\n.=<>:-?", max_size=6)
)


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(strings, min_size=1, max_size=4), negated=st.booleans())
def test_property_string_values_are_data(router: Router, values: list[str],
                                         negated: bool) -> None:
    head = "not_in" if negated else "in"
    got = admitted(router, policy([head, "model", values]))
    assert got == expect(lambda e: (e["model"] in values) != negated)
    got = admitted(router, policy(["has_any", "tags", values]))
    assert got == expect(lambda e: bool(set(values) & set(e["tags"])))
