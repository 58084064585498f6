"""Lint: what a policy does over a catalog, found before it ships (`unhardcoded policy lint`).

Every finding is read off the derivation the router decides with (`router.engine.derive`: the
compiled program run over the catalog's facts), never from a second reading of the clauses:
for each clause, the offerings whose derived verdict is `T` (passes whatever the request),
`F`/`U` (fails whatever the request) or `R` (residual: depends on the request, live state or
the decision time). These sets are bitsets over the offerings, so the pairwise checks cost a
few integer operations per pair.

**The catalog lint judges** is the offerings the built-in clauses do not reject from catalog
facts alone (those with no context window, max output or capabilities can never be admitted),
minus the ones an operator overlay disabled. "Every offering" means every one of those.

**Residual verdicts** are judged only as far as catalog facts prove:

- a clause *rejects every offering* when no offering is `T` or `R` for it: all fail whatever
  the request. One that is `R` for some offering is not reported, even if most requests fail it;
- a clause *admits every offering* only when every one is `T`; an `R` could still fail;
- a top-level `["when", P, C]` is judged twice: as a whole (`T` where `C` is, otherwise `R`),
  and its clause `C` under the condition `P` — when `C` rejects every offering, a request for
  which `P` holds gets nothing; a contradiction with `C` holds whenever `P` does (and `P` holds
  together with the other clause's condition, if any);
- two clauses *contradict* when no offering is `T`/`R` for both; B is *implied* by A when every
  offering `T`/`R` for A is `T` for B. Both hold **over this catalog**, not in general.

**Request predicates** (`when`) are reasoned over the request features' domains: `input_tokens`
is a whole number ≥ 0, `max_output_tokens` a whole number ≥ 1 or unknown (fixed, or bounded, by
a policy `set`), labels any string a request may carry (`LABEL`, at most `MAX_LABELS`).

**Rank keys and the cascade.** Whether a key breaks ties, and how often it is unknown, is read
from `decide`'s ranking of a representative request (`REPRESENTATIVE_REQUEST`: one short user
message, no labels, live state not consulted) — `est_cost` needs a request. Keys over live
metrics (`latency_ms`, `error_rate`) are not judged: a dry run does not know them. The cascade is
compared with the offerings catalog facts can admit at all (an upper bound for every request).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from router.catalog.offerings import Catalog, Offering
from router.common.problems import (
    LABEL,
    Problem,
    Suggester,
    child_pointer,
    pointer_key,
    pointer_tokens,
    quote,
)
from router.decide.decider import Decider, Ranked
from router.decide.evaluate import Evaluator
from router.engine.compile import Ruleset
from router.engine.derive import Derivation, derive
from router.engine.program import Node
from router.live.state import LiveState, with_disabled
from router.policy.attributes import ATTRIBUTES, Kind, Source
from router.policy.compare import COMPARE, NEGATE
from router.policy.terms import (
    AllOf,
    AnyOf,
    Clause,
    Cmp,
    Label,
    Member,
    Not,
    Policy,
    PredNot,
    RankKey,
    ReqPred,
    SetOp,
    When,
    walk,
)
from router.policy.truth import Truth
from router.request.features import MAX_LABELS, features_of

REPRESENTATIVE_REQUEST = {"messages": [{"role": "user", "content": "Hello! Can you help me?"}]}
REPRESENTATIVE = "a representative request (one short user message)"
BUILTIN = "builtin:"
CASCADE_POINTER = "/4/2"
# Attributes whose string values a policy may name and a catalog holds (status is checked at
# admission; capabilities too, but a capability no offering has is worth a finding here).
_VALUED = ("id", "model", "provider", "region", "tags", "capabilities")


# A finding is a `Problem` (code, pointer, message, hint): `line()` prints it, `model_dump()`
# is its JSON.
Finding = Problem


def lint(policy: Policy, catalog: Catalog, *, at: dt.datetime | None = None,
         ruleset: Ruleset | None = None) -> list[Finding]:
    """Derive `policy` over `catalog` (in this process) and lint the derivation."""
    return lint_derivation(derive(policy, catalog, ruleset), at=at)


def lint_derivation(derivation: Derivation, *, at: dt.datetime | None = None) -> list[Finding]:
    """Every finding for a derivation, sorted by pointer then code. `at` is the decision time
    of the representative request (default: now), which settles `deprecated`."""
    found = _Lint(derivation, at or dt.datetime.now(dt.UTC)).run()
    return sorted(found, key=lambda f: (pointer_key(f.pointer), f.code, f.message))


# -- request predicates ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Lit:
    """A request predicate as one literal: a label present/absent, or a feature comparison
    (a `not` flips the polarity or the comparison; an unknown feature satisfies neither)."""

    pointer: str
    label: str = ""
    present: bool = True
    feature: str = ""
    op: str = "=="
    number: float = 0.0

    def negated(self) -> _Lit:
        if self.feature:
            return _Lit(self.pointer, feature=self.feature, op=NEGATE[self.op], number=self.number)
        return _Lit(self.pointer, label=self.label, present=not self.present)


def literal(pred: ReqPred, negate: bool = False) -> _Lit:
    if isinstance(pred, PredNot):
        return literal(pred.child, not negate)
    if isinstance(pred, Label):
        return _Lit(pred.pointer, label=pred.name, present=not negate)
    lit = _Lit(pred.pointer, feature=pred.feature, op=pred.op, number=pred.number)
    return lit.negated() if negate else lit


@dataclass(frozen=True)
class _Domains:
    """The whole numbers each numeric request feature can take: [low, high] (high None: no
    bound)."""

    bounds: dict[str, tuple[int, int | None]]

    @staticmethod
    def of(policy: Policy) -> _Domains:
        forced = policy.set_max_tokens()
        out: tuple[int, int | None] = (1, None)
        if forced is not None:  # a `set` fixes the ask; a clamp can only lower it
            out = (1, forced) if policy.clamps_max_tokens else (forced, forced)
        return _Domains({"input_tokens": (0, None), "max_output_tokens": out})

    def text(self, feature: str) -> str:
        low, high = self.bounds[feature]
        if low == high:
            return f"`{feature}` is always {low} (the policy sets it)"
        span = f"a whole number ≥ {low}" + (f" and ≤ {high}" if high is not None else "")
        unknown = " (or unknown)" if feature == "max_output_tokens" else ""
        return f"`{feature}` is {span}{unknown}"

    def satisfiable(self, lits: Iterable[_Lit]) -> bool:
        """Whether some request makes every literal true."""
        labels: dict[str, set[bool]] = {}
        cmps: dict[str, list[_Lit]] = {}
        for lit in lits:
            if lit.feature:
                cmps.setdefault(lit.feature, []).append(lit)
                continue
            if lit.present and not LABEL.fullmatch(lit.label):
                return False  # no request can carry this label
            labels.setdefault(lit.label, set()).add(lit.present)
        if any(len(v) == 2 for v in labels.values()):
            return False
        if sum(1 for v in labels.values() if True in v) > MAX_LABELS:
            return False
        return all(self._feature_satisfiable(f, c) for f, c in cmps.items())

    def _feature_satisfiable(self, feature: str, cmps: list[_Lit]) -> bool:
        """Comparisons of one whole-number feature with constants hold together iff they hold
        at one of: the domain's bounds, and the whole numbers next to each constant (the set
        they allow is a union of intervals with the constants as ends)."""
        low, high = self.bounds[feature]
        points = {low} if high is None else {low, high}
        for c in cmps:
            base = math.floor(c.number)
            points.update((base - 1, base, base + 1, base + 2))
        for x in points:
            if x < low or (high is not None and x > high):
                continue
            if all(COMPARE[c.op](x, c.number) for c in cmps):
                return True
        return False


# -- the analysis ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Judged:
    """A top-level clause's sets (bit i: the i-th offering lint judges): `true` passes it
    whatever the request, `maybe` may pass (`T` or `R`). For a top-level `when`, `body` is its
    clause, judged under `condition`."""

    node: Node
    true: int
    maybe: int
    body: str
    condition: tuple[_Lit, ...]
    body_maybe: int


class _Lint:
    def __init__(self, derivation: Derivation, at: dt.datetime) -> None:
        self.d = derivation
        self.at = at
        self.policy = derivation.policy
        self.catalog = derivation.catalog
        self.evaluator = Evaluator(derivation)
        self.domains = _Domains.of(self.policy)
        builtins = [n.pointer for n in derivation.top_nodes if n.pointer.startswith(BUILTIN)]
        disabled = self.catalog.disabled
        self.universe: list[Offering] = [
            o for o in self.catalog
            if o.id not in disabled and all(
                self._truth(b, o.id) in (Truth.T, Truth.R) for b in builtins)]
        self.full = (1 << len(self.universe)) - 1
        self.findings: list[Finding] = []

    def add(self, code: str, pointer: str, message: str, hint: str | None = None) -> None:
        self.findings.append(Problem(code=code, pointer=pointer, message=message, hint=hint))

    def term(self, pointer: str) -> str:
        """The clause at `pointer` as the policy wrote it, quoted and cut to a short line."""
        return f"`{quote(json.dumps(_raw(self.policy, pointer), ensure_ascii=False))}`"

    def _truth(self, pointer: str, offering_id: str) -> Truth:
        found = self.d.verdicts.get(pointer, {}).get(offering_id)
        return Truth.U if found is None else found[0]

    def masks(self, pointer: str) -> tuple[int, int]:
        """(offerings `T` for the node, offerings `T` or `R`) as bitsets over the universe."""
        per = self.d.verdicts.get(pointer, {})
        true = ["0"] * len(self.universe)
        maybe = ["0"] * len(self.universe)
        last = len(self.universe) - 1
        for i, o in enumerate(self.universe):
            found = per.get(o.id)
            truth = Truth.U if found is None else found[0]
            if truth == Truth.T:
                true[last - i] = maybe[last - i] = "1"
            elif truth == Truth.R:
                maybe[last - i] = "1"
        return int("".join(true) or "0", 2), int("".join(maybe) or "0", 2)

    def first(self, bits: int) -> Offering:
        return self.universe[(bits & -bits).bit_length() - 1]

    def run(self) -> list[Finding]:
        judged = [self.judge(n) for n in self.d.top_nodes if not n.pointer.startswith(BUILTIN)]
        admitted = self.admitted()
        if not admitted:
            self.nothing_admitted()
        if self.universe:
            for j in judged:
                self.single(j)
            self.contradictions(judged)
            self.implications(judged)
        self.unknown_values()
        self.request_predicates()
        if admitted:
            self.cascade(len(admitted))
            self.rank_keys()
        return self.findings

    def judge(self, node: Node) -> _Judged:
        true, maybe = self.masks(node.pointer)
        clause = node.clause
        if isinstance(clause, When):
            body = node.children[1]
            return _Judged(node, true, maybe, body, (literal(clause.pred),),
                           self.masks(body)[1])
        return _Judged(node, true, maybe, node.pointer, (), maybe)

    def admitted(self) -> list[Offering]:
        """The offerings catalog facts can admit (candidates of the derivation, not disabled)."""
        rejected = self.d.rejected
        return [o for o in self.universe if o.id not in rejected]

    # -- per clause and pairs ----------------------------------------------------------------

    def nothing_admitted(self) -> None:
        if not self.universe:
            self.add("lint.admits_nothing", "/2",
                     f"the built-in clauses reject every offering of the catalog "
                     f"({len(self.catalog)}, {len(self.catalog.disabled)} disabled): the policy "
                     f"admits nothing, whatever the request",
                     "offerings need a context window, a max output and capabilities")
            return
        self.add("lint.admits_nothing", "/2",
                 f"no offering in the catalog passes every clause ({len(self.universe)} "
                 f"judged): the policy admits nothing, whatever the request",
                 "see the other findings; `unhardcoded route` names each rejection")

    def single(self, j: _Judged) -> None:
        ptr = j.node.pointer
        n = len(self.universe)
        if j.true == self.full:
            self.add("lint.admits_all", ptr,
                     f"{self.term(ptr)} admits every offering in this catalog (all {n}): "
                     f"redundant here",
                     "remove it, or keep it as a guard if the catalog may change")
        if j.body_maybe != 0 or not self.domains.satisfiable(j.condition):
            return
        example = self.first(self.full)
        why = self.evaluator.reason(j.body, example, None)
        if j.condition:
            self.add("lint.rejects_all", j.body,
                     f"when {_pred_text(j.condition)}, {self.term(j.body)} rejects every "
                     f"offering in this catalog (all {n}), e.g. `{example.id}`: {why}",
                     "requests for which the `when` holds get nothing; relax the clause")
        else:
            self.add("lint.rejects_all", ptr,
                     f"{self.term(ptr)} rejects every offering in this catalog (all {n}), "
                     f"e.g. `{example.id}`: {why}",
                     "relax or remove it; `unhardcoded explain --model ID` shows each reason")

    def contradictions(self, judged: list[_Judged]) -> None:
        """B contradicts an earlier A: nothing passes both (reported once per clause, at B)."""
        for b_i, b in enumerate(judged):
            if b.body_maybe == 0:
                continue
            for a in judged[:b_i]:
                if a.body_maybe == 0 or a.body_maybe & b.body_maybe:
                    continue
                condition = a.condition + b.condition
                if not self.domains.satisfiable(condition):
                    continue
                when = f"when {_pred_text(condition)}, " if condition else ""
                this, other = self.term(b.body), self.term(a.body)
                self.add("lint.contradiction", b.node.pointer,
                         f"{when}{this} contradicts {a.body} {other} over this catalog: "
                         f"no offering passes both",
                         "the policy admits nothing" + (" for those requests" if condition
                                                        else "") + "; relax one of them")
                break

    def implications(self, judged: list[_Judged]) -> None:
        """B is implied by A (A ≠ B) when every offering that may pass A surely passes B. For
        two equivalent clauses only the later one is reported. Once per clause, at B, naming
        the implying clause that passes the most offerings (the closest to B)."""
        sizes = [a.maybe.bit_count() for a in judged]
        for b_i, b in enumerate(judged):
            if b.true == self.full:
                continue  # admits_all says more
            best: int | None = None
            for a_i, a in enumerate(judged):
                if a_i == b_i or a.maybe == 0 or a.maybe & ~b.true:
                    continue
                if not (b.maybe & ~a.true) and b_i < a_i:
                    continue  # equivalent: reported at the later one
                if best is None or sizes[a_i] > sizes[best]:
                    best = a_i
            if best is None:
                continue
            a = judged[best]
            this, other = self.term(b.node.pointer), self.term(a.node.pointer)
            self.add("lint.implied", b.node.pointer,
                     f"{this} is implied by {a.node.pointer} {other} over this catalog: "
                     f"every offering that passes {a.node.pointer} ({sizes[best]}) passes "
                     f"it too",
                     "redundant over this catalog; remove it unless it guards against "
                     "catalog changes")

    # -- values and request predicates -------------------------------------------------------

    def unknown_values(self) -> None:
        """String values no offering has: a typo, or a provider/region not in this catalog."""
        values: dict[str, set[str]] = {}
        suggest: dict[str, Suggester] = {}

        def check(attr: str, value: object, pointer: str) -> None:
            if attr not in _VALUED or not isinstance(value, str):
                return
            if attr not in values:
                values[attr] = set(_catalog_values(self.catalog, attr))
            if value in values[attr]:
                return
            if attr not in suggest:
                suggest[attr] = Suggester(sorted(values[attr]))
            name = {"tags": "tag", "capabilities": "capability"}.get(attr, attr)
            self.add("lint.unknown_value", pointer,
                     f"no offering in this catalog has {name} `{quote(value)}`",
                     suggest[attr].hint(value) or "check the spelling, or the catalog in use")

        for top in self.policy.filters:
            for clause in walk(top):
                for attr, value, pointer in _named_values(clause):
                    check(attr, value, pointer)
        for pointer, model in _evidence_models(self.policy):
            check("model", model, pointer)

    def request_predicates(self) -> None:
        for top in self.policy.filters:
            self._preds(top, ())

    def _preds(self, clause: Clause, enclosing: tuple[_Lit, ...]) -> None:
        if isinstance(clause, Not):
            self._preds(clause.child, enclosing)
        elif isinstance(clause, AnyOf | AllOf):
            for c in clause.children:
                self._preds(c, enclosing)
        elif isinstance(clause, When):
            lit = literal(clause.pred)
            text = json.dumps(_raw(self.policy, clause.pred.pointer), ensure_ascii=False)
            where = self.domains.text(lit.feature) if lit.feature else (
                "a request label is 1-64 letters, digits or `_.:-`")
            if not self.domains.satisfiable((lit,)):
                self.add("lint.when_unsatisfiable", clause.pred.pointer,
                         f"no request satisfies `{quote(text)}` ({where}): the clause at "
                         f"{clause.child.pointer} never applies",
                         "fix the predicate, or remove the `when` and its clause")
            elif not self.domains.satisfiable((*enclosing, lit)):
                self.add("lint.when_unsatisfiable", clause.pred.pointer,
                         f"no request satisfies `{quote(text)}` together with the enclosing "
                         f"`when` ({_pred_text(enclosing)}): the clause at "
                         f"{clause.child.pointer} never applies",
                         "fix the predicate, or remove the `when` and its clause")
            elif lit.feature and not self.domains.satisfiable((lit.negated(),)):
                self.add("lint.when_always_true", clause.pred.pointer,
                         f"every request satisfies `{quote(text)}` ({where}): the `when` "
                         f"changes nothing",
                         f"write the clause at {clause.child.pointer} on its own")
            self._preds(clause.child, (*enclosing, lit))

    # -- select and rank ---------------------------------------------------------------------

    def cascade(self, admissible: int) -> None:
        n = self.policy.cascade
        if n + 1 <= admissible:
            return
        fix = (f"use [\"cascade\", {admissible - 1}]" if admissible > 1
               else "use [\"select\", [\"first\"]] alone")
        self.add("lint.cascade_too_long", CASCADE_POINTER,
                 f"a cascade of {n} needs {n + 1} admissible offerings; over this catalog at "
                 f"most {admissible} can be admitted, whatever the request",
                 fix)

    def rank_keys(self) -> None:
        keys = self.policy.rank
        if not keys:
            return
        features = features_of(REPRESENTATIVE_REQUEST)
        live = with_disabled(LiveState.not_consulted(), self.catalog)
        ranking = Decider(self.d).decide(features, live, self.at).ranking
        n = len(ranking)
        if n < 2:
            return  # nothing to order
        among = f"the {n} offerings admissible for {REPRESENTATIVE} over this catalog"
        for i, key in enumerate(keys):
            if not key.evidence and ATTRIBUTES[key.metric].source is Source.LIVE:
                continue  # live metrics: unknown in a dry run
            unknown = sum(1 for r in ranking if r.keys[i] is None)
            if unknown * 2 > n:
                hint = (f"give evidence for more models in metric `{key.metric}`"
                        if key.evidence else
                        f"add `{key.metric}` to the catalog with an overlay, or rank on another "
                        f"key")
                self.add("lint.rank_key_mostly_unknown", key.pointer,
                         f"`{key.label()}` is unknown for {unknown} of {among} "
                         f"({round(100 * unknown / n)} %); they rank after the others", hint)
            dead = _dead_key_reason(ranking, i, key)
            if dead is not None:
                self.add("lint.dead_rank_key", key.pointer,
                         f"`{key.label()}` never breaks a tie among {among}: {dead[0]}",
                         dead[1])


# -- helpers ---------------------------------------------------------------------------------


def _dead_key_reason(ranking: tuple[Ranked, ...], i: int, key: RankKey
                     ) -> tuple[str, str] | None:
    """(why, hint) when key `i` orders nothing `ranking` (sorted by every key) needs, or None
    if it breaks a tie: offerings tied on the keys before it form runs; one must differ at i."""
    runs = [list(g) for _, g in itertools.groupby(ranking, key=lambda r: r.keys[:i])]
    for run in runs:
        if len({r.keys[i] for r in run}) > 1:
            return None
    if i == 0:
        value = ranking[0].keys[0]
        shown = "unknown" if value is None else _number(value)
        return f"every one has the same value ({shown})", "remove it, or rank on another key"
    if all(len(run) == 1 for run in runs):
        return ("the keys before it already order every one",
                "remove it, or move it before the key that already decides")
    return (f"those tied on the keys before it have the same `{key.metric}`",
            "remove it, or rank on another key")


def _raw(policy: Policy, pointer: str) -> object:
    """The JSON value at `pointer` in the admitted policy (canonical), or None."""
    term: object = policy.term
    for token in pointer_tokens(pointer):
        if not (isinstance(term, list) and token.isdigit() and int(token) < len(term)):
            return None
        term = term[int(token)]
    return term


def _pred_text(lits: Iterable[_Lit]) -> str:
    parts = []
    for lit in lits:
        if lit.feature:
            parts.append(f"request {lit.feature} {lit.op} {_number(lit.number)}")
        else:
            parts.append(f"request label `{quote(lit.label)}` "
                         f"{'present' if lit.present else 'absent'}")
    return " and ".join(parts)


def _number(x: float) -> str:
    return str(int(x)) if x.is_integer() else repr(x)


def _catalog_values(catalog: Catalog, attr: str) -> Iterator[str]:
    for o in catalog:
        value = o.attr(attr)
        if isinstance(value, frozenset):
            yield from value
        elif isinstance(value, str):
            yield value


def _named_values(clause: Clause) -> Iterator[tuple[str, object, str]]:
    """(attribute, string value, pointer of the value) for each literal value a leaf names."""
    if isinstance(clause, Cmp) and ATTRIBUTES[clause.attr].kind is Kind.STRING:
        yield clause.attr, clause.value, child_pointer(clause.pointer, 2)
    elif isinstance(clause, Member):
        for i, v in enumerate(clause.values):
            yield clause.attr, v, child_pointer(child_pointer(clause.pointer, 2), i)
    elif isinstance(clause, SetOp) and isinstance(clause.values, tuple):
        if clause.op == "has":
            yield clause.attr, clause.values[0], child_pointer(clause.pointer, 2)
        else:
            for i, v in enumerate(clause.values):
                yield clause.attr, v, child_pointer(child_pointer(clause.pointer, 2), i)


def _evidence_models(policy: Policy) -> Iterator[tuple[str, str]]:
    """(pointer, model name) for every model an evidence score names."""
    evidence = policy.term[1]
    if not isinstance(evidence, list):
        return
    for k, entry in enumerate(evidence[1:], 1):
        if isinstance(entry, list) and len(entry) == 3 and isinstance(entry[2], dict):
            for model in entry[2]:
                yield child_pointer(f"/1/{k}/2", model), model


__all__ = ["REPRESENTATIVE_REQUEST", "Finding", "lint", "lint_derivation"]
