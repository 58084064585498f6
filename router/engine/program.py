"""The compiled program: Datalog rules as plain data, tagged with the pointer of their clause.

Rules are data so they can be printed, hashed and golden-tested; `router.engine.datalog` turns
them into pyDatalog terms with the term API (never text). Predicate names come only from the
compiler and are checked against `^[a-z][a-z0-9_]*$`; variable names against `^[A-Z][A-Za-z0-9_]*$`.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Literal

from router.policy.terms import Clause, ReqPred

PRED_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
VAR_NAME = re.compile(r"^[A-Z][A-Za-z0-9_]*$")
Mode = Literal["partial", "full"]
# The one fact predicate a compiled program brings itself: `member(LIST, VALUE)`, one fact per
# value of a policy list longer than `router.policy.cost.SHORT_LIST` (LIST is the list's JSON
# pointer), so `in` / `has_any` & co. join it once instead of compiling one rule per value.
MEMBER = "member"
ProgramFact = tuple[str, tuple[int | float | str | bool, ...]]


@dataclass(frozen=True)
class Var:
    name: str

    def __post_init__(self) -> None:
        if not VAR_NAME.match(self.name):
            raise ValueError(f"bad variable name {self.name!r}")

    def text(self) -> str:
        return self.name


@dataclass(frozen=True)
class Const:
    value: int | float | str | bool

    def text(self) -> str:
        return json.dumps(self.value)


Arg = Var | Const
# The offering variable: the first argument of every rule head and of every literal over one
# offering's facts (the engine relies on it to derive equal offerings once).
OFFERING_VAR = Var("O")


@dataclass(frozen=True)
class Atom:
    pred: str
    args: tuple[Arg, ...]
    negated: bool = False

    def __post_init__(self) -> None:
        if not PRED_NAME.match(self.pred):
            raise ValueError(f"bad predicate name {self.pred!r}")

    def text(self) -> str:
        inner = ", ".join(a.text() for a in self.args)
        return f"{'~' if self.negated else ''}{self.pred}({inner})"


@dataclass(frozen=True)
class Compare:
    left: Var
    op: str
    right: Arg

    def __post_init__(self) -> None:
        if self.op not in ("<", "<=", ">", ">=", "==", "!="):
            raise ValueError(f"bad comparison {self.op!r}")

    def text(self) -> str:
        return f"{self.left.text()} {self.op} {self.right.text()}"


Literal_ = Atom | Compare


@dataclass(frozen=True)
class Rule:
    """`head <= body`, derived from the clause at `pointer`."""

    id: str
    pointer: str
    head: Atom
    body: tuple[Literal_, ...]
    # The `member` list whose values this rule's witnesses are: several witnesses of one rule
    # are reported in list order (the first listed value a set lacks), as one rule per value did.
    witness_list: str = ""

    def text(self) -> str:
        return f"{self.head.text()} <= {' & '.join(b.text() for b in self.body)}"


@dataclass(frozen=True)
class Node:
    """One clause (or request predicate) of the filter tree, with its verdict predicate."""

    index: int
    pointer: str
    pred: str
    clause: Clause | ReqPred
    children: tuple[str, ...]  # pointers of child nodes
    top: bool  # a top-level clause of the filter (or a built-in)


@dataclass(frozen=True)
class Program:
    mode: Mode
    nodes: tuple[Node, ...]
    rules: tuple[Rule, ...]
    attributes: frozenset[str]  # catalog attributes whose facts the rules read
    needs_evidence: bool
    numeric_features: frozenset[str]
    set_features: frozenset[str]
    labels: frozenset[str]
    facts: tuple[ProgramFact, ...] = ()  # the policy's own facts (`member`), not the catalog's

    def text(self) -> str:
        lines = [f"% mode {self.mode}"]
        for pred, args in self.facts:
            lines.append(f"{pred}({', '.join(json.dumps(a) for a in args)}).")
        for rule in self.rules:
            lines.append(f"{rule.text()}.   % {rule.id}")
        return "\n".join(lines) + "\n"

    def cost(self) -> int:
        """Work units per offering (`router.policy.cost`): each rule literal, counted once for
        its clause and once per enclosing clause (the engine evaluates a clause again for each
        ancestor it derives)."""
        parent = {child: n.pointer for n in self.nodes for child in n.children}
        depth: dict[str, int] = {}
        for n in self.nodes:
            up, k = n.pointer, 0
            while up in parent:
                up, k = parent[up], k + 1
            depth[n.pointer] = k
        return sum(len(rule.body) * (depth.get(rule.pointer, 0) + 1) for rule in self.rules)

    def digest(self) -> str:
        return hashlib.sha256(self.text().encode()).hexdigest()

    def node(self, pointer: str) -> Node:
        for n in self.nodes:
            if n.pointer == pointer:
                return n
        raise KeyError(pointer)
