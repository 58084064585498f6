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
    MEMBER,
    OFFERING_VAR,
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
from router.policy.cost import FAN_IN, SHORT_LIST
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
    Scalar,
    SetOp,
    When,
)
from router.policy.truth import Truth, deciding

# Bumped whenever the compiled form changes (rules, helper predicates, proof shapes): it is part
# of the ruleset version, so a record is only replayed by the compiler that made its proofs.
COMPILER_ABI = "unhardcoded-compiler/2"
O = OFFERING_VAR
X, Y, E, M, S, W = (Var(n) for n in ("X", "Y", "E", "M", "S", "W"))


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
    facts: list[tuple[str, tuple[Scalar, ...]]] = field(default_factory=list)
    preds: dict[str, str] = field(default_factory=dict)  # pointer → verdict predicate

    # -- helpers ----------------------------------------------------------------------------

    def verdict(self, node: Node, truth: Truth, tag: str, witness: Arg) -> Atom:
        return Atom(node.pred, (O, Const(truth), Const(f"{node.pointer}#{tag}"), witness))

    def rule(self, node: Node, truth: Truth, tag: str, witness: Arg, *body: Literal_,
             listed: Const | None = None) -> None:
        head = self.verdict(node, truth, tag, witness)
        self.rules.append(Rule(f"{node.pointer}#{tag}", node.pointer, head, tuple(body),
                               str(listed.value) if listed is not None else ""))

    def child(self, pointer: str, truth: Truth, j: int, negated: bool = False) -> Atom:
        """A child's verdict; its rule and witness are fresh variables (unique per literal)."""
        pred = self.preds[pointer]
        tag = f"{j}{truth}{'n' if negated else 'p'}"
        return Atom(pred, (O, Const(truth), Var(f"R{tag}"), Var(f"W{tag}")), negated)

    def add_node(self, pointer: str, clause: Clause | ReqPred, children: tuple[str, ...],
                 top: bool) -> Node:
        node = Node(len(self.nodes), pointer, f"n{len(self.nodes)}", clause, children, top)
        self.nodes.append(node)
        self.preds[pointer] = node.pred
        return node

    def helper(self, node: Node, name: str, tag: str, *body: Literal_) -> Atom:
        """A per-node helper predicate `nK_NAME(O)`; each call adds one rule defining it."""
        head = Atom(f"{node.pred}_{name}", (O,))
        self.rules.append(Rule(f"{node.pointer}#{name}{tag}", node.pointer, head, tuple(body)))
        return head

    def every(self, node: Node, literals: list[Atom]) -> list[Atom]:
        """A conjunction of at most `FAN_IN` literals equivalent to `literals`: longer ones are
        folded into helper predicates `nK_allJ(O)` (a tree of depth log(n)). The engine copies
        the rest of a rule's body at every join step, so one rule joining 255 children cost
        O(n²) per offering (5.8 s and 0.8 GB for 100 offerings); the folded form is linear."""
        level = 0
        while len(literals) > FAN_IN:
            folded: list[Atom] = []
            for j in range(0, len(literals), FAN_IN):
                head = self.helper(node, f"all{level}_{j // FAN_IN}", "", *literals[j:j + FAN_IN])
                folded.append(head)
            literals, level = folded, level + 1
        return literals

    def member_list(self, pointer: str, values: tuple[Scalar, ...]) -> Const:
        """The list at `pointer` as `member(pointer, value)` facts (each value once): a clause
        over a list longer than `SHORT_LIST` joins it once, however long it is. (One rule per
        value, and one comparison per value in one body, cost O(n²) per offering: `in` over
        255 values took 5.4 s and 0.6 GB over the embedded catalog; a fact join costs the same
        at any length, but more than a few comparisons for a list of one to four values.)"""
        for value in dict.fromkeys(values):
            self.facts.append((MEMBER, (pointer, value)))
        return Const(pointer)

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
        """`all` (conjunction) / `any` over children; a part may be negated (`when`).

        Linear in the number of children: "some child decides" and "some child is residual"
        are helper predicates (`nK_win(O)`, `nK_res(O)`) that the `R` and `U` rules negate
        once, rather than every `U` rule negating every child (quadratic: 255 children made
        ~130,000 literals and minutes of work per hundred offerings).
        """

        def lit(i: int, truth: Truth) -> Atom:
            ptr, flip = parts[i]
            return self.child(ptr, ~truth if flip else truth, i)

        win = deciding(conjunction)
        lose = ~win
        n = len(parts)
        for i in range(n):  # one deciding child settles it
            self.rule(node, win, f"{win}<-{i + 1}", Const(parts[i][0]), lit(i, win))
        agree = self.every(node, [lit(i, lose) for i in range(n)])
        self.rule(node, lose, f"{lose}<-all", Const(""), *agree)
        for i in range(n):
            self.helper(node, "win", f"<-{i + 1}", lit(i, win))
        no_win = Atom(f"{node.pred}_win", (O,), negated=True)
        no_residual: list[Atom] = []
        if self.mode == "partial":
            for i in range(n):
                self.rule(node, Truth.R, f"R<-{i + 1}", Const(parts[i][0]), lit(i, Truth.R),
                          no_win)
            for i in range(n):
                self.helper(node, "res", f"<-{i + 1}", lit(i, Truth.R))
            no_residual = [Atom(f"{node.pred}_res", (O,), negated=True)]
        for i in range(n):
            self.rule(node, Truth.U, f"U<-{i + 1}", Const(parts[i][0]), lit(i, Truth.U), no_win,
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
        if len(m.values) <= SHORT_LIST:  # a comparison per value: cheapest for a few
            for i, value in enumerate(m.values):
                self.rule(node, hit, f"{hit}<-{i + 1}", X, a, Compare(X, "==", Const(value)))
            self.rule(node, miss, miss, X, a, *(Compare(X, "!=", Const(v)) for v in m.values))
            return
        listed = self.member_list(f"{m.pointer}/2", m.values)
        self.rule(node, hit, hit, X, a, Atom(MEMBER, (listed, X)), listed=listed)
        self.rule(node, miss, miss, X, a, Atom(MEMBER, (listed, X), negated=True))

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
        if len(s.values) <= SHORT_LIST:  # a rule per value: cheapest for a few
            values = [Const(v) for v in s.values]
            if s.op in ("has", "has_all"):
                for i, v in enumerate(values):
                    self.rule(node, Truth.F, f"F<-{i + 1}", v, known, elem(v, negated=True))
                self.rule(node, Truth.T, "T", Const(""), *(elem(v) for v in values))
            else:
                hit, miss = (Truth.T, Truth.F) if s.op == "has_any" else (Truth.F, Truth.T)
                for i, v in enumerate(values):
                    self.rule(node, hit, f"{hit}<-{i + 1}", v, elem(v))
                self.rule(node, miss, miss, Const(""), known,
                          *(elem(v, negated=True) for v in values))
            return
        listed = self.member_list(f"{s.pointer}/2", s.values)
        if s.op in ("has", "has_all"):
            # F names a listed value the set lacks; T: the set is known and lacks none.
            lacking = (known, Atom(MEMBER, (listed, E)), elem(E, negated=True))
            self.rule(node, Truth.F, "F", E, *lacking, listed=listed)
            some_lacking = self.helper(node, "miss", "", *lacking)
            self.rule(node, Truth.T, "T", Const(""), known,
                      Atom(some_lacking.pred, (O,), negated=True))
        else:
            # has_any T / has_none F name a listed value the set holds; the other verdict:
            # the set is known and holds none of them.
            hit, miss = (Truth.T, Truth.F) if s.op == "has_any" else (Truth.F, Truth.T)
            holding = (elem(E), Atom(MEMBER, (listed, E)))
            self.rule(node, hit, hit, E, *holding, listed=listed)
            some_held = self.helper(node, "hit", "", *holding)
            self.rule(node, miss, miss, Const(""), known, Atom(some_held.pred, (O,), negated=True))

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
        facts=tuple(c.facts),
    )

