"""Policy tests: table-driven tests for a policy, as `opa test` does for Rego.

A tests file (`*.tests.json`, schema 1) names a policy file and lists cases. A case is a request
(an OpenAI chat body, or the request features directly), optional live state, catalog, overlays
and decision time, and expectations about the decision: the winner, the cascade, offerings that
must be admitted, offerings that must be rejected (optionally by a named clause), or that nothing
is admissible. The full schema is in docs/cli.md § policy test.

`load_suite` checks a whole file and raises `PolicyTestsError` with every problem (code, RFC 6901
pointer into the tests file, message, hint): the JSON itself, every case's request, the policy
file, each catalog and overlay file, and each expected offering id and clause pointer against
the catalog and the policy. `run_suite` decides each case with a caller's `route` (the command
line passes the real `Router.route`: a dry run, unrecorded), compares, and explains the offending
offering of each failed expectation (`explain_one`: why rejected, admitted or outranked, with the
smallest change). This module never builds a router: `router.cli.policy_test` does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from router.decide.decider import Decision
from router.explain.explanation import Explanation, explain_one
from router.explain.policy_suite import MAX_EXPLAINED, Case, Suite

# --------------------------------------------------------------------------- running


@dataclass(frozen=True)
class Mismatch:
    """One expectation the decision did not meet."""

    expectation: str  # winner | cascade | admitted | rejected | nothing_admissible
    pointer: str  # the expectation, in the tests file
    message: str
    # winner: ids (null: none); cascade: lists; admitted: "admitted" against the pointers
    # that reject it; rejected: {"by", "only"} against those pointers ([]: it is admitted);
    # nothing_admissible: booleans
    expected: Any
    actual: Any
    offering: str | None  # the offering to explain, if one is to blame

    def to_json(self) -> dict[str, Any]:
        return {"expectation": self.expectation, "pointer": self.pointer,
                "message": self.message, "expected": self.expected, "actual": self.actual,
                "offering": self.offering}


@dataclass(frozen=True)
class CaseResult:
    case: Case
    winner: str | None
    cascade: tuple[str, ...]
    admissible: int
    mismatches: tuple[Mismatch, ...]
    explanations: tuple[Explanation, ...]

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def to_json(self) -> dict[str, Any]:
        return {"name": self.case.name, "pointer": self.case.pointer, "ok": self.ok,
                "catalog": self.case.catalog.label(),
                "actual": {"winner": self.winner, "cascade": list(self.cascade),
                           "admissible": self.admissible},
                "failures": [m.to_json() for m in self.mismatches],
                "explain": [e.to_json() for e in self.explanations]}


@dataclass(frozen=True)
class SuiteResult:
    suite: Suite
    cases: tuple[CaseResult, ...]

    @property
    def failed(self) -> int:
        return sum(not c.ok for c in self.cases)

    def to_json(self) -> dict[str, Any]:
        return {"file": str(self.suite.path), "policy": str(self.suite.policy_path),
                "policy_hash": self.suite.policy.hash, "passed": len(self.cases) - self.failed,
                "failed": self.failed, "cases": [c.to_json() for c in self.cases]}


Route = Callable[[Suite, Case], Decision]


def run_suite(suite: Suite, route: Route) -> SuiteResult:
    """Decide every case with `route` and compare."""
    return SuiteResult(suite, tuple(check_case(case, route(suite, case)) for case in suite.cases))


def report_json(results: Sequence[SuiteResult]) -> dict[str, Any]:
    """The machine-readable report of a run (`policy test --json`)."""
    total = sum(len(r.cases) for r in results)
    failed = sum(r.failed for r in results)
    return {"ok": failed == 0, "cases": total, "passed": total - failed, "failed": failed,
            "files": [r.to_json() for r in results]}


def check_case(case: Case, decision: Decision) -> CaseResult:
    """Compare one decision with the case's expectations; explain each offending offering."""
    e = case.expect
    ptr = f"{case.pointer}/expect"
    found: list[Mismatch] = []
    winner, cascade = decision.selected, decision.cascade
    if e.has_winner and winner != e.winner:
        found.append(Mismatch("winner", f"{ptr}/winner",
                              f"expected winner {_name(e.winner)}, got {_name(winner)}",
                              e.winner, winner, e.winner or winner))
    if e.cascade is not None and cascade != e.cascade:
        found.append(Mismatch("cascade", f"{ptr}/cascade",
                              f"expected cascade {_ids(e.cascade)}, got {_ids(cascade)}",
                              list(e.cascade), list(cascade), _cascade_culprit(e.cascade, cascade)))
    for j, oid in enumerate(e.admitted):
        failed = decision.failed_clauses(oid)
        if failed:
            found.append(Mismatch("admitted", f"{ptr}/admitted/{j}",
                                  f"expected `{oid}` admitted, but {_rejected_by(failed)}",
                                  "admitted", list(failed), oid))
    for r in e.rejected:
        failed = decision.failed_clauses(r.offering)
        if r.met(failed):
            continue
        actual = _rejected_by(failed) if failed else _admitted(decision, r.offering)
        found.append(Mismatch("rejected", r.pointer, f"expected `{r.offering}` {r.wanted()}, "
                              f"but {actual}", {"by": r.by, "only": r.only}, list(failed),
                              r.offering))
    if e.nothing_admissible is not None and (winner is None) != e.nothing_admissible:
        if e.nothing_admissible:
            message = (f"expected nothing admissible, but {len(decision.admissible)} offerings "
                       f"are; the winner is `{winner}`")
        else:
            message = "expected an admissible offering, but nothing is admissible"
        found.append(Mismatch("nothing_admissible", f"{ptr}/nothing_admissible", message,
                              e.nothing_admissible, winner is None, winner))
    return CaseResult(case, winner, cascade, len(decision.admissible), tuple(found),
                      _explain(decision, found))


def _explain(decision: Decision, found: Sequence[Mismatch]) -> tuple[Explanation, ...]:
    catalog = decision.derivation.catalog
    names = list(dict.fromkeys(m.offering for m in found if m.offering))[:MAX_EXPLAINED]
    offerings = [o for o in (catalog.get(n) for n in names) if o is not None]
    return tuple(explain_one(decision, o) for o in offerings)


def _cascade_culprit(expected: Sequence[str], actual: Sequence[str]) -> str | None:
    """The expected hop to explain: the first one missing, else the first out of place."""
    for oid in expected:
        if oid not in actual:
            return oid
    for want, got in zip(expected, actual, strict=False):
        if want != got:
            return want
    return actual[len(expected)] if len(actual) > len(expected) else None


def _rejected_by(failed: Sequence[str]) -> str:
    return f"it is rejected by {', '.join(failed)}"


def _admitted(decision: Decision, oid: str) -> str:
    position = decision.admissible.index(oid) + 1
    role = ("the winner" if oid == decision.selected else
            f"cascade hop {decision.cascade.index(oid) + 1}" if oid in decision.cascade
            else "outranked")
    return f"it is admitted (rank {position} of {len(decision.admissible)}, {role})"


def _name(oid: str | None) -> str:
    return f"`{oid}`" if oid else "none (nothing admissible)"


def _ids(ids: Sequence[str]) -> str:
    return "[" + ", ".join(ids) + "]"
