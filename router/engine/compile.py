"""Compilation: an admitted policy (plus the built-in clauses) → a Datalog `Program`.

Each clause node gets one verdict predicate `nK(O, Truth, Rule, Witness)`; each rule carries the
pointer of its clause and projects the ground value it used into `Witness`, so every verdict
comes with its provenance. Truth is `T`, `F`, `U` (unknown) and, in `partial` mode, `R`
(residual: depends on the request or live state, finished by `decide`).

Fact predicates read by the rules (asserted by `router.engine.facts`):
  offering(O); a_ATTR(O, V) known scalar / set element; u_ATTR(O) unknown; k_ATTR(O) known set;
  r_ATTR(O, W) residual (partial mode); model_of(O, M); ev_score(Metric, M, S); ev_known(Metric, M);
  full mode only: f_FEATURE(O, Y) numeric feature per offering; uf_FEATURE(O) unknown;
  fe_FEATURE(E) element of a set feature (needs, labels).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from importlib import resources

from router.common import jsonio
from router.common.problems import PolicyError
from router.engine.program import (
    Arg,
    Atom,
    Compare,
    Const,
    Literal_,
    Mode,
    Node,
    Program,
    Rule,
    Var,
)
from router.policy.admit import _Admission
from router.policy.attributes import ATTRIBUTES, Source
from router.policy.compare import NEGATE
from router.policy.terms import (
    AllOf,
    AnyOf,
    Clause,
    Cmp,
    Evidence,
    FeatureCmp,
    Label,
    Member,
    Not,
    Policy,
    PredNot,
    ReqPred,
    ReqRef,
    SetOp,
    When,
)
from router.policy.truth import Truth, deciding

COMPILER_ABI = "unhardcoded-compiler/1"
O, X, Y, E, M, S, W = (Var(n) for n in ("O", "X", "Y", "E", "M", "S", "W"))


@dataclass(frozen=True)
class Builtin:
    name: str
    clause: Clause
    description: str


@dataclass(frozen=True)
class Ruleset:
    builtins: tuple[Builtin, ...]
    version: str


def load_ruleset() -> Ruleset:
    """The fixed rule library: built-in clauses, written in the policy language itself."""
    raw = resources.files("router").joinpath("rules", "builtins.json").read_text("utf-8")
    data = jsonio.loads(raw, "rules/builtins.json")
    admission = _Admission()
    builtins: list[Builtin] = []
    for item in data["builtins"]:
        clause = admission._clause(item["clause"], f"builtin:{item['name']}")
        if clause is None:
            raise PolicyError(admission.problems)
        builtins.append(Builtin(item["name"], clause, item["description"]))
    version = "rules-" + hashlib.sha256(
        (COMPILER_ABI + "\n" + raw).encode()
    ).hexdigest()[:16]
    return Ruleset(tuple(builtins), version)


def residual_attribute(attr: str) -> bool:
    return ATTRIBUTES[attr].source is not Source.STATIC


@dataclass
class _Compiler:
    mode: Mode
    nodes: list[Node] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    attributes: set[str] = field(default_factory=set)
    numeric_features: set[str] = field(default_factory=set)
    set_features: set[str] = field(default_factory=set)
    labels: set[str] = field(default_factory=set)
    needs_evidence: bool = False

    # -- helpers ----------------------------------------------------------------------------

    def verdict(self, node: Node, truth: Truth, tag: str, witness: Arg) -> Atom:
        return Atom(node.pred, (O, Const(truth), Const(f"{node.pointer}#{tag}"), witness))

    def rule(self, node: Node, truth: Truth, tag: str, witness: Arg, *body: Literal_) -> None:
        head = self.verdict(node, truth, tag, witness)
        self.rules.append(Rule(f"{node.pointer}#{tag}", node.pointer, head, tuple(body)))

    def child(self, pointer: str, truth: Truth, j: int, negated: bool = False) -> Atom:
        """A child's verdict; its rule and witness are fresh variables (unique per literal)."""
        pred = next(n.pred for n in self.nodes if n.pointer == pointer)
        tag = f"{j}{truth}{'n' if negated else 'p'}"
        return Atom(pred, (O, Const(truth), Var(f"R{tag}"), Var(f"W{tag}")), negated)

    def add_node(self, pointer: str, clause: Clause | ReqPred, children: tuple[str, ...],
                 top: bool) -> Node:
        node = Node(len(self.nodes), pointer, f"n{len(self.nodes)}", clause, children, top)
        self.nodes.append(node)
        return node

    # -- clauses ----------------------------------------------------------------------------

    def clause(self, clause: Clause, top: bool) -> Node:
        if isinstance(clause, Not):
            kid = self.clause(clause.child, False)
            node = self.add_node(clause.pointer, clause, (kid.pointer,), top)
            self.negation(node, kid.pointer)
            return node
        if isinstance(clause, AnyOf | AllOf):
            kids = [self.clause(c, False) for c in clause.children]
            node = self.add_node(clause.pointer, clause, tuple(k.pointer for k in kids), top)
            parts = [(k.pointer, False) for k in kids]
            self.junction(node, parts, conjunction=isinstance(clause, AllOf))
            return node
        if isinstance(clause, When):
            pred = self.req_pred(clause.pred)
            kid = self.clause(clause.child, False)
            node = self.add_node(clause.pointer, clause, (pred.pointer, kid.pointer), top)
            # when P C  ≡  any(not P, C)
            self.junction(node, [(pred.pointer, True), (kid.pointer, False)], conjunction=False)
            return node
        node = self.add_node(clause.pointer, clause, (), top)
        if isinstance(clause, Cmp):
            self.cmp(node, clause)
        elif isinstance(clause, Member):
            self.member(node, clause)
        elif isinstance(clause, SetOp):
            self.setop(node, clause)
        else:
            self.evidence(node, clause)
        return node

    def negation(self, node: Node, kid: str) -> None:
        for truth in Truth:
            if truth is Truth.R and self.mode == "full":
                continue
            self.rule(node, truth, f"{truth}<-not", Const(kid), self.child(kid, ~truth, 1))

    def junction(self, node: Node, parts: list[tuple[str, bool]], conjunction: bool) -> None:
        """`all` (conjunction) / `any` over children; a part may be negated (`when`)."""

        def lit(i: int, truth: Truth, negated: bool = False) -> Atom:
            ptr, flip = parts[i]
            return self.child(ptr, ~truth if flip else truth, i, negated)

        win = deciding(conjunction)
        lose = ~win
        n = len(parts)
        for i in range(n):  # one deciding child settles it
            self.rule(node, win, f"{win}<-{i + 1}", Const(parts[i][0]), lit(i, win))
        self.rule(node, lose, f"{lose}<-all", Const(""), *(lit(i, lose) for i in range(n)))
        no_win = [lit(j, win, negated=True) for j in range(n)]
        if self.mode == "partial":
            for i in range(n):
                self.rule(node, Truth.R, f"R<-{i + 1}", Const(parts[i][0]), lit(i, Truth.R),
                          *no_win)
        no_residual = (
            [lit(j, Truth.R, negated=True) for j in range(n)] if self.mode == "partial" else []
        )
        for i in range(n):
            self.rule(node, Truth.U, f"U<-{i + 1}", Const(parts[i][0]), lit(i, Truth.U), *no_win,
                      *no_residual)

    def req_pred(self, pred: ReqPred) -> Node:
        if isinstance(pred, PredNot):
            kid = self.req_pred(pred.child)
            node = self.add_node(pred.pointer, pred, (kid.pointer,), False)
            self.negation(node, kid.pointer)
            return node
        node = self.add_node(pred.pointer, pred, (), False)
        if self.mode == "partial":
            self.rule(node, Truth.R, "R", Const(""), Atom("offering", (O,)))
            return node
        if isinstance(pred, Label):
            self.labels.add(pred.name)
            self.set_features.add("labels")
            lab = Const(pred.name)
            self.rule(node, Truth.T, "T", lab, Atom("offering", (O,)), Atom("fe_labels", (lab,)))
            self.rule(node, Truth.F, "F", lab, Atom("offering", (O,)),
                      Atom("fe_labels", (lab,), negated=True))
            return node
        assert isinstance(pred, FeatureCmp)
        self.numeric_features.add(pred.feature)
        f, uf = f"f_{pred.feature}", f"uf_{pred.feature}"
        n = Const(pred.number)
        self.rule(node, Truth.T, "T", Y, Atom(f, (O, Y)), Compare(Y, pred.op, n))
        self.rule(node, Truth.F, "F", Y, Atom(f, (O, Y)), Compare(Y, NEGATE[pred.op], n))
        self.rule(node, Truth.U, "U", Const(""), Atom(uf, (O,)))
        return node

    # -- leaves -----------------------------------------------------------------------------

    def unknown_and_residual(self, node: Node, attr: str) -> None:
        self.attributes.add(attr)
        self.rule(node, Truth.U, "U", Const(""), Atom(f"u_{attr}", (O,)))
        if self.mode == "partial" and residual_attribute(attr):
            self.rule(node, Truth.R, "R", W, Atom(f"r_{attr}", (O, W)))

    def cmp(self, node: Node, c: Cmp) -> None:
        a = Atom(f"a_{c.attr}", (O, X))
        self.unknown_and_residual(node, c.attr)
        if isinstance(c.value, ReqRef):
            feature = c.value.feature
            if self.mode == "partial":
                self.rule(node, Truth.R, "R<-req", X, a)
                return
            self.numeric_features.add(feature)
            f = Atom(f"f_{feature}", (O, Y))
            self.rule(node, Truth.T, "T", X, a, f, Compare(X, c.op, Y))
            self.rule(node, Truth.F, "F", X, a, f, Compare(X, NEGATE[c.op], Y))
            self.rule(node, Truth.U, "U<-req", X, a, Atom(f"uf_{feature}", (O,)))
            return
        v = Const(c.value)
        self.rule(node, Truth.T, "T", X, a, Compare(X, c.op, v))
        self.rule(node, Truth.F, "F", X, a, Compare(X, NEGATE[c.op], v))

    def member(self, node: Node, m: Member) -> None:
        a = Atom(f"a_{m.attr}", (O, X))
        self.unknown_and_residual(node, m.attr)
        hit, miss = (Truth.F, Truth.T) if m.negated else (Truth.T, Truth.F)
        for i, value in enumerate(m.values):
            self.rule(node, hit, f"{hit}<-{i + 1}", X, a, Compare(X, "==", Const(value)))
        self.rule(node, miss, miss, X, a, *(Compare(X, "!=", Const(v)) for v in m.values))

    def setop(self, node: Node, s: SetOp) -> None:
        attr = s.attr
        known = Atom(f"k_{attr}", (O,))
        self.attributes.add(attr)
        self.rule(node, Truth.U, "U", Const(""), Atom(f"u_{attr}", (O,)))

        def elem(value: Arg, negated: bool = False) -> Atom:
            return Atom(f"a_{attr}", (O, value), negated)

        if isinstance(s.values, ReqRef):
            feature = s.values.feature
            if self.mode == "partial":
                self.rule(node, Truth.R, "R<-req", Const(""), known)
                return
            self.set_features.add(feature)
            fe = Atom(f"fe_{feature}", (E,))
            helper = f"{node.pred}_hit" if s.op != "has_all" else f"{node.pred}_miss"
            hbody = (fe, elem(E)) if s.op != "has_all" else (fe, known, elem(E, negated=True))
            self.rules.append(Rule(f"{node.pointer}#aux", node.pointer, Atom(helper, (O,)), hbody))
            if s.op == "has_all":
                self.rule(node, Truth.F, "F", E, fe, known, elem(E, negated=True))
                self.rule(node, Truth.T, "T", Const(""), known, Atom(helper, (O,), negated=True))
            else:
                hit, miss = (Truth.T, Truth.F) if s.op == "has_any" else (Truth.F, Truth.T)
                self.rule(node, hit, hit, E, fe, elem(E))
                self.rule(node, miss, miss, Const(""), known, Atom(helper, (O,), negated=True))
            return
        values = [Const(v) for v in s.values]
        if s.op in ("has", "has_all"):
            for i, v in enumerate(values):
                self.rule(node, Truth.F, f"F<-{i + 1}", v, known, elem(v, negated=True))
            self.rule(node, Truth.T, "T", Const(""), *(elem(v) for v in values))
        else:
            hit, miss = (Truth.T, Truth.F) if s.op == "has_any" else (Truth.F, Truth.T)
            for i, v in enumerate(values):
                self.rule(node, hit, f"{hit}<-{i + 1}", v, elem(v))
            self.rule(node, miss, miss, Const(""), known, *(elem(v, negated=True) for v in values))

    def evidence(self, node: Node, ev: Evidence) -> None:
        self.needs_evidence = True
        self.attributes.add("model")
        metric, n = Const(ev.metric), Const(ev.number)
        model, score = Atom("model_of", (O, M)), Atom("ev_score", (metric, M, S))
        self.rule(node, Truth.T, "T", S, model, score, Compare(S, ev.op, n))
        self.rule(node, Truth.F, "F", S, model, score, Compare(S, NEGATE[ev.op], n))
        self.rule(node, Truth.U, "U", M, model, Atom("ev_known", (metric, M), negated=True))


def compile_policy(policy: Policy, ruleset: Ruleset, mode: Mode) -> Program:
    """Built-ins first, then the policy's own clauses, each a top-level node."""
    c = _Compiler(mode)
    for builtin in ruleset.builtins:
        c.clause(builtin.clause, top=True)
    for clause in policy.filters:
        c.clause(clause, top=True)
    return Program(
        mode=mode,
        nodes=tuple(c.nodes),
        rules=tuple(c.rules),
        attributes=frozenset(c.attributes),
        needs_evidence=c.needs_evidence,
        numeric_features=frozenset(c.numeric_features),
        set_features=frozenset(c.set_features),
        labels=frozenset(c.labels),
    )

