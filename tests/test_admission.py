"""Admission (spec §1, §4, §8): every error code at its RFC 6901 pointer, all problems at once,
canonical form and hash, size/depth limits, and fuzzing: `admit` returns a `Policy` or raises
`PolicyError`, never anything else."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router.common.problems import PolicyError
from router.policy.admit import MAX_BYTES, admit, admit_text
from router.policy.terms import Policy

# The support-ticket policy, exactly as the spec (§1) shows it.
SPEC_EXAMPLE_TEXT = """["policy", ["ev_zero"],
  ["filter",
    [">=", "context_window", 200000],
    ["when", ["req", "pii"], ["in", "region", ["eu"]]],
    ["<=", "output_price", 10.0]],
  ["rank", ["asc", "est_cost"]],
  ["select", ["first"], ["cascade", 2]],
  ["mutate", ["clamp_max_tokens"]],
  ["fallback", ["on", "error", "timeout", "rate_limit"], ["retry", 1, 200], ["next"]]]"""

EXAMPLE: list[Any] = json.loads(SPEC_EXAMPLE_TEXT)

# A valid policy that uses every part (evidence, all clause forms, rank by evidence, mutations).
RICH: list[Any] = [
    "policy",
    ["ev", ["score", "acc", {"claude-haiku-4-5": 0.9, "gpt-4o": 0.7}]],
    [
        "filter",
        [">=", "context_window", ["req", "input_tokens"]],
        ["in", "region", ["eu", "global"]],
        ["not_in", "provider", ["xai"]],
        ["has", "capabilities", "tools"],
        ["has_all", "capabilities", ["req", "needs"]],
        ["has_any", "tags", ["approved", "zdr"]],
        ["has_none", "tags", ["blocked"]],
        ["ev", "acc", ">=", 0.5],
        ["not", ["==", "deprecated", True]],
        ["any", ["<", "input_price", 5], ["==", "model", "gpt-4o"]],
        ["all", ["!=", "status", "disabled"], ["<=", "est_cost", 1]],
        ["when", ["not", ["req", "pii"]], [">", "max_output_tokens", 1000]],
        ["when", [">", ["req", "input_tokens"], 1000], [">=", "context_window", 100000]],
    ],
    ["rank", ["desc", ["ev", "acc"]], ["asc", "est_cost"]],
    ["select", ["first"], ["cascade", 3]],
    ["mutate", ["clamp_max_tokens"], ["set", "temperature", 0.2], ["default", "max_tokens", 512]],
    ["fallback", ["timeout_ms", 1000], ["retry", 2, 100], ["fail"], ["on", "error"]],
]


def pol(
    *clauses: Any,
    ev: Any = None,
    rank: Any = None,
    select: Any = None,
    mutate: Any = None,
    fallback: Any = None,
) -> list[Any]:
    """A minimal valid policy around the given filter clauses (each part replaceable)."""
    return [
        "policy",
        ["ev_zero"] if ev is None else ev,
        ["filter", *clauses],
        ["rank"] if rank is None else rank,
        ["select", ["first"]] if select is None else select,
        ["mutate"] if mutate is None else mutate,
        ["fallback"] if fallback is None else fallback,
    ]


def refusal(value: object, *, text: bool = False) -> PolicyError:
    with pytest.raises(PolicyError) as info:
        if text:
            assert isinstance(value, str | bytes)
            admit_text(value)
        else:
            admit(value)
    return info.value


def found(value: object, *, text: bool = False) -> list[tuple[str, str]]:
    return [(p.code, p.pointer) for p in refusal(value, text=text).problems]


def resolve(doc: object, pointer: str) -> object:
    """RFC 6901 resolution; raises LookupError when the pointer names nothing."""
    if pointer == "":
        return doc
    assert pointer.startswith("/"), pointer
    for raw in pointer.split("/")[1:]:
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(doc, list):
            if not token.isdigit() or (len(token) > 1 and token[0] == "0"):
                raise LookupError(pointer)
            doc = doc[int(token)]
        elif isinstance(doc, dict):
            doc = doc[token]
        else:
            raise LookupError(pointer)
    return doc


def both_ways(value: object) -> list[Policy | PolicyError]:
    """admit(value) and admit_text(json.dumps(value)); only PolicyError is caught."""
    out: list[Policy | PolicyError] = []
    try:
        out.append(admit(value))
    except PolicyError as err:
        out.append(err)
    try:
        out.append(admit_text(json.dumps(value)))
    except PolicyError as err:
        out.append(err)
    return out


def pointer_key(pointer: str) -> tuple[tuple[int, int | str], ...]:
    """Document order: array indices compare as numbers."""
    return tuple((0, int(t)) if t.isdigit() else (1, t) for t in pointer.split("/")[1:])


def pointer_is_sound(doc: object, pointer: str) -> bool:
    """The pointer names a value, or the missing next element of an existing array."""
    try:
        resolve(doc, pointer)
        return True
    except (LookupError, IndexError, KeyError):
        parent, _, last = pointer.rpartition("/")
        try:
            container = resolve(doc, parent)
        except (LookupError, IndexError, KeyError):
            return False
        return isinstance(container, list) and last.isdigit() and int(last) >= len(container)


# --------------------------------------------------------------------------------------------
# The spec example and valid policies


def test_spec_example_admits_from_text_and_value() -> None:
    from_text = admit_text(SPEC_EXAMPLE_TEXT)
    from_value = admit(EXAMPLE)
    assert isinstance(from_text, Policy)
    assert from_text.hash == from_value.hash
    assert from_text.cascade == 2
    assert len(from_text.filters) == 3
    assert [(k.metric, k.descending) for k in from_text.rank] == [("est_cost", False)]
    assert [m.op for m in from_text.mutations] == ["clamp_max_tokens"]
    fb = from_text.fallback
    assert (fb.on, fb.retries, fb.backoff_ms, fb.then) == (
        ("error", "timeout", "rate_limit"), 1, 200, "next")


def test_rich_policy_admits() -> None:
    p = admit(RICH)
    assert p.evidence == {"acc": {"claude-haiku-4-5": 0.9, "gpt-4o": 0.7}}
    assert len(p.filters) == 13
    assert p.cascade == 3
    assert p.fallback.then == "fail"
    assert p.fallback.timeout_ms == 1000


def test_minimal_policy_admits() -> None:
    p = admit(pol())
    assert p.filters == ()
    assert p.cascade == 0


def test_admit_does_not_mutate_its_input() -> None:
    value = copy.deepcopy(RICH)
    admit(value)
    assert value == RICH


# --------------------------------------------------------------------------------------------
# Every error code, at its pointer

ONE_PROBLEM: list[tuple[str, object, str, str]] = [
    # (case id, policy value, code, pointer)
    ("not_a_term/root-object", {"policy": []}, "policy.not_a_term", ""),
    ("not_a_term/root-string", "policy", "policy.not_a_term", ""),
    ("not_a_term/part", ["policy", ["ev_zero"], "filter", ["rank"], ["select", ["first"]],
                         ["mutate"], ["fallback"]], "policy.not_a_term", "/2"),
    ("not_a_term/clause", pol(5), "policy.not_a_term", "/2/1"),
    ("not_a_term/clause-empty", pol([]), "policy.not_a_term", "/2/1"),
    ("not_a_term/inside-not", pol(["not", "x"]), "policy.not_a_term", "/2/1/1"),
    ("bad_head", ["polcy", ["ev_zero"], ["filter"], ["rank"], ["select", ["first"]],
                  ["mutate"], ["fallback"]], "policy.bad_head", "/0"),
    ("arity/policy-short", ["policy", ["ev_zero"], ["filter"]], "policy.arity", ""),
    ("arity/policy-long", [*pol(), ["extra"]], "policy.arity", ""),
    ("arity/cmp", pol([">=", "context_window"]), "policy.arity", "/2/1"),
    ("arity/cmp-extra", pol([">=", "context_window", 1, 2]), "policy.arity", "/2/1"),
    ("arity/not", pol(["not", ["==", "region", "eu"], ["==", "region", "us"]]),
     "policy.arity", "/2/1"),
    ("arity/any-empty", pol(["any"]), "policy.arity", "/2/1"),
    ("arity/when", pol(["when", ["req", "pii"]]), "policy.arity", "/2/1"),
    ("arity/ev_zero", pol(ev=["ev_zero", 1]), "policy.arity", "/1"),
    ("arity/retry", pol(fallback=["fallback", ["retry", 1]]), "policy.arity", "/6/1"),
    ("arity/next", pol(fallback=["fallback", ["next", 1]]), "policy.arity", "/6/1"),
    ("unknown_head/part", pol(rank=["rnak"]), "policy.unknown_head", "/3/0"),
    ("unknown_head/part-out-of-place", ["policy", ["ev_zero"], ["rank"], ["rank"],
                                        ["select", ["first"]], ["mutate"], ["fallback"]],
     "policy.unknown_head", "/2/0"),
    ("unknown_head/clause", pol(["between", "input_price", 1, 2]), "policy.unknown_head",
     "/2/1/0"),
    ("unknown_head/evidence", pol(ev=["evidence"]), "policy.unknown_head", "/1/0"),
    ("unknown_attribute/context", pol([">=", "context", 200000]),
     "policy.unknown_attribute", "/2/1/1"),
    ("unknown_attribute/regions", pol([">=", "regions", 5]), "policy.unknown_attribute",
     "/2/1/1"),
    ("unknown_attribute/in", pol(["in", "regoin", ["eu"]]), "policy.unknown_attribute",
     "/2/1/1"),
    ("unknown_attribute/set", pol(["has", "capability", "tools"]),
     "policy.unknown_attribute", "/2/1/1"),
    ("not_an_attribute", pol(["==", 5, 5]), "policy.not_an_attribute", "/2/1/1"),
    ("not_an_attribute/list", pol(["in", ["region"], ["eu"]]), "policy.not_an_attribute",
     "/2/1/1"),
    ("type_mismatch/has-on-number", pol(["has", "context_window", "x"]),
     "policy.type_mismatch", "/2/1/1"),
    ("type_mismatch/order-on-string", pol([">", "region", 5]), "policy.type_mismatch",
     "/2/1/0"),
    ("type_mismatch/string-for-number", pol(["==", "context_window", "x"]),
     "policy.type_mismatch", "/2/1/2"),
    ("type_mismatch/bool-for-number", pol(["<=", "input_price", True]),
     "policy.type_mismatch", "/2/1/2"),
    ("type_mismatch/number-for-string", pol(["==", "region", 5]), "policy.type_mismatch",
     "/2/1/2"),
    ("type_mismatch/cmp-on-set", pol(["==", "tags", "zdr"]), "policy.type_mismatch",
     "/2/1/1"),
    ("type_mismatch/in-on-set", pol(["in", "tags", ["zdr"]]), "policy.type_mismatch",
     "/2/1/1"),
    ("type_mismatch/in-element", pol(["in", "region", ["eu", 3]]), "policy.type_mismatch",
     "/2/1/2/1"),
    ("type_mismatch/in-not-a-list", pol(["in", "region", "eu"]), "policy.type_mismatch",
     "/2/1/2"),
    ("type_mismatch/in-empty", pol(["in", "region", []]), "policy.type_mismatch", "/2/1/2"),
    ("type_mismatch/has_any-element", pol(["has_any", "tags", ["zdr", 1]]),
     "policy.type_mismatch", "/2/1/2/1"),
    ("type_mismatch/ev-number", pol(["ev", "acc", ">=", "high"],
                                    ev=["ev", ["score", "acc", {"m": 1}]]),
     "policy.type_mismatch", "/2/1/3"),
    ("type_mismatch/score", pol(ev=["ev", ["score", "acc", {"m": "high"}]]),
     "policy.type_mismatch", "/1/1/2/m"),
    ("type_mismatch/score-key-escaped", pol(ev=["ev", ["score", "acc", {"a/b~c": None}]]),
     "policy.type_mismatch", "/1/1/2/a~1b~0c"),
    ("type_mismatch/req-feature-compare", pol(["when", [">", ["req", "input_tokens"], "x"],
                                               ["==", "region", "eu"]]),
     "policy.type_mismatch", "/2/1/1/2"),
    ("type_mismatch/req-on-string", pol(["==", "region", ["req", "input_tokens"]]),
     "policy.type_mismatch", "/2/1/2"),
    ("type_mismatch/mutation-value", pol(mutate=["mutate", ["set", "temperature", [1]]]),
     "policy.type_mismatch", "/5/1/2"),
    ("type_mismatch/max_tokens", pol(mutate=["mutate", ["default", "max_tokens", -1]]),
     "policy.type_mismatch", "/5/1/2"),
    ("bad_value/capability", pol(["has", "capabilities", "telepathy"]), "policy.bad_value",
     "/2/1/2"),
    ("bad_value/capability-in-list", pol(["has_all", "capabilities", ["tools", "vison"]]),
     "policy.bad_value", "/2/1/2/1"),
    ("bad_value/status", pol(["==", "status", "up"]), "policy.bad_value", "/2/1/2"),
    ("bad_value/cascade", pol(select=["select", ["first"], ["cascade", 99]]),
     "policy.bad_value", "/4/2/1"),
    ("bad_value/cascade-negative", pol(select=["select", ["first"], ["cascade", -1]]),
     "policy.bad_value", "/4/2/1"),
    ("bad_value/on", pol(fallback=["fallback", ["on", "error", "crash"]]), "policy.bad_value",
     "/6/1"),
    ("bad_value/retry", pol(fallback=["fallback", ["retry", 1000, 0]]), "policy.bad_value",
     "/6/1/1"),
    ("bad_value/backoff", pol(fallback=["fallback", ["retry", 1, -5]]), "policy.bad_value",
     "/6/1/2"),
    ("bad_value/timeout-zero", pol(fallback=["fallback", ["timeout_ms", 0]]),
     "policy.bad_value", "/6/1/1"),
    ("bad_value/nan", pol(["<=", "input_price", float("nan")]), "policy.bad_value",
     "/2/1/2"),
    ("bad_value/inf", pol(["<=", "input_price", float("inf")]), "policy.bad_value",
     "/2/1/2"),
    ("bad_value/not-json", pol(["==", "region", object()]), "policy.bad_value", "/2/1/2"),
    ("bad_feature/cmp", pol([">=", "context_window", ["req", "tokens"]]),
     "policy.bad_feature", "/2/1/2/1"),
    ("bad_feature/has", pol(["has", "capabilities", ["req", "needs"]]), "policy.bad_feature",
     "/2/1/2"),
    ("bad_feature/set", pol(["has_any", "tags", ["req", "input_tokens"]]),
     "policy.bad_feature", "/2/1/2"),
    ("bad_feature/label-empty", pol(["when", ["req", ""], ["==", "region", "eu"]]),
     "policy.bad_feature", "/2/1/1/1"),
    ("bad_feature/label-number", pol(["when", ["req", 5], ["==", "region", "eu"]]),
     "policy.bad_feature", "/2/1/1/1"),
    ("bad_feature/pred-cmp", pol(["when", [">", ["req", "pii"], 1], ["==", "region", "eu"]]),
     "policy.bad_feature", "/2/1/1/1"),
    ("unknown_metric/filter", pol(["ev", "acc", ">=", 0.8]), "policy.unknown_metric",
     "/2/1/1"),
    ("unknown_metric/rank", pol(rank=["rank", ["desc", ["ev", "acc"]]]),
     "policy.unknown_metric", "/3/1/1/1"),
    ("bad_operator", pol(["ev", "acc", "=~", 0.8], ev=["ev", ["score", "acc", {"m": 1}]]),
     "policy.bad_operator", "/2/1/2"),
    ("bad_evidence/not-score", pol(ev=["ev", ["scor", "acc", {}]]), "policy.bad_evidence",
     "/1/1"),
    ("bad_evidence/metric", pol(ev=["ev", ["score", 7, {}]]), "policy.bad_evidence", "/1/1/1"),
    ("bad_evidence/scores", pol(ev=["ev", ["score", "acc", [0.5]]]), "policy.bad_evidence",
     "/1/1/2"),
    ("duplicate/metric", pol(ev=["ev", ["score", "acc", {}], ["score", "acc", {}]]),
     "policy.duplicate", "/1/2/1"),
    ("duplicate/fallback", pol(fallback=["fallback", ["retry", 1, 2], ["retry", 2, 2]]),
     "policy.duplicate", "/6/2"),
    ("duplicate/fallback-then", pol(fallback=["fallback", ["next"], ["fail"]]),
     "policy.duplicate", "/6/2"),
    ("bad_rank_key/direction", pol(rank=["rank", ["up", "est_cost"]]), "policy.bad_rank_key",
     "/3/1"),
    ("bad_rank_key/shape", pol(rank=["rank", "est_cost"]), "policy.bad_rank_key", "/3/1"),
    ("bad_metric/string-attribute", pol(rank=["rank", ["asc", "region"]]),
     "policy.bad_metric", "/3/1/1"),
    ("bad_metric/unknown", pol(rank=["rank", ["asc", "cost"]]), "policy.bad_metric",
     "/3/1/1"),
    ("bad_select/first", pol(select=["select", ["last"]]), "policy.bad_select", "/4/1"),
    ("bad_select/cascade", pol(select=["select", ["first"], ["fan_out", 2]]),
     "policy.bad_select", "/4/2"),
    ("bad_select/extra", pol(select=["select", ["first"], ["cascade", 1], ["cascade", 2]]),
     "policy.bad_select", "/4/2"),
    ("bad_mutation", pol(mutate=["mutate", ["clamp"]]), "policy.bad_mutation", "/5/1"),
    ("bad_mutation/not-a-list", pol(mutate=["mutate", "clamp_max_tokens"]),
     "policy.bad_mutation", "/5/1"),
    ("bad_param", pol(mutate=["mutate", ["set", "temprature", 0.5]]), "policy.bad_param",
     "/5/1/1"),
    ("bad_param/model", pol(mutate=["mutate", ["set", "model", "gpt-4o"]]), "policy.bad_param",
     "/5/1/1"),
    ("bad_fallback", pol(fallback=["fallback", ["retries", 1, 2]]), "policy.bad_fallback",
     "/6/1"),
    ("bad_fallback/not-a-list", pol(fallback=["fallback", "next"]), "policy.bad_fallback",
     "/6/1"),
    ("bad_request_predicate", pol(["when", "pii", ["==", "region", "eu"]]),
     "policy.bad_request_predicate", "/2/1/1"),
    ("bad_request_predicate/number", pol(["when", 1, ["==", "region", "eu"]]),
     "policy.bad_request_predicate", "/2/1/1"),
    ("bad_request_predicate/clause", pol(["when", ["in", "region", ["eu"]],
                                          ["==", "region", "eu"]]),
     "policy.bad_request_predicate", "/2/1/1"),
    # a filter clause where a request predicate belongs reads as [CMP, ["req", F], N]
    ("bad_feature/clause-as-predicate", pol(["when", ["==", "region", "eu"],
                                             ["==", "region", "eu"]]),
     "policy.bad_feature", "/2/1/1/1"),
]


@pytest.mark.parametrize(
    ("value", "code", "pointer"),
    [pytest.param(v, c, p, id=i) for i, v, c, p in ONE_PROBLEM],
)
def test_error_code_and_pointer(value: object, code: str, pointer: str) -> None:
    problems = refusal(value).problems
    assert [(p.code, p.pointer) for p in problems] == [(code, pointer)]
    problem = problems[0]
    assert problem.message and "\n" not in problem.message
    assert pointer_is_sound(value, pointer)


def test_every_code_is_covered_by_a_case() -> None:
    codes = {c for _, _, c, _ in ONE_PROBLEM}
    codes |= {"policy.invalid_json", "policy.too_large", "policy.too_deep"}  # tested below
    expected = {
        "policy.invalid_json", "policy.too_large", "policy.too_deep", "policy.not_a_term",
        "policy.bad_head", "policy.arity", "policy.unknown_head", "policy.unknown_attribute",
        "policy.not_an_attribute", "policy.type_mismatch", "policy.bad_value",
        "policy.bad_feature", "policy.unknown_metric", "policy.bad_operator",
        "policy.bad_evidence", "policy.duplicate", "policy.bad_rank_key", "policy.bad_metric",
        "policy.bad_select", "policy.bad_mutation", "policy.bad_param", "policy.bad_fallback",
        "policy.bad_request_predicate",
    }
    assert codes == expected


def test_spec_example_problem_exactly() -> None:
    """§8 shows this problem verbatim."""
    err = refusal(pol([">=", "context", 200000]))
    assert err.to_json() == [{
        "code": "policy.unknown_attribute",
        "pointer": "/2/1/1",
        "message": "unknown attribute `context`",
        "hint": "did you mean `context_window`?",
    }]


def test_regions_is_unknown_attribute_with_a_hint() -> None:
    (problem,) = refusal(pol([">=", "regions", 5])).problems
    assert problem.code == "policy.unknown_attribute"
    assert problem.hint == "did you mean `region`?"


@pytest.mark.parametrize(
    ("value", "hint_part"),
    [
        (["policy", ["ev_zero"], ["filtre"], ["rank"], ["select", ["first"]], ["mutate"],
          ["fallback"]], "did you mean `filter`?"),
        (pol(["has", "capabilities", "vison"]), "did you mean `vision`?"),
        (pol(["==", "status", "availble"]), "did you mean `available`?"),
        (pol(mutate=["mutate", ["clamp_max_token"]]), "did you mean `clamp_max_tokens`?"),
        (pol(mutate=["mutate", ["set", "temprature", 1]]), "did you mean `temperature`?"),
        (pol(rank=["rank", ["asc", "est_cots"]]), "did you mean `est_cost`?"),
        (pol(fallback=["fallback", ["retyr", 1, 1]]), "did you mean `retry`?"),
        (pol([">=", "context_window", ["req", "input_token"]]), "did you mean `input_tokens`?"),
    ],
)
def test_hints(value: object, hint_part: str | None) -> None:
    problems = refusal(value).problems
    assert len(problems) == 1
    if hint_part is not None:
        assert problems[0].hint == hint_part


def test_invalid_json() -> None:
    for text in ("", "[", '["policy",]', "{'a': 1}", "[1, 2", "nul"):
        assert found(text, text=True) == [("policy.invalid_json", "")]


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_json_number_constants_are_refused(constant: str) -> None:
    text = SPEC_EXAMPLE_TEXT.replace("10.0", constant)
    assert found(text, text=True) == [("policy.invalid_json", "")]


def test_invalid_utf8_bytes_are_invalid_json() -> None:
    assert found(b'["policy", "\xff\xfe"]', text=True) == [("policy.invalid_json", "")]


def test_bytes_input_admits() -> None:
    assert admit_text(SPEC_EXAMPLE_TEXT.encode()).hash == admit(EXAMPLE).hash


# --------------------------------------------------------------------------------------------
# All problems at once, sorted by pointer


def test_all_problems_at_once_sorted_by_pointer() -> None:
    value = [
        "policy",
        ["ev", ["scor", "acc", {}]],
        ["filter",
         [">=", "context", 200000],
         ["has", "context_window", "x"],
         [">", "region", 5],
         ["==", "status", "up"],
         ["ev", "nope", ">=", 1],
         ["in", "region", ["eu"]],  # fine
         ["in", "region", ["eu"]],  # fine
         ["in", "region", ["eu"]],  # fine
         ["in", "region", ["eu"]],  # fine
         ["between", 1, 2]],  # /2/10: numeric order puts it after /2/5
        ["rank", ["up", "est_cost"], ["asc", "region"]],
        ["select", ["last"]],
        ["mutate", ["clamp"], ["set", "temprature", 1]],
        ["fallback", ["retries", 1, 2], ["next"], ["fail"]],
    ]
    got = found(value)
    assert got == [
        ("policy.bad_evidence", "/1/1"),
        ("policy.unknown_attribute", "/2/1/1"),
        ("policy.type_mismatch", "/2/2/1"),
        ("policy.type_mismatch", "/2/3/0"),
        ("policy.bad_value", "/2/4/2"),
        ("policy.unknown_metric", "/2/5/1"),
        ("policy.unknown_head", "/2/10/0"),
        ("policy.bad_rank_key", "/3/1"),
        ("policy.bad_metric", "/3/2/1"),
        ("policy.bad_select", "/4/1"),
        ("policy.bad_mutation", "/5/1"),
        ("policy.bad_param", "/5/2/1"),
        ("policy.bad_fallback", "/6/1"),
        ("policy.duplicate", "/6/3"),
    ]


def test_problems_inside_nested_clauses_are_all_reported() -> None:
    value = pol(["any", [">=", "contxt_window", 1], ["not", ["==", "regin", "eu"]],
                 ["all", ["has", "tags", 5], ["in", "region", [1]]]])
    assert found(value) == [
        ("policy.unknown_attribute", "/2/1/1/1"),
        ("policy.unknown_attribute", "/2/1/2/1/1"),
        ("policy.type_mismatch", "/2/1/3/1/2"),
        ("policy.type_mismatch", "/2/1/3/2/2/0"),
    ]


def test_shape_problems_reported_together() -> None:
    assert found(["polcy", 1]) == [("policy.arity", ""), ("policy.bad_head", "/0")]


def test_to_json_carries_code_pointer_message_hint() -> None:
    err = refusal(pol(["has", "capabilities", "vison"], [">=", "context", 1]))
    rows = err.to_json()
    assert [set(r) for r in rows] == [{"code", "pointer", "message", "hint"}] * 2
    assert str(err).startswith("policy refused: ")


# --------------------------------------------------------------------------------------------
# Canonical form and hash


def test_canonical_form_is_compact_sorted_and_hashed() -> None:
    p = admit(RICH)
    assert " " not in p.canonical.replace("claude-haiku-4-5", "")
    assert p.canonical == json.dumps(json.loads(p.canonical), separators=(",", ":"),
                                     sort_keys=True, ensure_ascii=False)
    assert p.hash == hashlib.sha256(p.canonical.encode()).hexdigest()
    assert json.loads(p.canonical) == p.term


def test_whitespace_does_not_change_the_hash() -> None:
    compact = json.dumps(EXAMPLE, separators=(",", ":"))
    spaced = json.dumps(EXAMPLE, indent=4)
    assert admit_text(compact).hash == admit_text(spaced).hash == admit_text(
        SPEC_EXAMPLE_TEXT).hash


def test_key_order_does_not_change_the_hash() -> None:
    a = pol(ev=["ev", ["score", "acc", {"a": 0.1, "b": 0.2, "c": 0.3}]])
    b = pol(ev=["ev", ["score", "acc", {"c": 0.3, "a": 0.1, "b": 0.2}]])
    pa, pb = admit(a), admit(b)
    assert pa.hash == pb.hash
    assert pa.canonical == pb.canonical
    assert '{"a":0.1,"b":0.2,"c":0.3}' in pa.canonical


@pytest.mark.parametrize("spelling", ["10", "10.0", "1e1", "10.000", "1.0E+1"])
def test_number_spelling_does_not_change_the_hash(spelling: str) -> None:
    text = SPEC_EXAMPLE_TEXT.replace("10.0", spelling)
    p = admit_text(text)
    assert p.hash == admit(EXAMPLE).hash
    assert '["<=","output_price",10]' in p.canonical


def test_float_and_int_values_hash_alike() -> None:
    assert admit(pol(["<=", "output_price", 10.0])).hash == admit(
        pol(["<=", "output_price", 10])).hash
    assert admit(pol(["<=", "output_price", 0.1])).canonical.endswith(
        '["filter",["<=","output_price",0.1]],["rank"],["select",["first"]],["mutate"],'
        '["fallback"]]')


@pytest.mark.parametrize(
    "changed",
    [
        SPEC_EXAMPLE_TEXT.replace("10.0", "10.5"),
        SPEC_EXAMPLE_TEXT.replace("200000", "200001"),
        SPEC_EXAMPLE_TEXT.replace('"eu"', '"us"'),
        SPEC_EXAMPLE_TEXT.replace('"asc"', '"desc"'),
        SPEC_EXAMPLE_TEXT.replace('["cascade", 2]', '["cascade", 3]'),
        SPEC_EXAMPLE_TEXT.replace('["retry", 1, 200]', '["retry", 1, 201]'),
    ],
)
def test_a_real_change_changes_the_hash(changed: str) -> None:
    assert changed != SPEC_EXAMPLE_TEXT
    assert admit_text(changed).hash != admit(EXAMPLE).hash


def test_same_rules_same_hash_every_time() -> None:
    hashes = {admit(copy.deepcopy(RICH)).hash for _ in range(5)}
    assert len(hashes) == 1
    assert admit(admit(RICH).term).hash == admit(RICH).hash


# --------------------------------------------------------------------------------------------
# Size and depth limits


def nested_not(depth: int) -> list[Any]:
    clause: list[Any] = ["==", "region", "eu"]
    for _ in range(depth):
        clause = ["not", clause]
    return clause


def nested_not_text(depth: int) -> str:
    """The policy around `nested_not(depth)` as compact JSON text (json.dumps would recurse)."""
    clause = '["not",' * depth + '["==","region","eu"]' + "]" * depth
    return ('["policy",["ev_zero"],["filter",' + clause
            + '],["rank"],["select",["first"]],["mutate"],["fallback"]]')


def test_nested_not_text_helper() -> None:
    assert json.loads(nested_not_text(3)) == pol(nested_not(3))


def test_too_large_text() -> None:
    text = SPEC_EXAMPLE_TEXT + " " * (MAX_BYTES + 1 - len(SPEC_EXAMPLE_TEXT.encode()))
    assert len(text.encode()) == MAX_BYTES + 1
    assert found(text, text=True) == [("policy.too_large", "")]
    assert found(text.encode(), text=True) == [("policy.too_large", "")]


def test_exactly_the_limit_is_not_too_large() -> None:
    text = SPEC_EXAMPLE_TEXT + " " * (MAX_BYTES - len(SPEC_EXAMPLE_TEXT.encode()))
    assert admit_text(text).hash == admit(EXAMPLE).hash


def test_multibyte_text_counted_in_bytes() -> None:
    # 22k three-byte characters: < 64Ki characters but > 64KiB.
    text = json.dumps(pol(["==", "model", "€" * 22_000]), ensure_ascii=False)
    assert len(text) < MAX_BYTES < len(text.encode())
    assert found(text, text=True) == [("policy.too_large", "")]


def test_ten_thousand_nested_not_as_text_refused() -> None:
    text = nested_not_text(10_000)
    assert len(text.encode()) > MAX_BYTES
    problems = found(text, text=True)
    assert problems == [("policy.too_large", "")]


def test_deep_nesting_as_text_within_size_is_too_deep() -> None:
    """Valid JSON nested 4,000 levels deep, under 64 KiB: refused as too deep (the documented
    code for nesting), not as `invalid_json` (it *is* valid JSON) and never a RecursionError."""
    text = nested_not_text(4_000)
    assert len(text.encode()) < MAX_BYTES
    problems = refusal(text, text=True).problems
    assert problems, "refused"
    assert {p.code for p in problems} == {"policy.too_deep"}


def test_deep_bare_brackets_as_text_are_too_deep() -> None:
    text = "[" * 20_000 + "]" * 20_000
    assert len(text) < MAX_BYTES
    problems = refusal(text, text=True).problems
    assert {p.code for p in problems} == {"policy.too_deep"}


def test_ten_thousand_nested_not_as_objects_is_too_deep() -> None:
    value = pol(nested_not(10_000))
    problems = refusal(value).problems
    assert {p.code for p in problems} == {"policy.too_deep"}
    # the first value past the limit (depth 17) is named by its pointer
    assert "/2/1" + "/1" * 15 in {p.pointer for p in problems}


def test_depth_limit_boundary() -> None:
    # /2/1 is depth 2 and each `not` adds a level: with 13 the innermost leaves sit at the
    # limit (16), with 14 they are one past it.
    admit(pol(nested_not(13)))
    assert {p.code for p in refusal(pol(nested_not(14))).problems} == {"policy.too_deep"}


def test_self_referencing_object_is_refused_not_recursion() -> None:
    loop: list[Any] = ["not"]
    loop.append(loop)
    assert {p.code for p in refusal(pol(loop)).problems} == {"policy.too_deep"}


def test_huge_list_is_too_large_at_its_pointer() -> None:
    value = pol(["in", "region", ["eu"] * 100_000])
    assert found(value) == [("policy.too_large", "/2/1/2")]
    value = pol(*([["==", "region", "eu"]] * 300))
    assert found(value) == [("policy.too_large", "/2")]


def test_too_many_values_is_too_large() -> None:
    value = pol(*([["in", "region", ["a", "b", "c", "d", "e"]]] * 250))
    assert found(value) == [("policy.too_large", "")]


def test_long_string_is_too_large_at_its_pointer() -> None:
    assert found(pol(["==", "model", "m" * 257])) == [("policy.too_large", "/2/1/2")]
    assert found(pol(["==", "model", "m" * 1_000_000])) == [("policy.too_large", "/2/1/2")]
    admit(pol(["==", "model", "m" * 256]))


def test_long_object_key_is_refused() -> None:
    value = pol(ev=["ev", ["score", "acc", {"k" * 1000: 1}]])
    assert {p.code for p in refusal(value).problems} == {"policy.too_large"}


def test_lone_surrogate_in_text_is_refused_not_crashing() -> None:
    """A JSON string escape `\\ud800` is valid JSON text but not encodable; admission must
    refuse it with a PolicyError (or admit it), never raise UnicodeEncodeError."""
    value = pol(mutate=["mutate", ["set", "user", "\ud800"]])
    assert "\\ud800" in json.dumps(value)  # ASCII text containing the escape
    for result in both_ways(value):
        if isinstance(result, Policy):
            result.canonical.encode()


def test_lone_surrogate_in_str_input_is_refused_not_crashing() -> None:
    text = json.dumps(pol(["==", "model", "\udcff"]), ensure_ascii=False)
    with pytest.raises(PolicyError):
        admit_text(text)


@pytest.mark.parametrize(
    "value",
    [
        pol(ev=["ev", ["score", "acc", {"m": 10**400}]]),
        pol(["ev", "acc", ">=", 10**400], ev=["ev", ["score", "acc", {"m": 1}]]),
        pol(["when", [">", ["req", "input_tokens"], 10**400], ["==", "region", "eu"]]),
    ],
    ids=["score", "ev-clause", "feature-compare"],
)
def test_huge_integers_do_not_overflow(value: list[Any]) -> None:
    """JSON allows integers of any size (`1` followed by 400 zeros parses to a Python int);
    where admission converts to float it must refuse (PolicyError) rather than raise
    OverflowError."""
    both_ways(value)


@pytest.mark.parametrize("name", [[], {}, ["acc"], None, 1])
def test_rank_by_evidence_with_a_non_string_name(name: object) -> None:
    """Found by the fuzzer: `["desc", ["ev", []]]` must be refused, not raise TypeError
    (unhashable list looked up in the evidence table)."""
    value = pol(ev=["ev", ["score", "acc", {"m": 1}]], rank=["rank", ["desc", ["ev", name]]])
    problems = refusal(value).problems
    assert [p.pointer for p in problems] == ["/3/1/1/1"]
    assert problems[0].code in ("policy.unknown_metric", "policy.bad_metric")


def test_non_string_object_keys_are_refused() -> None:
    """`admit` takes a parsed JSON value; a dict with non-string keys is not one and must be
    refused with a PolicyError, not crash the canonicaliser with TypeError."""
    value = pol(ev=["ev", ["score", "acc", {1: 0.5, "a": 0.3}]])
    with pytest.raises(PolicyError):
        admit(value)


# --------------------------------------------------------------------------------------------
# Fuzzing: admit returns a Policy or raises PolicyError, never anything else

VOCAB = [
    "policy", "ev_zero", "ev", "score", "filter", "rank", "select", "mutate", "fallback",
    "first", "cascade", "asc", "desc", "est_cost", "req", "pii", "input_tokens", "needs",
    "labels", "max_output_tokens", "context_window", "region", "model", "tags",
    "capabilities", "tools", "status", "available", "deprecated", "input_price", "in",
    "not_in", "has", "has_all", "has_any", "has_none", "not", "any", "all", "when", "<", "<=",
    ">", ">=", "==", "!=", "clamp_max_tokens", "set", "default", "max_tokens", "temperature",
    "on", "error", "timeout", "rate_limit", "retry", "timeout_ms", "next", "fail", "acc", "eu",
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-3, max_value=20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(VOCAB)
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=6)
    | st.dictionaries(st.text(max_size=6) | st.sampled_from(VOCAB), children, max_size=4),
    max_leaves=40,
)
# also non-finite floats (a Python caller may pass them)
python_values = st.recursive(
    scalars | st.floats(),
    lambda children: st.lists(children, max_size=6)
    | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=30,
)

FUZZ = settings(max_examples=300, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])


def check_outcome(value: object) -> Policy | PolicyError:
    """The invariant: a Policy, or a PolicyError with sound, sorted problems."""
    before = copy.deepcopy(value)
    try:
        result: Policy | PolicyError = admit(value)
    except PolicyError as err:
        result = err
    except Exception as exc:  # catch-all: anything else is a bug
        pytest.fail(f"admit raised {type(exc).__name__}: {exc!r} for {value!r}")
    assert json.dumps(value, sort_keys=True, default=repr) == json.dumps(
        before, sort_keys=True, default=repr), "admit mutated its input"
    if isinstance(result, Policy):
        assert result.hash == hashlib.sha256(result.canonical.encode()).hexdigest()
        assert admit(result.term).hash == result.hash
    else:
        assert result.problems
        for p in result.problems:
            assert p.code.startswith("policy."), p
            assert p.message
            assert pointer_is_sound(value, p.pointer), (p, value)
        keys = [(pointer_key(p.pointer), p.code) for p in result.problems]
        assert keys == sorted(keys), "problems are not sorted by pointer"
    return result


@FUZZ
@given(json_values)
def test_fuzz_arbitrary_json_values(value: object) -> None:
    check_outcome(value)


@FUZZ
@given(python_values)
def test_fuzz_arbitrary_python_values(value: object) -> None:
    check_outcome(value)


@FUZZ
@given(st.lists(json_values, min_size=6, max_size=6))
def test_fuzz_policy_shaped_values(parts: list[object]) -> None:
    check_outcome(["policy", *parts])


def list_paths(value: object, path: tuple[int, ...] = ()) -> list[tuple[int, ...]]:
    out: list[tuple[int, ...]] = []
    if isinstance(value, list):
        out.append(path)
        for i, item in enumerate(value):
            out.extend(list_paths(item, (*path, i)))
    return out


def at(value: Any, path: tuple[int, ...]) -> Any:
    for i in path:
        value = value[i]
    return value


@st.composite
def mutated_policies(draw: st.DrawFn) -> object:
    value: Any = copy.deepcopy(draw(st.sampled_from([EXAMPLE, RICH])))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        paths = list_paths(value)
        if not paths:
            break
        target: list[Any] = at(value, draw(st.sampled_from(paths)))
        op = draw(st.sampled_from(["drop", "duplicate", "replace", "insert", "wrap"]))
        if not target:
            target.append(draw(json_values))
            continue
        i = draw(st.integers(min_value=0, max_value=len(target) - 1))
        if op == "drop":
            del target[i]
        elif op == "duplicate":
            target.insert(i, copy.deepcopy(target[i]))
        elif op == "replace":
            target[i] = draw(json_values)
        elif op == "insert":
            target.insert(i, draw(json_values))
        else:
            target[i] = [target[i]]
    return value


@FUZZ
@given(mutated_policies())
def test_fuzz_mutations_of_valid_policies(value: object) -> None:
    check_outcome(value)


@FUZZ
@given(mutated_policies())
def test_fuzz_text_and_value_agree(value: object) -> None:
    """admit_text(json.dumps(v)) decides exactly like admit(v)."""
    try:
        results = both_ways(value)
    except Exception as exc:  # catch-all: anything else is a bug
        pytest.fail(f"raised {type(exc).__name__}: {exc!r} for {value!r}")
    outcomes = [r.hash if isinstance(r, Policy) else r.to_json() for r in results]
    assert outcomes[0] == outcomes[1]


@FUZZ
@given(st.text(max_size=200) | st.binary(max_size=200))
def test_fuzz_arbitrary_text(text: str | bytes) -> None:
    try:
        admit_text(text)
    except PolicyError as err:
        assert err.problems
    except Exception as exc:  # catch-all: anything else is a bug
        pytest.fail(f"admit_text raised {type(exc).__name__}: {exc!r} for {text!r}")


def test_a_policy_is_a_function_of_its_hash() -> None:
    """`10.0` and `10` admit the same policy: same hash, same clauses, so every decision and
    record made under that hash reads the same whichever the caller wrote."""
    from router.policy.admit import admit

    def pol(limit: object) -> list[object]:
        return ["policy", ["ev_zero"], ["filter", ["<=", "output_price", limit]],
                ["rank", ["asc", "output_price"]], ["select", ["first"]], ["mutate"],
                ["fallback"]]

    as_float, as_int = admit(pol(10.0)), admit(pol(10))
    assert as_float.hash == as_int.hash
    assert as_float.filters == as_int.filters
    assert repr(as_float.filters) == repr(as_int.filters)
