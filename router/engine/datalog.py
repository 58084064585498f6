"""The Datalog engine boundary: runs a `Program` over facts with pyDatalog.

Rules are built with pyDatalog's term API from the program's data (`Term(name)` for
compiler-made predicate and variable names, `Term(value, forced_type="constant")` for every
value), never by `load()`ing text, so nothing from a policy, catalog or request is evaluated as
code. Facts go straight into the engine's fact store. Each run installs a fresh `Logic` in the
calling thread; runs are serialised by a lock because pyDatalog keeps module-level state.
"""

from __future__ import annotations

import gc
import itertools
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pyDatalog import Logic, pyEngine
from pyDatalog.pyParser import Term

from router.engine.program import (
    MEMBER,
    OFFERING_VAR,
    PRED_NAME,
    Atom,
    Compare,
    Const,
    Node,
    Program,
    Rule,
    Var,
)
from router.policy.compare import COMPARE
from router.policy.truth import BY_NAME, Truth

Verdict = tuple[Truth, str, object]  # (truth, rule id, witness)
_LOCK = threading.Lock()


def _enc(value: object) -> object:
    """Strings enter the engine prefixed: pyDatalog rewrites some constant strings even when
    forced (`"True"`/`"False"` become bools, `"??"` a fresh variable name)."""
    return "s:" + value if isinstance(value, str) else value


def _dec(value: object) -> object:
    return value[2:] if isinstance(value, str) and value.startswith("s:") else value


def _arg(a: Var | Const) -> Any:
    if isinstance(a, Var):
        return Term(a.name)
    return Term(_enc(a.value), forced_type="constant")


def _literal(lit: Atom | Compare) -> Any:
    if isinstance(lit, Compare):
        left, right = _arg(lit.left), _arg(lit.right)
        return COMPARE[lit.op](left, right)
    atom = Term(lit.pred)(*[_arg(a) for a in lit.args])
    return ~atom if lit.negated else atom


def _assert(pred: str, args: tuple[object, ...]) -> None:
    if not PRED_NAME.match(pred):
        raise ValueError(f"bad predicate name {pred!r}")
    literal = pyEngine.Literal(pred, [pyEngine.Const(_enc(v)) for v in args], len(args))
    pyEngine.assert_(pyEngine.Clause(literal, []))


def run(program: Program, facts: Iterable[tuple[str, tuple[object, ...]]], *,
        share_classes: bool = True) -> dict[str, dict[str, list[Verdict]]]:
    """Derive every node's verdicts: {pointer: {offering id: [(truth, rule, witness), ...]}}.

    Verdicts for one (node, offering) are ordered by the rule's position in the program (and
    the witness's position in its policy list, for a rule over one).

    Each top-level clause is derived in its own engine session over one representative of
    each class of offerings whose facts it reads are equal (`share_classes`): a clause's rules
    read only their offering's facts (every per-offering literal has the offering variable `O`
    first), so offerings equal on what it reads get the same verdicts, rules and witnesses.
    A region clause is derived for 10 offerings instead of 3,189, a price clause for ~400;
    `share_classes=False` derives every offering (the tests compare the two).
    """
    order = {rule.id: i for i, rule in enumerate(program.rules)}
    list_of = {rule.id: rule.witness_list for rule in program.rules if rule.witness_list}
    position: dict[tuple[str, object], int] = {}  # (list pointer, value) → its place
    for name, (pointer, value) in ((f[0], f[1][:2]) for f in program.facts):
        if name == MEMBER:
            position.setdefault((str(pointer), value), len(position))

    def rank(v: Verdict) -> tuple[int, int, str]:
        """Rule order; then, for a rule over a policy list, list order; then the witness."""
        at = position.get((list_of[v[1]], v[2]), 0) if v[1] in list_of else 0
        return order.get(v[1], 0), at, repr(v[2])

    out: dict[str, dict[str, list[Verdict]]] = {}
    with _LOCK:
        pyEngine.Float_Precision = None  # compare floats exactly, as the oracle does
        # The engine allocates millions of short-lived objects; Python's cyclic collector
        # scanning them cost ~70% of a derivation (measured: 3.8 s → 1.2 s at N=2000, K=15).
        # Pause it for the run; collection resumes (and catches up) when the run ends.
        collecting = gc.isenabled()
        gc.disable()
        try:
            store = _Facts.of(program, itertools.chain(program.facts, facts))
            for group in _groups(program):
                rules = [r for r in program.rules if r.pointer in group.pointers]
                reads = store.read_by(rules)
                classes = store.classes(reads) if share_classes else store.singletons()
                _session(store, reads, list(classes), rules)
                for node in group.nodes:
                    per: dict[str, list[Verdict]] = {}
                    for rep, verdicts in _ask(node).items():
                        verdicts.sort(key=rank)
                        for oid in classes.get(rep, (rep,)):
                            per[oid] = list(verdicts)
                    out[node.pointer] = per
            return out
        finally:
            Logic()  # drop the last session's facts and rules
            if collecting:
                gc.enable()


@dataclass(frozen=True)
class _Group:
    """A top-level clause and the clauses under it: derived together, in one session."""

    nodes: tuple[Node, ...]
    pointers: frozenset[str]


def _groups(program: Program) -> list[_Group]:
    by_pointer = {n.pointer: n for n in program.nodes}
    groups: list[_Group] = []
    for top in (n for n in program.nodes if n.top):
        members: list[Node] = []
        stack = [top.pointer]
        while stack:
            node = by_pointer[stack.pop()]
            members.append(node)
            stack.extend(node.children)
        members.sort(key=lambda n: n.index)
        groups.append(_Group(tuple(members), frozenset(n.pointer for n in members)))
    return groups


Fact = tuple[str, tuple[object, ...]]


@dataclass
class _Facts:
    """The run's facts: per offering (a fact predicate some rule reads with `O` first, keyed
    by the offering, then by predicate) and shared (the policy's lists, evidence tables,
    request sets)."""

    heads: frozenset[str]  # predicates rules define (never facts)
    per_offering: dict[str, dict[str, list[tuple[object, ...]]]]  # id → pred → args, in order
    shared: list[Fact]
    # id → pred → its facts without the offering, each value typed (compared for classes)
    typed: dict[str, dict[str, tuple[object, ...]]]

    @staticmethod
    def of(program: Program, facts: Iterable[Fact]) -> _Facts:
        heads = frozenset(rule.head.pred for rule in program.rules)
        keyed = {*_offering_facts(program.rules, heads), "offering"}
        per: dict[str, dict[str, list[tuple[object, ...]]]] = {}
        shared: list[Fact] = []
        for pred, args in facts:
            if pred not in keyed:
                shared.append((pred, args))
                continue
            oid = str(args[0])
            by_pred = per.get(oid)
            if by_pred is None:
                by_pred = per[oid] = {}
            listed = by_pred.get(pred)
            if listed is None:
                by_pred[pred] = [args]
            else:
                listed.append(args)
        typed = {oid: {pred: _typed(facts) for pred, facts in by_pred.items()}
                 for oid, by_pred in per.items()}
        return _Facts(heads, per, shared, typed)

    def read_by(self, rules: list[Rule]) -> tuple[str, ...]:
        """The per-offering fact predicates `rules` read, sorted."""
        return tuple(sorted(_offering_facts(rules, self.heads)))

    def classes(self, reads: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
        """Representative → the offerings whose facts over `reads` equal its own (values
        compared with their type: `1`, `1.0` and `True` are not one value)."""
        members: dict[tuple[object, ...], list[str]] = {}
        for oid, by_pred in self.typed.items():
            key = tuple(by_pred.get(pred) for pred in reads)
            members.setdefault(key, []).append(oid)
        return {ids[0]: tuple(ids) for ids in members.values()}

    def singletons(self) -> dict[str, tuple[str, ...]]:
        return {oid: (oid,) for oid in self.per_offering}


def _offering_facts(rules: Iterable[Rule], heads: frozenset[str]) -> set[str]:
    """The fact predicates (not defined by a rule) that `rules` read with the offering first."""
    return {lit.pred for rule in rules for lit in rule.body
            if isinstance(lit, Atom) and lit.pred not in heads
            and lit.args and lit.args[0] == OFFERING_VAR}


def _typed(facts: list[tuple[object, ...]]) -> tuple[object, ...]:
    """One predicate's facts about an offering, without the offering, with their values' types."""
    return tuple([(args[1:], tuple(map(type, args[1:]))) for args in facts])


def _session(store: _Facts, reads: tuple[str, ...], offerings: list[str],
             rules: list[Rule]) -> None:
    """A fresh engine holding the shared facts, `offerings`' facts over `reads`, and `rules`."""
    Logic()
    defined: set[str] = set()
    for pred, args in store.shared:
        _assert(pred, args)
        defined.add(pred)
    for oid in offerings:
        by_pred = store.per_offering[oid]
        for pred in reads:
            for args in by_pred.get(pred, ()):
                _assert(pred, args)
                defined.add(pred)
    # A negated predicate with no facts and no rules is an error in pyDatalog; such a literal
    # is always true, so it is left out of the rule body.
    known = defined | {rule.head.pred for rule in rules}
    for rule in rules:
        kept = [lit for lit in rule.body
                if not (isinstance(lit, Atom) and lit.negated and lit.pred not in known)]
        head = _literal(rule.head)
        body = _literal(kept[0])
        for lit in kept[1:]:
            body = body & _literal(lit)
        head <= body  # noqa: B015 (pyDatalog: `<=` adds the clause)


def _ask(node: Node) -> dict[str, list[Verdict]]:
    o, t, r, w = Term("O"), Term("T"), Term("R"), Term("W")
    rows = Term(node.pred)(o, t, r, w).ask() or []
    per: dict[str, list[Verdict]] = {}
    for row in rows:
        oid, truth, rid, witness = (_dec(v) for v in row)
        per.setdefault(str(oid), []).append((BY_NAME[str(truth)], str(rid), witness))
    return per
