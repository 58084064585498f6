"""Admission: policy JSON → `Policy` (typed, canonical, hashed), or every problem at once.

Nothing in a policy is ever evaluated as code: admission only reads JSON values and builds
dataclasses. Sizes are bounded (bytes, depth, nodes, list lengths, string lengths).
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any, cast

from router.common import jsonio
from router.common.problems import PolicyError, Problem, child_pointer, did_you_mean, quote
from router.policy.attributes import (
    ATTRIBUTES,
    CAPABILITIES,
    NUMERIC_FEATURES,
    RANK_METRICS,
    SET_FEATURES,
    STATUSES,
    Kind,
)
from router.policy.cost import filter_cost, too_complex
from router.policy.terms import (
    CMP_OPS,
    ORDER_OPS,
    SET_OPS,
    AllOf,
    AnyOf,
    Clause,
    Cmp,
    CmpOp,
    Evidence,
    Fallback,
    FeatureCmp,
    Label,
    Member,
    Mutation,
    Not,
    Policy,
    PredNot,
    RankKey,
    ReqPred,
    ReqRef,
    Scalar,
    SetOp,
    SetOpName,
    When,
)
from router.request.features import CALL_PARAMS

MAX_BYTES = 64 * 1024
MAX_DEPTH = 16
MAX_NODES = 2000
MAX_LIST = 256
MAX_STRING = 256
MAX_CASCADE = 16
MAX_RETRIES = 10
MAX_BACKOFF_MS = 60_000
MAX_TIMEOUT_MS = 600_000
FAIL_REASONS = ("error", "timeout", "rate_limit")
MUTABLE_PARAMS = CALL_PARAMS
FILTER_HEADS = (*CMP_OPS, "in", "not_in", *SET_OPS, "ev", "not", "any", "all", "when")
PARTS = ("policy", "EVIDENCE", "FILTER", "RANK", "SELECT", "MUTATE", "FALLBACK")


def admit_text(text: str | bytes) -> Policy:
    """Admit a policy given as JSON text (bounded in size)."""
    size = len(text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text)
    if size > MAX_BYTES:
        raise PolicyError(
            [Problem(code="policy.too_large", pointer="",
                     message=f"policy is {size} bytes; the limit is {MAX_BYTES}")]
        )
    try:
        value = jsonio.loads(text, "policy", max_depth=MAX_DEPTH + 1)
    except jsonio.JsonRefused as exc:
        code = "policy.too_deep" if exc.kind == "too_deep" else "policy.invalid_json"
        raise PolicyError([Problem(code=code, pointer="", message=exc.message)]) from None
    return admit(value)




def admit(value: object) -> Policy:
    """Admit a policy given as a parsed JSON value. Raises `PolicyError` with every problem."""
    return _Admission().run(value)


def canonical_json(value: object) -> str:
    """No whitespace, keys sorted, numbers in shortest round-trip form (integral floats as ints)."""
    return json.dumps(_canonical_numbers(value), separators=(",", ":"), sort_keys=True,
                      ensure_ascii=False, allow_nan=False)


def _canonical_numbers(value: object) -> object:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, list):
        return [_canonical_numbers(v) for v in value]
    if isinstance(value, dict):
        return {k: _canonical_numbers(v) for k, v in value.items()}
    return value


MAX_INT = 10**18


def _valid_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and (
        not isinstance(value, float) or math.isfinite(value)
    )


class _Admission:
    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.evidence: dict[str, dict[str, float]] = {}
        self.nodes = 0

    def add(self, code: str, pointer: str, message: str, hint: str | None = None) -> None:
        self.problems.append(Problem(code=code, pointer=pointer, message=message, hint=hint))

    # -- structure --------------------------------------------------------------------------

    def run(self, value: object) -> Policy:
        self._check_sizes(value, "", 0)
        if self.problems:
            raise PolicyError(self.problems)
        if not isinstance(value, list) or len(value) != 7 or value[0] != "policy":
            self._shape(value)
            raise PolicyError(self.problems)
        # Clauses are read from the canonical form, so a policy is a function of its hash
        # (`10.0` and `10` admit the same policy, and its records read the same).
        value = cast(list[object], _canonical_numbers(value))
        self.evidence = self._evidence(value[1], "/1")
        filters = self._filter(value[2], "/2")
        rank = self._rank(value[3], "/3")
        cascade = self._select(value[4], "/4")
        mutations = self._mutate(value[5], "/5")
        fallback = self._fallback(value[6], "/6")
        if self.problems:
            raise PolicyError(self.problems)
        costly = too_complex(filter_cost(filters))  # the derivation work it would cause
        if costly is not None:
            raise PolicyError([costly])
        canonical = canonical_json(value)
        return Policy(
            term=cast(list[object], json.loads(canonical)),
            canonical=canonical,
            hash=hashlib.sha256(canonical.encode()).hexdigest(),
            evidence=self.evidence,
            filters=filters,
            rank=rank,
            cascade=cascade,
            mutations=mutations,
            fallback=fallback,
        )

    def _check_sizes(self, value: object, pointer: str, depth: int) -> None:
        self.nodes += 1
        if self.nodes == MAX_NODES + 1:
            self.add("policy.too_large", "", f"policy has more than {MAX_NODES} JSON values")
        if depth > MAX_DEPTH:
            self.add("policy.too_deep", pointer, f"nested deeper than {MAX_DEPTH} levels")
            return
        if isinstance(value, str) and len(value) > MAX_STRING:
            self.add("policy.too_large", pointer,
                     f"string of {len(value)} characters; the limit is {MAX_STRING}")
        elif isinstance(value, str) and not _valid_unicode(value):
            self.add("policy.bad_value", pointer, "string is not valid Unicode (lone surrogate)")
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
            self.add("policy.bad_value", pointer, f"integer beyond ±{MAX_INT}")
        elif isinstance(value, float) and not math.isfinite(value):
            self.add("policy.bad_value", pointer, "numbers must be finite")
        elif isinstance(value, list | dict):
            if len(value) > MAX_LIST:
                self.add("policy.too_large", pointer,
                         f"{len(value)} elements; the limit is {MAX_LIST}")
                return
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(value, dict) and not isinstance(key, str):
                    self.add("policy.bad_value", pointer, "object keys must be strings")
                    continue
                if isinstance(key, str) and len(key) > MAX_STRING:
                    self.add("policy.too_large", pointer, "object key too long")
                if isinstance(key, str) and not _valid_unicode(key):
                    self.add("policy.bad_value", pointer, "object key is not valid Unicode")
                self._check_sizes(item, child_pointer(pointer, key), depth + 1)
        elif value is not None and not isinstance(value, bool | int | float | str):
            self.add("policy.bad_value", pointer, f"not a JSON value: {type(value).__name__}")

    def _shape(self, value: object) -> None:
        if not isinstance(value, list):
            self.add("policy.not_a_term", "", "a policy is a JSON array of seven elements",
                     'start with ["policy", EVIDENCE, FILTER, RANK, SELECT, MUTATE, FALLBACK]')
            return
        if not value or value[0] != "policy":
            head = quote(value[0]) if value else "nothing"
            self.add("policy.bad_head", "/0", f"expected `policy`, got `{head}`",
                     'a policy starts with the tag "policy"')
        if len(value) != 7:
            self.add("policy.arity", "", f"a policy has 7 elements, got {len(value)}",
                     "[\"policy\", EVIDENCE, FILTER, RANK, SELECT, MUTATE, FALLBACK]")

    def _term(self, value: object, pointer: str, expected: str) -> list[object] | None:
        if not isinstance(value, list) or not value or not isinstance(value[0], str):
            self.add("policy.not_a_term", pointer,
                     f"expected a term `[\"{expected}\", ...]`, got `{quote(value)}`")
            return None
        if value[0] != expected:
            self.add("policy.unknown_head", child_pointer(pointer, 0),
                     f"expected `{expected}`, got `{quote(value[0])}`",
                     did_you_mean(value[0], [expected]))
            return None
        return value

    # -- evidence ---------------------------------------------------------------------------

    def _evidence(self, value: object, pointer: str) -> dict[str, dict[str, float]]:
        if isinstance(value, list) and value == ["ev_zero"]:
            return {}
        if isinstance(value, list) and value and value[0] == "ev_zero":
            self.add("policy.arity", pointer, "`ev_zero` takes no arguments")
            return {}
        term = self._term(value, pointer, "ev")
        if term is None:
            if isinstance(value, list) and value and isinstance(value[0], str):
                self.problems[-1] = self.problems[-1].model_copy(
                    update={"hint": 'use ["ev_zero"] or ["ev", ["score", METRIC, {MODEL: N}]]'})
            return {}
        out: dict[str, dict[str, float]] = {}
        for i, item in enumerate(term[1:], start=1):
            p = child_pointer(pointer, i)
            if not (isinstance(item, list) and len(item) == 3 and item[0] == "score"):
                self.add("policy.bad_evidence", p,
                         "expected `[\"score\", METRIC, {MODEL: NUMBER}]`")
                continue
            metric, scores = item[1], item[2]
            if not isinstance(metric, str) or not metric:
                self.add("policy.bad_evidence", child_pointer(p, 1), "metric must be a string")
                continue
            if metric in out:
                self.add("policy.duplicate", child_pointer(p, 1), f"metric `{metric}` given twice")
                continue
            if not isinstance(scores, dict):
                self.add("policy.bad_evidence", child_pointer(p, 2),
                         "scores must be an object of model → number")
                continue
            table: dict[str, float] = {}
            for model, score in scores.items():
                if not _is_number(score):
                    self.add("policy.type_mismatch", child_pointer(child_pointer(p, 2), model),
                             f"score for `{quote(model)}` must be a number")
                else:
                    table[model] = float(score)
            out[metric] = table
        return out

    # -- filter -----------------------------------------------------------------------------

    def _filter(self, value: object, pointer: str) -> tuple[Clause, ...]:
        term = self._term(value, pointer, "filter")
        if term is None:
            return ()
        clauses = [self._clause(c, child_pointer(pointer, i)) for i, c in enumerate(term[1:], 1)]
        return tuple(c for c in clauses if c is not None)

    def _clause(self, value: object, pointer: str) -> Clause | None:
        if not isinstance(value, list) or not value or not isinstance(value[0], str):
            self.add("policy.not_a_term", pointer, f"expected a clause term, got `{quote(value)}`",
                     'e.g. [">=", "context_window", 200000]')
            return None
        head, args = value[0], value[1:]
        hp = child_pointer(pointer, 0)
        if head in CMP_OPS:
            return self._cmp(cast(Any, head), args, pointer)
        if head in ("in", "not_in"):
            return self._member(head == "not_in", args, pointer)
        if head in SET_OPS:
            return self._setop(cast(SetOpName, head), args, pointer)
        if head == "ev":
            return self._ev_clause(args, pointer)
        if head == "not":
            if not self._arity(args, 1, pointer, "not", "[\"not\", CLAUSE]"):
                return None
            child = self._clause(args[0], child_pointer(pointer, 1))
            return Not(pointer, child) if child else None
        if head in ("any", "all"):
            if not args:
                self.add("policy.arity", pointer, f"`{head}` needs at least one clause")
                return None
            kids = [self._clause(c, child_pointer(pointer, i)) for i, c in enumerate(args, 1)]
            if any(k is None for k in kids):
                return None
            children = tuple(cast(list[Clause], kids))
            return AnyOf(pointer, children) if head == "any" else AllOf(pointer, children)
        if head == "when":
            if not self._arity(args, 2, pointer, "when", "[\"when\", REQ_PRED, CLAUSE]"):
                return None
            pred = self._req_pred(args[0], child_pointer(pointer, 1))
            child = self._clause(args[1], child_pointer(pointer, 2))
            return When(pointer, pred, child) if pred and child else None
        self.add("policy.unknown_head", hp, f"unknown clause `{quote(head)}`",
                 did_you_mean(head, FILTER_HEADS))
        return None

    def _arity(self, args: list[object], n: int, pointer: str, head: str, shape: str) -> bool:
        if len(args) != n:
            self.add("policy.arity", pointer,
                     f"`{head}` takes {n} argument{'s' if n > 1 else ''}, got {len(args)}", shape)
            return False
        return True

    def _attr(self, value: object, pointer: str) -> str | None:
        if not isinstance(value, str):
            self.add("policy.not_an_attribute", pointer,
                     f"expected an attribute name, got `{quote(value)}`")
            return None
        if value not in ATTRIBUTES:
            self.add("policy.unknown_attribute", pointer, f"unknown attribute `{quote(value)}`",
                     did_you_mean(value, ATTRIBUTES))
            return None
        return value

    def _req_ref(self, value: object) -> tuple[bool, str | None]:
        """(is a ["req", X] term, X if it is a string)."""
        if isinstance(value, list) and len(value) == 2 and value[0] == "req":
            return True, value[1] if isinstance(value[1], str) else None
        return False, None

    def _cmp(self, op: CmpOp, args: list[object], pointer: str) -> Clause | None:
        if not self._arity(args, 2, pointer, op, f"[\"{op}\", ATTR, VALUE]"):
            return None
        attr = self._attr(args[0], child_pointer(pointer, 1))
        if attr is None:
            return None
        spec = ATTRIBUTES[attr]
        vp = child_pointer(pointer, 2)
        value = args[1]
        if spec.kind is Kind.SET:
            self.add("policy.type_mismatch", child_pointer(pointer, 1),
                     f"`{attr}` is a set; `{op}` compares scalars",
                     "use has, has_all, has_any or has_none")
            return None
        if op in ORDER_OPS and spec.kind is not Kind.NUMBER:
            self.add("policy.type_mismatch", child_pointer(pointer, 0),
                     f"`{op}` orders numbers; `{attr}` is a {spec.kind.value}", "use == or !=")
            return None
        is_req, feature = self._req_ref(value)
        if is_req:
            if feature not in NUMERIC_FEATURES:
                self.add("policy.bad_feature", child_pointer(vp, 1),
                         f"`{quote(feature)}` is not a numeric request feature",
                         did_you_mean(str(feature), NUMERIC_FEATURES)
                         or f"one of {', '.join(NUMERIC_FEATURES)}")
                return None
            if spec.kind is not Kind.NUMBER:
                self.add("policy.type_mismatch", vp,
                         f"`{attr}` is a {spec.kind.value}; `{feature}` is a number")
                return None
            return Cmp(pointer, op, attr, ReqRef(feature))
        if not self._scalar_fits(attr, value, vp):
            return None
        return Cmp(pointer, op, attr, cast(Scalar, value))

    def _scalar_fits(self, attr: str, value: object, pointer: str) -> bool:
        kind = ATTRIBUTES[attr].kind
        ok = (
            (kind is Kind.NUMBER and _is_number(value))
            or (kind is Kind.STRING and isinstance(value, str))
            or (kind is Kind.BOOL and isinstance(value, bool))
        )
        if not ok:
            self.add("policy.type_mismatch", pointer,
                     f"`{attr}` is a {kind.value}; got `{quote(value)}`")
            return False
        if attr == "status" and value not in STATUSES:
            self.add("policy.bad_value", pointer, f"unknown status `{quote(value)}`",
                     did_you_mean(cast(str, value), STATUSES) or f"one of {', '.join(STATUSES)}")
            return False
        return True

    def _member(self, negated: bool, args: list[object], pointer: str) -> Clause | None:
        head = "not_in" if negated else "in"
        if not self._arity(args, 2, pointer, head, f"[\"{head}\", ATTR, [VALUE, ...]]"):
            return None
        attr = self._attr(args[0], child_pointer(pointer, 1))
        if attr is None:
            return None
        if ATTRIBUTES[attr].kind is Kind.SET:
            self.add("policy.type_mismatch", child_pointer(pointer, 1),
                     f"`{attr}` is a set; `{head}` tests a scalar", "use has_any or has_none")
            return None
        values = args[1]
        lp = child_pointer(pointer, 2)
        if not isinstance(values, list) or not values:
            self.add("policy.type_mismatch", lp, f"`{head}` needs a non-empty list of values")
            return None
        good = all(self._scalar_fits(attr, v, child_pointer(lp, i)) for i, v in enumerate(values))
        if not good:
            return None
        return Member(pointer, negated, attr, tuple(cast(list[Scalar], values)))

    def _setop(self, op: SetOpName, args: list[object], pointer: str) -> Clause | None:
        shape = f"[\"{op}\", ATTR, {'VALUE' if op == 'has' else '[VALUE, ...]'}]"
        if not self._arity(args, 2, pointer, op, shape):
            return None
        attr = self._attr(args[0], child_pointer(pointer, 1))
        if attr is None:
            return None
        if ATTRIBUTES[attr].kind is not Kind.SET:
            self.add("policy.type_mismatch", child_pointer(pointer, 1),
                     f"`{attr}` is a {ATTRIBUTES[attr].kind.value}; `{op}` tests a set",
                     "use ==, in or not_in")
            return None
        vp = child_pointer(pointer, 2)
        is_req, feature = self._req_ref(args[1])
        if is_req:
            if op == "has" or feature not in SET_FEATURES:
                self.add("policy.bad_feature", vp,
                         f"`{op}` cannot take `{quote(feature)}` from the request",
                         f"has_all/has_any/has_none accept [\"req\", F], F one of "
                         f"{', '.join(SET_FEATURES)}")
                return None
            return SetOp(pointer, op, attr, ReqRef(feature))
        items = [args[1]] if op == "has" else args[1]
        if not isinstance(items, list) or (op != "has" and not items):
            self.add("policy.type_mismatch", vp, f"`{op}` needs a non-empty list of strings")
            return None
        ok = True
        for i, item in enumerate(items):
            ip = vp if op == "has" else child_pointer(vp, i)
            if not isinstance(item, str):
                self.add("policy.type_mismatch", ip, f"`{attr}` holds strings; got `{quote(item)}`")
                ok = False
            elif attr == "capabilities" and item not in CAPABILITIES:
                self.add("policy.bad_value", ip, f"unknown capability `{quote(item)}`",
                         did_you_mean(item, CAPABILITIES) or f"one of {', '.join(CAPABILITIES)}")
                ok = False
        return SetOp(pointer, op, attr, tuple(cast(list[str], items))) if ok else None

    def _ev_clause(self, args: list[object], pointer: str) -> Clause | None:
        if not self._arity(args, 3, pointer, "ev", "[\"ev\", METRIC, CMP, NUMBER]"):
            return None
        metric, op, number = args
        ok = True
        if not isinstance(metric, str) or metric not in self.evidence:
            self.add("policy.unknown_metric", child_pointer(pointer, 1),
                     f"no evidence declared for metric `{quote(metric)}`",
                     did_you_mean(str(metric), self.evidence)
                     or 'declare it in EVIDENCE: ["ev", ["score", METRIC, {MODEL: N}]]')
            ok = False
        if op not in CMP_OPS:
            self.add("policy.bad_operator", child_pointer(pointer, 2),
                     f"unknown comparison `{quote(op)}`", f"one of {' '.join(CMP_OPS)}")
            ok = False
        if not _is_number(number):
            self.add("policy.type_mismatch", child_pointer(pointer, 3),
                     f"evidence compares numbers; got `{quote(number)}`")
            ok = False
        if not ok:
            return None
        return Evidence(pointer, cast(str, metric), cast(CmpOp, op), float(cast(float, number)))

    def _req_pred(self, value: object, pointer: str) -> ReqPred | None:
        is_req, label = self._req_ref(value)
        if is_req:
            if label is None or not label:
                self.add("policy.bad_feature", child_pointer(pointer, 1),
                         "a request label is a non-empty string")
                return None
            return Label(pointer, label)
        if isinstance(value, list) and value and value[0] == "not":
            if not self._arity(value[1:], 1, pointer, "not", "[\"not\", REQ_PRED]"):
                return None
            child = self._req_pred(value[1], child_pointer(pointer, 1))
            return PredNot(pointer, child) if child else None
        if isinstance(value, list) and len(value) == 3 and value[0] in CMP_OPS:
            is_feature, feature = self._req_ref(value[1])
            if not is_feature or feature not in NUMERIC_FEATURES:
                self.add("policy.bad_feature", child_pointer(pointer, 1),
                         "expected [\"req\", FEATURE], FEATURE one of "
                         + ", ".join(NUMERIC_FEATURES))
                return None
            if not _is_number(value[2]):
                self.add("policy.type_mismatch", child_pointer(pointer, 2),
                         f"`{feature}` is a number; got `{quote(value[2])}`")
                return None
            return FeatureCmp(pointer, cast(CmpOp, value[0]), feature,
                              float(cast(float, value[2])))
        self.add("policy.bad_request_predicate", pointer,
                 f"`{quote(value)}` is not a request predicate",
                 '["req", LABEL], ["not", PRED] or [CMP, ["req", FEATURE], NUMBER]')
        return None

    # -- rank, select, mutate, fallback -----------------------------------------------------

    def _rank(self, value: object, pointer: str) -> tuple[RankKey, ...]:
        term = self._term(value, pointer, "rank")
        if term is None:
            return ()
        keys: list[RankKey] = []
        for i, key in enumerate(term[1:], start=1):
            p = child_pointer(pointer, i)
            if not (isinstance(key, list) and len(key) == 2 and key[0] in ("asc", "desc")):
                self.add("policy.bad_rank_key", p, f"expected [\"asc\"|\"desc\", METRIC], got "
                         f"`{quote(key)}`")
                continue
            metric = key[1]
            mp = child_pointer(p, 1)
            if isinstance(metric, list) and len(metric) == 2 and metric[0] == "ev":
                if not isinstance(metric[1], str) or metric[1] not in self.evidence:
                    self.add("policy.unknown_metric", child_pointer(mp, 1),
                             f"no evidence declared for metric `{quote(metric[1])}`",
                             did_you_mean(str(metric[1]), self.evidence))
                    continue
                keys.append(RankKey(p, key[0] == "desc", metric[1], evidence=True))
            elif isinstance(metric, str) and metric in RANK_METRICS:
                keys.append(RankKey(p, key[0] == "desc", metric))
            else:
                self.add("policy.bad_metric", mp, f"`{quote(metric)}` is not a numeric metric",
                         did_you_mean(str(metric), RANK_METRICS)
                         or f"one of {', '.join(RANK_METRICS)} or [\"ev\", NAME]")
        return tuple(keys)

    def _select(self, value: object, pointer: str) -> int:
        term = self._term(value, pointer, "select")
        if term is None:
            return 0
        if len(term) < 2 or term[1] != ["first"]:
            self.add("policy.bad_select", child_pointer(pointer, 1), "expected [\"first\"]",
                     '["select", ["first"], ["cascade", N]]')
            return 0
        if len(term) == 2:
            return 0
        cascade = term[2]
        if len(term) > 3 or not (isinstance(cascade, list) and len(cascade) == 2
                                 and cascade[0] == "cascade"):
            self.add("policy.bad_select", child_pointer(pointer, 2), "expected [\"cascade\", N]")
            return 0
        n = cascade[1]
        if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= MAX_CASCADE:
            self.add("policy.bad_value", child_pointer(child_pointer(pointer, 2), 1),
                     f"cascade length must be an integer 0..{MAX_CASCADE}, got `{quote(n)}`")
            return 0
        return n

    def _mutate(self, value: object, pointer: str) -> tuple[Mutation, ...]:
        term = self._term(value, pointer, "mutate")
        if term is None:
            return ()
        out: list[Mutation] = []
        for i, op in enumerate(term[1:], start=1):
            p = child_pointer(pointer, i)
            if op == ["clamp_max_tokens"]:
                out.append(Mutation(p, "clamp_max_tokens"))
                continue
            if not (isinstance(op, list) and len(op) == 3 and op[0] in ("set", "default")):
                head = op[0] if isinstance(op, list) and op else op
                self.add("policy.bad_mutation", p, f"unknown mutation `{quote(head)}`",
                         did_you_mean(str(head), ("clamp_max_tokens", "set", "default"))
                         or '["clamp_max_tokens"], ["set", PARAM, VALUE] or ["default", ...]')
                continue
            param, val = op[1], op[2]
            if param not in MUTABLE_PARAMS:
                self.add("policy.bad_param", child_pointer(p, 1),
                         f"`{quote(param)}` cannot be mutated",
                         did_you_mean(str(param), MUTABLE_PARAMS)
                         or f"one of {', '.join(MUTABLE_PARAMS)}")
                continue
            if not (val is None or isinstance(val, bool | str) or _is_number(val)):
                self.add("policy.type_mismatch", child_pointer(p, 2),
                         "a mutation value is a number, string or bool")
                continue
            if param in ("max_tokens", "max_completion_tokens") and not (
                isinstance(val, int) and not isinstance(val, bool) and val > 0
            ):
                self.add("policy.type_mismatch", child_pointer(p, 2),
                         f"`{param}` must be a positive integer, got `{quote(val)}`")
                continue
            out.append(Mutation(p, cast(Any, op[0]), cast(str, param), cast(Scalar, val)))
        return tuple(out)

    def _fallback(self, value: object, pointer: str) -> Fallback:
        term = self._term(value, pointer, "fallback")
        if term is None:
            return Fallback()
        seen: set[str] = set()
        fb: dict[str, Any] = {}
        for i, part in enumerate(term[1:], start=1):
            p = child_pointer(pointer, i)
            head = part[0] if isinstance(part, list) and part else None
            if head not in ("on", "retry", "timeout_ms", "next", "fail"):
                self.add("policy.bad_fallback", p, f"unknown fallback part `{quote(head)}`",
                         did_you_mean(str(head), ("on", "retry", "timeout_ms", "next", "fail")))
                continue
            slot = "then" if head in ("next", "fail") else str(head)
            if slot in seen:
                self.add("policy.duplicate", p, f"`{head}` given twice in fallback")
                continue
            seen.add(slot)
            args = cast(list[object], part)[1:]
            if head == "on":
                bad = [a for a in args if a not in FAIL_REASONS]
                if not args or bad:
                    self.add("policy.bad_value", p,
                             f"failure reasons are {', '.join(FAIL_REASONS)}"
                             + (f"; got `{quote(bad[0])}`" if bad else ""))
                    continue
                fb["on"] = tuple(dict.fromkeys(cast(list[str], args)))
            elif head == "retry":
                if not self._ints(args, 2, (MAX_RETRIES, MAX_BACKOFF_MS), p, "[\"retry\", N, MS]"):
                    continue
                fb["retries"], fb["backoff_ms"] = args
            elif head == "timeout_ms":
                if not self._ints(args, 1, (MAX_TIMEOUT_MS,), p, "[\"timeout_ms\", MS]"):
                    continue
                if args[0] == 0:
                    self.add("policy.bad_value", child_pointer(p, 1), "timeout must be positive")
                    continue
                fb["timeout_ms"] = args[0]
            else:
                if args:
                    self.add("policy.arity", p, f"`{head}` takes no arguments")
                    continue
                fb["then"] = head
        return Fallback(**fb)

    def _ints(self, args: list[object], n: int, maxima: tuple[int, ...], pointer: str,
              shape: str) -> bool:
        if len(args) != n:
            self.add("policy.arity", pointer, f"expected {shape}")
            return False
        ok = True
        for i, (a, hi) in enumerate(zip(args, maxima, strict=True), start=1):
            if not isinstance(a, int) or isinstance(a, bool) or not 0 <= a <= hi:
                self.add("policy.bad_value", child_pointer(pointer, i),
                         f"expected an integer 0..{hi}, got `{quote(a)}`")
                ok = False
        return ok
