"""`unhardcoded policy lint P.json [--catalog C.json] [--overlay O ...] [--json]`.

Admits the policy, derives it over the catalog in force (in this process) and prints what
`router.explain.lint` finds: one `code at pointer: message (hint)` line per finding, or with
`--json` a JSON list of `{code, pointer, message, hint}`. A one-line summary goes to stderr.

Exit status: 0 no findings; 1 findings; 2 refused (the policy, catalog or an overlay failed
validation, or a file could not be read: every problem on stderr as JSON, as other commands do).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from router.cli.inputs import InputError, catalog_of, policy_text
from router.common.problems import RefusedError


def add_parser(pol_sub: Any, catalog_opt: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add `lint` to the `policy` subcommands; `catalog_opt` adds --catalog / --overlay."""
    lp = pol_sub.add_parser("lint", help="what a policy does over a catalog: clauses that "
                                         "reject or admit everything, contradictions, typos, "
                                         "dead rank keys (exit 1 on findings)")
    lp.add_argument("file", help="the policy (JSON)")
    catalog_opt(lp)
    lp.add_argument("--json", action="store_true", help="print the findings as a JSON list")
    lp.set_defaults(fn=cmd_policy_lint)


def cmd_policy_lint(args: argparse.Namespace) -> int:
    from router.explain.lint import lint
    from router.policy.admit import admit_text

    try:
        policy = admit_text(policy_text(args.file))
        catalog = catalog_of(args)
        findings = lint(policy, catalog)
    except RefusedError as exc:
        print(json.dumps({"ok": False, "refused": exc.what, "problems": exc.to_json()},
                         indent=1, ensure_ascii=False), file=sys.stderr)
        return 2
    except InputError as exc:  # a file that cannot be read, as `main` reports it
        print(json.dumps({"ok": False, "problems": [p.model_dump() for p in exc.problems]},
                         indent=1, ensure_ascii=False), file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([f.model_dump() for f in findings], indent=1, ensure_ascii=False))
    else:
        for f in findings:
            print(f.line())
    count = f"{len(findings)} finding{'s' if len(findings) != 1 else ''}" if findings \
        else "no findings"
    print(f"{count}: policy {policy.hash[:16]} over catalog {catalog.version} "
          f"({len(catalog)} offerings)", file=sys.stderr)
    return 1 if findings else 0
