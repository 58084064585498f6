"""The decision at a glance (the default human output of `route` and `trace show`): the winner,
its cascade, the best few outranked offerings with their keys, and the rejections grouped by
clause — how many offerings each clause struck, a few examples, and its nearest miss: of the
offerings that clause alone rejected, the one the policy would rank first, with the smallest
change that admits it. `--all` prints every offering instead (`render.decision_table`).

Colours only on a terminal, and never with `NO_COLOR` set or `TERM=dumb`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from router.catalog.offerings import Offering
from router.cli.style import PLAIN, Style, fmt
from router.decide.decider import Decider, Decision, Ranked
from router.explain.explanation import explain_one
from router.explain.record import clause_term
from router.facade import RouteResult
from router.policy.truth import Truth

Order = Callable[[list[Offering]], Sequence[Ranked]]
OUTRANKED = 5
EXAMPLES = 3
EXPLAINED = 3  # offerings `explain` details in full without --all


def _keys(labels: list[str], values: Sequence[Any]) -> str:
    return "  ".join(f"{lab}={fmt(v)}" for lab, v in zip(labels, values, strict=True))


def decision_summary(result: RouteResult, catalog_label: str, style: Style | None = None,
                     order: Order | None = None) -> str:
    """`order` ranks offerings as the policy does (default: a decider of the derivation)."""
    style = style or PLAIN
    dec = result.decision
    if order is None:
        decider = Decider(dec.derivation)
        order = lambda offerings: decider.order(offerings, dec.context)  # noqa: E731
    d = dec.derivation
    f = dec.context.features
    labels = [k.label() for k in d.policy.rank]
    out = [
        style.dim(f"policy {d.policy.hash[:16]}  catalog {d.catalog.version} "
                  f"({len(d.catalog)} offerings, {catalog_label})"),
        style.dim(f"request input_tokens≤{f.input_tokens}  needs=[{', '.join(f.needs)}]  "
                  f"labels=[{', '.join(f.labels)}]  live "
                  + ("consulted" if dec.context.live.consulted else "not consulted (--live)")),
        "",
    ]
    if dec.selected is None:
        out.append(style.bad("NO ADMISSIBLE OFFERING") + " — the request would fail before any "
                   "call.")
    else:
        best = _keys(labels, dec.ranking[0].keys)
        out.append(f"{style.good('WINNER')}   {dec.selected}   {best}")
        for i, oid in enumerate(dec.cascade, start=1):
            out.append(f"CASCADE {i} {oid}   {_keys(labels, dec.ranking[i].keys)}")
    hops = set(dec.hops)
    rest = [r for r in dec.ranking if r.offering_id not in hops]
    if rest:
        out += ["", style.bold(f"OUTRANKED ({len(rest)})") + (
            f", best {OUTRANKED}:" if len(rest) > OUTRANKED else ":")]
        out += [f"  {r.offering_id:<50} {_keys(labels, r.keys)}" for r in rest[:OUTRANKED]]
    out += rejection_groups(dec, order, style)
    out += ["", style.dim("--all lists every offering; `explain --model ID` says why one "
                          "was rejected, admitted or outranked")]
    return "\n".join(style.clip(line) for line in out) + "\n"


@dataclass
class _Group:
    pointer: str
    struck: list[Offering]
    alone: list[Offering]  # struck by this clause and no other


def rejection_groups(dec: Decision, order: Order, style: Style) -> list[str]:
    d = dec.derivation
    groups: dict[str, _Group] = {}
    total = 0
    for o in d.catalog:
        failed = dec.failed_clauses(o.id)
        if not failed:
            continue
        total += 1
        for ptr in failed:
            g = groups.setdefault(ptr, _Group(ptr, [], []))
            g.struck.append(o)
            if len(failed) == 1:
                g.alone.append(o)
    if not groups:
        return []
    out = ["", style.bold(f"REJECTED ({total} offerings), by clause:")]
    for g in sorted(groups.values(), key=lambda g: (-len(g.struck), g.pointer)):
        clause = _compact(clause_term(d, g.pointer))
        if len(clause) > 60:
            clause = clause[:59] + "…"
        out.append(f"  {style.bad(g.pointer)}  {clause}  struck {len(g.struck)}")
        pool = g.alone or g.struck  # the best ranked of those this clause alone struck
        examples = [r.offering_id for r in order(pool)[:EXAMPLES]]
        for oid in examples:
            example = d.catalog.get(oid)
            assert example is not None
            out.append(style.clip(f"      {oid}: {_reason(dec, g.pointer, example)}"))
        out += _nearest(dec, g, examples[0] if g.alone and examples else None, style)
    return out


def _nearest(dec: Decision, g: _Group, best_id: str | None, style: Style) -> list[str]:
    """Of the offerings this clause alone rejected, the one that would rank first without it,
    and the smallest change that admits it."""
    best = dec.derivation.catalog.get(best_id) if best_id else None
    if best is None:
        return []
    if g.pointer.startswith("builtin:"):
        return [f"      nearest miss {best.id} (a built-in clause: no policy change admits it)"]
    why = explain_one(dec, best)
    change = "; ".join(why.changes) or (why.change_note or "")
    return [style.clip(f"      nearest miss {best.id}: {change}")]


def _reason(dec: Decision, ptr: str, o: Offering) -> str:
    d = dec.derivation
    ctx = dec.context if d.verdicts[ptr][o.id][0] == Truth.R else None
    return dec.evaluator.reason(ptr, o, ctx)


def _compact(term: Any) -> str:
    import json

    return json.dumps(term, separators=(",", ":"), ensure_ascii=False)
