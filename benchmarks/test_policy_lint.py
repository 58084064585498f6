"""`policy lint` on the embedded catalog (3,189 offerings): a 15-clause policy.

Target (issue 10): ≤ 2 s for the whole lint. The derivation (pyDatalog, in this process) is the
bulk; the analysis after it (bitsets per clause, pairwise checks, the representative request's
ranking) is reported separately in `extra_info`.

Run: python -m pytest benchmarks/test_policy_lint.py --benchmark-only
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from router.catalog.offerings import default_catalog
from router.engine.derive import derive
from router.explain.lint import lint, lint_derivation
from router.policy.admit import admit

# The workload's 15 realistic clauses (benchmarks/workload.py), with names from the embedded
# catalog: comparisons, in/not_in, set operators, a `when` on a label, `any`, `not`.
FILTER_15: list[Any] = [
    [">=", "context_window", 32000],
    ["<=", "output_price", 45.0],
    ["in", "region", ["eu", "global", "us"]],
    ["has_any", "capabilities", ["tools", "json_schema"]],
    ["<=", "input_price", 12.0],
    ["not_in", "provider", ["novita", "gmi"]],
    ["has_none", "capabilities", ["audio_input"]],
    [">=", "max_output_tokens", 4096],
    ["when", ["req", "pii"], ["in", "region", ["eu"]]],
    ["any", ["has", "capabilities", "reasoning"], ["<", "input_price", 3.0]],
    ["!=", "model", "gpt-3.5-turbo"],
    ["<=", "cached_input_price", 5.0],
    ["not", ["has", "capabilities", "pdf_input"]],
    ["has_any", "capabilities", ["streaming", "vision"]],
    ["<", "output_price", 50.0],
]
# 15 plain comparisons and lists, no nesting: what most policies look like.
FLAT_15: list[Any] = [
    *FILTER_15[:8],  # the same first eight, then flat ones instead of `when`/`any`/`not`
    ["has", "capabilities", "streaming"],
    [">", "input_price", 0.01],
    ["!=", "model", "gpt-3.5-turbo"],
    ["<=", "cached_input_price", 5.0],
    ["not_in", "region", ["us-gov"]],
    ["<", "context_window", 5000000],
    ["<", "output_price", 50.0],
]


def make_policy(clauses: list[Any]) -> list[Any]:
    return ["policy", ["ev_zero"], ["filter", *clauses],
            ["rank", ["asc", "est_cost"], ["desc", "context_window"]],
            ["select", ["first"], ["cascade", 2]], ["mutate", ["clamp_max_tokens"]],
            ["fallback"]]


POLICY = make_policy(FILTER_15)


@pytest.fixture(scope="module")
def catalog() -> Any:
    return default_catalog()


@pytest.mark.parametrize("shape", ["mixed", "flat"])
def test_lint_embedded_catalog_15_clauses(benchmark, catalog: Any, shape: str) -> None:  # type: ignore[no-untyped-def]
    policy = admit(make_policy(FILTER_15 if shape == "mixed" else FLAT_15))
    assert len(policy.filters) == 15
    findings = benchmark.pedantic(lint, args=(policy, catalog), rounds=3, iterations=1,
                                  warmup_rounds=0)
    # Over the embedded catalog some of these clauses are redundant: nothing worse.
    assert findings
    assert {f.code for f in findings} <= {"lint.admits_all", "lint.implied"}
    # The split: derivation vs the analysis over its verdicts.
    t0 = time.perf_counter()
    d = derive(policy, catalog)
    t1 = time.perf_counter()
    again = lint_derivation(d)
    t2 = time.perf_counter()
    assert [f.line() for f in again] == [f.line() for f in findings]
    benchmark.extra_info["offerings"] = len(catalog)
    benchmark.extra_info["cost_per_offering"] = d.program.cost()
    benchmark.extra_info["findings"] = len(findings)
    benchmark.extra_info["derive_s"] = round(t1 - t0, 3)
    benchmark.extra_info["analysis_s"] = round(t2 - t1, 3)
