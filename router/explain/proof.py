"""Proofs: the derivation behind a verdict, as data — rule, ground facts, child proofs.

Built from the engine's provenance (each rule projects the value it used into its head), so a
proof names exactly the facts the engine joined. `check_proof` re-evaluates a proof against the
catalog and the policy without the engine. Proofs export as text, JSON (networkx node-link) and
Graphviz DOT.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from router.catalog.offerings import Offering
from router.engine.derive import Derivation
from router.policy.attributes import ATTRIBUTES, Kind, Source
from router.policy.compare import COMPARE
from router.policy.cost import SHORT_LIST
from router.policy.terms import (
    Evidence,
    FeatureCmp,
    Label,
    Policy,
    ReqRef,
    SetOp,
    render,
)

Fact = tuple[str, tuple[Any, ...]]


@dataclass(frozen=True)
class Proof:
    pointer: str
    offering: str
    truth: str
    rule: str
    clause: list[Any]
    facts: tuple[Fact, ...]
    children: tuple[Proof, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "pointer": self.pointer,
            "truth": self.truth,
            "rule": self.rule,
            "clause": self.clause,
            "facts": [f"{p}({', '.join(json.dumps(a) for a in args)})" for p, args in self.facts],
            "children": [c.to_json() for c in self.children],
        }

    def text(self, indent: int = 0) -> str:
        pad = "  " * indent
        facts = ", ".join(
            f"{p}({', '.join(json.dumps(a) for a in args)})" for p, args in self.facts
        )
        line = f"{pad}{self.pointer} = {self.truth}  by {self.rule}"
        if facts:
            line += f"  from {facts}"
        return "\n".join([line, *(c.text(indent + 1) for c in self.children)])


def build_proof(d: Derivation, pointer: str, offering_id: str) -> Proof:
    node = next(n for n in d.program.nodes if n.pointer == pointer)
    truth, rule, witness = d.verdicts[pointer][offering_id]
    clause = node.clause
    children: tuple[Proof, ...] = ()
    if node.children:
        decisive = truth in ("T", "F") and isinstance(witness, str) and witness in node.children
        picked = [str(witness)] if decisive else list(node.children)
        children = tuple(build_proof(d, c, offering_id) for c in picked)
        facts: tuple[Fact, ...] = ()
    else:
        facts = _leaf_facts(clause, truth, witness, offering_id, d.catalog.get(offering_id))
    return Proof(pointer, offering_id, truth, rule, render(clause), facts, children)


def _leaf_facts(clause: Any, truth: str, witness: Any, oid: str,
                offering: Offering | None) -> tuple[Fact, ...]:
    if isinstance(clause, Label | FeatureCmp):
        return (("offering", (oid,)),)
    if isinstance(clause, Evidence):
        if truth == "U":
            return (("model_of", (oid, witness)), ("~ev_known", (clause.metric, witness)))
        return (("ev_score", (clause.metric, "<model>", witness)),)
    attr = clause.attr
    if truth == "U":
        return ((f"u_{attr}", (oid,)),)
    if truth == "R" and ATTRIBUTES[attr].source is not Source.STATIC:
        return ((f"r_{attr}", (oid, witness)),)
    if isinstance(clause, SetOp):
        if truth == "R":
            return ((f"k_{attr}", (oid,)),)
        if isinstance(witness, str) and witness:
            negated = (clause.op in ("has", "has_all")) and truth == "F"
            return ((f"{'~' if negated else ''}a_{attr}", (oid, witness)),)
        values = clause.values if not isinstance(clause.values, ReqRef) else ()
        if clause.op in ("has", "has_all"):
            return tuple((f"a_{attr}", (oid, v)) for v in values)
        # has_any F / has_none T: the set is known, and none of its elements is listed.
        if len(values) <= SHORT_LIST:  # a rule per value: each listed value is absent
            return ((f"k_{attr}", (oid,)), *((f"~a_{attr}", (oid, v)) for v in values))
        # A longer list is `member` facts joined with the offering's own elements, so the proof
        # names those (as many as the offering has, not as many as the policy lists).
        held = offering.attr(attr) if offering is not None else None
        elements = sorted(held) if held is not None else []
        return ((f"k_{attr}", (oid,)), *((f"a_{attr}", (oid, e)) for e in elements))
    return ((f"a_{attr}", (oid, witness)),)


def fill_models(proof: Proof, offering: Offering) -> Proof:
    """Evidence facts name the offering's model (kept out of the engine's witness)."""
    facts = tuple(
        (p, (a[0], offering.model, a[2])) if p == "ev_score" else (p, a) for p, a in proof.facts
    )
    if any(p == "ev_score" for p, _ in proof.facts):
        facts = (("model_of", (offering.id, offering.model)), *facts)
    kids = tuple(fill_models(c, offering) for c in proof.children)
    return Proof(proof.pointer, proof.offering, proof.truth, proof.rule, proof.clause, facts, kids)


def proof_of(d: Derivation, pointer: str, offering_id: str) -> Proof:
    o = d.catalog.get(offering_id)
    p = build_proof(d, pointer, offering_id)
    return fill_models(p, o) if o is not None else p


# -- independent checking --------------------------------------------------------------------



def check_proof(proof: Proof, offering: Offering, policy: Policy) -> list[str]:
    """Re-evaluate a proof against catalog facts and the policy. Returns the problems found."""
    problems: list[str] = []
    for pred, args in proof.facts:
        if not _fact_holds(pred, args, offering, policy):
            problems.append(f"{proof.pointer}: fact {pred}{args} does not hold")
    truths = [c.truth for c in proof.children]
    kind = proof.clause[0]
    t = proof.truth
    if proof.children:
        if kind == "not":
            ok = {"T": "F", "F": "T"}.get(truths[0], truths[0]) == t
        elif kind in ("all", "any", "when"):
            win = "F" if kind == "all" else "T"
            kids = truths
            if kind == "when" and len(proof.children) == 1 and proof.children[0].pointer.endswith(
                    "/1"):
                kids = [{"T": "F", "F": "T"}.get(truths[0], truths[0])]
            if t == win:
                ok = win in kids
            elif len(proof.children) == len(proof.clause) - 1:
                lose = "T" if win == "F" else "F"
                if kind == "when":
                    kids = [{"T": "F", "F": "T"}.get(truths[0], truths[0]), *truths[1:]]
                ok = (all(k == lose for k in kids) if t == lose
                      else win not in kids and t in kids)
            else:
                ok = t in kids
        else:
            ok = True
        if not ok:
            problems.append(f"{proof.pointer}: children {truths} do not give {t}")
        for child in proof.children:
            problems += check_proof(child, offering, policy)
        return problems
    if t in ("T", "F") and isinstance(proof.clause, list):
        problems += _check_leaf(proof, offering, policy)
    return problems


def _fact_holds(pred: str, args: tuple[Any, ...], o: Offering, policy: Policy) -> bool:
    negated = pred.startswith("~")
    name = pred.lstrip("~")
    if name == "offering":
        return bool(args[0] == o.id)
    if name == "model_of":
        return bool(o.model == args[1])
    if name == "ev_score":
        return bool(policy.evidence.get(args[0], {}).get(args[1]) == args[2])
    if name == "ev_known":
        return (args[1] in policy.evidence.get(args[0], {})) != negated
    prefix, attr = name.split("_", 1)
    if attr not in ATTRIBUTES:
        return False
    if ATTRIBUTES[attr].source is not Source.STATIC:
        if prefix == "r":
            return True
        if prefix == "u" and attr == "est_cost":
            return o.input_price is None or o.output_price is None
        if attr == "deprecated" and prefix == "a":
            return o.deprecation_date is None and args[1] is False
        return False
    value = o.attr(attr)
    if prefix == "u":
        return value is None
    if prefix == "k":
        return value is not None
    if ATTRIBUTES[attr].kind is Kind.SET:
        return value is not None and ((args[1] in value) != negated)
    return bool(value == args[1] and type(value) is type(args[1]))


def _check_leaf(proof: Proof, o: Offering, policy: Policy) -> list[str]:
    clause, t = proof.clause, proof.truth
    head = clause[0]
    want = t == "T"
    if head in COMPARE and not isinstance(clause[2], list):
        value = o.attr(clause[1])
        if clause[1] == "deprecated" and o.deprecation_date is None:
            value = False  # the static fact a_deprecated(o, false)
        if value is None or COMPARE[head](value, clause[2]) != want:
            return [f"{proof.pointer}: {clause[1]}={value!r} does not make the clause {t}"]
    elif head in ("in", "not_in"):
        value = o.attr(clause[1])
        if clause[1] == "deprecated" and o.deprecation_date is None:
            value = False
        inside = value in clause[2]
        if value is None or (inside != (head == "in")) != (not want):
            return [f"{proof.pointer}: {clause[1]}={value!r} does not make the clause {t}"]
    elif head in ("has", "has_all", "has_any", "has_none") and not (
        isinstance(clause[2], list) and clause[2][:1] == ["req"]
    ):
        have = o.attr(clause[1])
        vals = [clause[2]] if head == "has" else clause[2]
        result = {"has": all, "has_all": all, "has_any": any}.get(head)
        if have is None:
            return [f"{proof.pointer}: {clause[1]} unknown, yet {t}"]
        got = (result(v in have for v in vals) if result
               else not any(v in have for v in vals))
        if got != want:
            return [f"{proof.pointer}: {clause[1]}={sorted(have)} does not make the clause {t}"]
    elif head == "ev":
        score = policy.evidence.get(clause[1], {}).get(o.model)
        if score is None or COMPARE[clause[2]](score, clause[3]) != want:
            return [f"{proof.pointer}: evidence {score!r} does not make the clause {t}"]
    return []


# -- export ----------------------------------------------------------------------------------

def to_graph(proof: Proof) -> Any:
    """The proof as a networkx DiGraph (networkx is imported here, on first export: it costs
    ~0.1 s of the router's import time)."""
    import networkx as nx

    g = nx.DiGraph()

    def add(p: Proof) -> str:
        vid = f"verdict:{p.pointer}"
        g.add_node(vid, kind="verdict", label=f"{p.pointer} = {p.truth}",
                   clause=json.dumps(p.clause))
        rid = f"rule:{p.rule}"
        g.add_node(rid, kind="rule", label=p.rule)
        g.add_edge(vid, rid)
        for pred, args in p.facts:
            fid = f"fact:{pred}({', '.join(json.dumps(a) for a in args)})"
            g.add_node(fid, kind="fact", label=fid[5:])
            g.add_edge(rid, fid)
        for c in p.children:
            g.add_edge(rid, add(c))
        return vid

    add(proof)
    return g


def to_node_link(proof: Proof) -> dict[str, Any]:
    import networkx as nx

    data: dict[str, Any] = nx.node_link_data(to_graph(proof), edges="links")
    return data


def to_dot(proof: Proof) -> str:
    g = to_graph(proof)
    shapes = {"verdict": "box", "rule": "ellipse", "fact": "note"}
    ids = {n: f"n{i}" for i, n in enumerate(g.nodes)}
    lines = ["digraph proof {", "  rankdir=TB;"]
    for n, data in g.nodes(data=True):
        label = str(data["label"]).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        lines.append(f'  {ids[n]} [shape={shapes[data["kind"]]}, label="{label}"];')
    for a, b in g.edges:
        lines.append(f"  {ids[a]} -> {ids[b]};")
    lines.append("}")
    return "\n".join(lines) + "\n"

