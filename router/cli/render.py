"""Human-readable output: the decision table, explanations, catalog listings."""

from __future__ import annotations

from typing import Any

from router.catalog.offerings import Catalog, Offering
from router.cli.style import PLAIN, Style, fmt
from router.explain.explanation import Explanation
from router.facade import RouteResult
from router.policy.truth import Truth


def decision_table(result: RouteResult, catalog_label: str, max_rows: int | None = None
                   ) -> str:
    dec = result.decision
    d = dec.derivation
    ctx = dec.context
    f = ctx.features
    ev = dec.evaluator
    labels = [k.label() for k in d.policy.rank]
    out = [
        f"policy   {d.policy.hash[:16]}   catalog {d.catalog.version} ({len(d.catalog)} "
        f"offerings, {catalog_label})   {d.ruleset_version}",
        f"request  input_tokens≈{f.input_tokens}  max_output_tokens={fmt(f.max_output_tokens)}"
        f"  needs=[{', '.join(f.needs)}]  labels=[{', '.join(f.labels)}]",
        "live     " + ("consulted (keys in the environment)" if ctx.live.consulted
                       else "not consulted: every callable offering counted as available "
                            "(use --live)"),
        "",
    ]
    if dec.selected is None:
        out.append("NO ADMISSIBLE OFFERING — the request would fail before any call.")
    else:
        r0 = dec.ranking[0]
        keys = "  ".join(f"{lab}={fmt(v)}" for lab, v in zip(labels, r0.keys, strict=True))
        out.append(f"WINNER    {dec.selected}   {keys}")
        for i, oid in enumerate(dec.cascade, start=1):
            r = dec.ranking[i]
            keys = "  ".join(f"{lab}={fmt(v)}" for lab, v in zip(labels, r.keys, strict=True))
            out.append(f"CASCADE {i} {oid}   {keys}")
        calls = "; ".join(f"{c.offering_id}: {c.params}" for c in dec.calls if c.params)
        if calls:
            out.append(f"MUTATIONS {calls}")
    hops = set(dec.hops)
    rest = [r for r in dec.ranking if r.offering_id not in hops]
    out.append("")
    out.append(f"ADMISSIBLE, OUTRANKED ({len(rest)})")
    for r in rest[:max_rows] if max_rows else rest:
        keys = "  ".join(f"{lab}={fmt(v)}" for lab, v in zip(labels, r.keys, strict=True))
        out.append(f"  {r.offering_id:<58} {keys}")
    rejected = [o for o in d.catalog if dec.failed_clauses(o.id)]
    out.append("")
    out.append(f"REJECTED ({len(rejected)})  offering — clause that struck it — why")
    shown = rejected[:max_rows] if max_rows else rejected
    for o in shown:
        failed = dec.failed_clauses(o.id)
        ptr = failed[0]
        stage_ctx = ctx if d.verdicts[ptr][o.id][0] == Truth.R else None
        more = f"  (+{len(failed) - 1} more)" if len(failed) > 1 else ""
        out.append(f"  {o.id:<58} {ptr:<30} {ev.reason(ptr, o, stage_ctx)}{more}")
    if max_rows and len(rejected) > max_rows:
        out.append(f"  … {len(rejected) - max_rows} more (drop --max-rows to see all)")
    return "\n".join(out) + "\n"


def explanation_text(e: Explanation, style: Style = PLAIN) -> str:
    verdict = e.verdict.upper()
    out = [f"{e.offering}: " + (style.bad(verdict) if e.verdict == "rejected"
                                else style.good(verdict))]
    if e.verdict == "rejected":
        for f in e.failed:
            out.append(f"  {style.bad('✗')} {f.pointer}  {f.clause}")
            out.append(f"      {f.reason}   [{f.stage}]")
            facts = [", ".join(f"{p}{tuple(a)}" for p, a in _leaf_facts(f.proof))]
            if facts[0]:
                out.append(f"      facts: {facts[0]}")
        if e.changes:
            out.append("  smallest change to admit it:")
            out += [f"    - {c}" for c in e.changes]
        if e.change_note:
            out.append(f"  note: {e.change_note}")
        return "\n".join(out) + "\n"
    for ptr, reason in e.passed:
        out.append(f"  {style.good('✓')} {ptr}: {reason}")
    out.append(f"  rank position {e.rank_position}; keys {e.keys}")
    if e.verdict == "outranked":
        out.append(f"  winner {e.winner}; keys {e.winner_keys}")
    return "\n".join(out) + "\n"


def _leaf_facts(proof: Any) -> list[tuple[str, tuple[Any, ...]]]:
    facts = list(proof.facts)
    for c in proof.children:
        facts += _leaf_facts(c)
    return facts


def offering_line(o: Offering) -> str:
    return (f"{o.id:<60} {o.region:<7} ctx={fmt(o.context_window):<8} "
            f"in={fmt(o.input_price):<8} out={fmt(o.output_price):<8}")


def catalog_listing(catalog: Catalog) -> str:
    head = f"{catalog.version}  {len(catalog)} offerings  source: {catalog.source}\n"
    return head + "\n".join(offering_line(o) for o in catalog) + "\n"
