"""`unhardcoded policy test TESTS.json|DIR`: a policy's table-driven tests, run by the router.

  unhardcoded policy test TESTS.json|DIR [--catalog C.json] [--overlay O.toml ...] [--json]

Each case is decided by the real `Router.route` (a dry run; nothing is recorded), one router per
catalog the cases name, and compared with its expectations (`router.explain.policy_tests`). A
failed case prints the expected against the actual and the `explain` of the offending offering.
Exit status: 0 every case passed, 1 a case failed, 2 a tests file (or a file it names) was
refused. `--catalog`/`--overlay` are the catalog of files and cases that name none.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from router.catalog.offerings import Catalog
from router.cli.render import explanation_text
from router.config import RouterConfig
from router.decide.decider import Decision
from router.explain.policy_suite import Case, CatalogChoice, Suite, load_suites
from router.explain.policy_tests import (
    CaseResult,
    SuiteResult,
    report_json,
    run_suite,
)
from router.facade import Router


def add_parser(pol_sub: Any, catalog_opt: Callable[[argparse.ArgumentParser], None]) -> None:
    """`policy test`, added to the `policy` subcommands of the main parser."""
    t = pol_sub.add_parser("test", help="run a policy's table-driven tests (*.tests.json)")
    t.add_argument("path", metavar="TESTS.json|DIR",
                   help="a tests file, or a directory: every *.tests.json in it")
    catalog_opt(t)
    t.add_argument("--json", action="store_true", help="print a machine-readable report")
    t.set_defaults(fn=cmd_policy_test)


def cmd_policy_test(args: argparse.Namespace) -> int:
    default = CatalogChoice(Path(args.catalog) if args.catalog else None,
                            tuple(Path(o) for o in args.overlay or ()))
    catalogs: dict[CatalogChoice, Catalog] = {}
    suites = load_suites(Path(args.path), default, catalogs)
    routers = Routers(catalogs)
    try:
        results = [run_suite(s, routers.route) for s in suites]
    finally:
        routers.close()
    if args.json:
        print(json.dumps(report_json(results), indent=1, ensure_ascii=False))
    else:
        sys.stdout.write(report_text(results))
    return 0 if all(r.failed == 0 for r in results) else 1


class Routers:
    """One router per catalog the cases decide over: records off, no keys read, and the
    decision time each case asks for (`at`, else now)."""

    def __init__(self, catalogs: Mapping[CatalogChoice, Catalog]) -> None:
        self.catalogs = catalogs
        self.routers: dict[CatalogChoice, Router] = {}
        self.at: dt.datetime | None = None

    def now(self) -> dt.datetime:
        return self.at or dt.datetime.now(dt.UTC)

    def route(self, suite: Suite, case: Case) -> Decision:
        router = self.routers.get(case.catalog)
        if router is None:
            config = RouterConfig(records=None, environ={}, clock=self.now)
            router = self.routers[case.catalog] = Router(self.catalogs[case.catalog],
                                                         config=config)
        self.at = case.at
        return router.route(suite.policy_text, case.request, case.live).decision

    def close(self) -> None:
        for router in self.routers.values():
            router.close()


def report_text(results: Sequence[SuiteResult]) -> str:
    out: list[str] = []
    for r in results:
        out.append(f"{r.suite.path}   policy {r.suite.policy_path} "
                   f"({r.suite.policy.hash[:16]})")
        for c in r.cases:
            out.append(f"  {'ok  ' if c.ok else 'FAIL'}  {c.case.name}")
            if not c.ok:
                out += _failure(c)
    total = sum(len(r.cases) for r in results)
    failed = sum(r.failed for r in results)
    files = f"{len(results)} file" + ("s" if len(results) != 1 else "")
    out.append(f"{files}, {total} case{'s' if total != 1 else ''}: {total - failed} passed, "
               f"{failed} failed")
    return "\n".join(out) + "\n"


def _failure(c: CaseResult) -> list[str]:
    """Each unmet expectation (expected against actual), the decision, and the `explain` of
    each offending offering."""
    pad = " " * 8
    out = [f"{pad}{m.message}   ({m.pointer})" for m in c.mismatches]
    out.append(f"{pad}decided over {c.case.catalog.label()}: winner {c.winner or 'none'}, "
               f"cascade [{', '.join(c.cascade)}], {c.admissible} admissible")
    for e in c.explanations:
        out.append(f"{pad}explain:")
        out += [f"{pad}  {line}" for line in explanation_text(e).splitlines()]
    return out
