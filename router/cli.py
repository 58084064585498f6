"""The `unhardcoded` command line.

  unhardcoded route   --policy P.json --request R.json [--catalog C.json] [--json] [--live]
  unhardcoded explain --policy P.json --model ID [--request R.json] [--format text|json|dot]
  unhardcoded policy check P.json
  unhardcoded catalog list|show ID [--catalog C.json]

Exit status: 0 success; 2 refused input (every problem printed); 3 no admissible offering.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from router.problems import Problem, RefusedError

MAX_INPUT_BYTES = 8 * 1024 * 1024


class InputError(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(p.line() for p in problems))


def _read_json(path: str, what: str) -> Any:
    p = Path(path)
    try:
        if p.stat().st_size > MAX_INPUT_BYTES:
            raise InputError([Problem(code=f"{what}.too_large", pointer="",
                                      message=f"`{path}` is over {MAX_INPUT_BYTES} bytes")])
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError([Problem(code=f"{what}.unreadable", pointer="",
                                  message=f"cannot read `{path}`: {exc.strerror}")]) from None
    except UnicodeDecodeError:
        raise InputError([Problem(code=f"{what}.invalid_json", pointer="",
                                  message=f"`{path}` is not UTF-8 text")]) from None
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InputError([Problem(code=f"{what}.invalid_json", pointer="",
                                  message=f"`{path}` is not valid JSON: {exc}")]) from None


def _policy_text(path: str) -> str:
    p = Path(path)
    try:
        return p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError([Problem(code="policy.unreadable", pointer="",
                                  message=f"cannot read `{path}`: {exc}")]) from None


def _router(args: argparse.Namespace) -> Any:
    from router.api import Router

    return Router(args.catalog) if args.catalog else Router()


def _live(args: argparse.Namespace, router: Any) -> Any:
    from router.live import LiveState

    return router.live_from_environment() if args.live else LiveState.not_consulted()


def cmd_route(args: argparse.Namespace) -> int:
    from router.render import decision_table

    router = _router(args)
    policy = _policy_text(args.policy)
    request = _read_json(args.request, "request")
    result = router.route(policy, request, _live(args, router))
    if args.json:
        print(json.dumps(result.record(), indent=1, ensure_ascii=False))
    else:
        label = args.catalog or "embedded"
        sys.stdout.write(decision_table(result, label, args.max_rows))
    return 0 if result.selected else 3


def cmd_explain(args: argparse.Namespace) -> int:
    from router.proof import to_dot, to_node_link
    from router.render import explanation_text

    router = _router(args)
    policy = _policy_text(args.policy)
    request = _read_json(args.request, "request") if args.request else None
    found = router.explain(policy, args.model, request, _live(args, router))
    if not found:
        raise InputError([Problem(code="explain.unknown_offering", pointer="",
                                  message=f"no offering or model `{args.model}` in the catalog",
                                  hint="see `unhardcoded catalog list`")])
    if args.format == "json":
        print(json.dumps([e.to_json() for e in found], indent=1, ensure_ascii=False))
    elif args.format == "dot":
        for e in found:
            for f in e.failed:
                sys.stdout.write(to_dot(f.proof))
    elif args.format == "graph-json":
        print(json.dumps([to_node_link(f.proof) for e in found for f in e.failed], indent=1))
    else:
        if not args.live:
            print("(live state not consulted: every offering counted as available)")
        for e in found:
            sys.stdout.write(explanation_text(e))
            if args.proof:
                for f in e.failed:
                    sys.stdout.write(f.proof.text(1) + "\n")
    return 0


def cmd_policy_check(args: argparse.Namespace) -> int:
    from router.admit import admit_text

    policy = admit_text(_policy_text(args.file))
    print(json.dumps({"ok": True, "hash": policy.hash, "canonical": policy.canonical}))
    return 0


def cmd_catalog(args: argparse.Namespace) -> int:
    from router.render import catalog_listing

    router = _router(args)
    if args.action == "list":
        sys.stdout.write(catalog_listing(router.catalog))
        return 0
    if not args.id:
        raise InputError([Problem(code="cli.usage", pointer="",
                                  message="`catalog show` needs an offering id")])
    offering = router.catalog.get(args.id)
    if offering is None:
        from router.problems import did_you_mean

        raise InputError([Problem(code="catalog.unknown_offering", pointer="",
                                  message=f"no offering `{args.id}`",
                                  hint=did_you_mean(args.id, [o.id for o in router.catalog]))])
    print(json.dumps(offering.static_json(), indent=1, ensure_ascii=False))
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="unhardcoded", description="LLM policy router")
    sub = p.add_subparsers(dest="command", required=True)

    def catalog_opt(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--catalog", help="catalog JSON file (default: the embedded catalog)")

    r = sub.add_parser("route", help="decide (dry run) and print the decision")
    r.add_argument("--policy", required=True)
    r.add_argument("--request", required=True)
    catalog_opt(r)
    r.add_argument("--json", action="store_true", help="print the decision record")
    r.add_argument("--live", action="store_true", help="consult keys in the environment")
    r.add_argument("--max-rows", type=int, default=None, help="limit table rows per section")
    r.set_defaults(fn=cmd_route)

    e = sub.add_parser("explain", help="why an offering was rejected, admitted or outranked")
    e.add_argument("--policy", required=True)
    e.add_argument("--model", required=True, help="offering id or model name")
    e.add_argument("--request")
    catalog_opt(e)
    e.add_argument("--live", action="store_true")
    e.add_argument("--format", choices=("text", "json", "dot", "graph-json"), default="text")
    e.add_argument("--proof", action="store_true", help="print the proof trees (text)")
    e.set_defaults(fn=cmd_explain)

    pol = sub.add_parser("policy", help="policy tools")
    pol_sub = pol.add_subparsers(dest="policy_command", required=True)
    chk = pol_sub.add_parser("check", help="admit a policy: every problem, or canonical form")
    chk.add_argument("file")
    chk.set_defaults(fn=cmd_policy_check)

    c = sub.add_parser("catalog", help="the offerings in force")
    c.add_argument("action", choices=("list", "show"))
    c.add_argument("id", nargs="?")
    catalog_opt(c)
    c.set_defaults(fn=cmd_catalog)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        code: int = args.fn(args)
        return code
    except RefusedError as exc:
        print(json.dumps({"ok": False, "refused": exc.what, "problems": exc.to_json()},
                         indent=1, ensure_ascii=False), file=sys.stderr)
        return 2
    except InputError as exc:
        print(json.dumps({"ok": False, "problems": [p.model_dump() for p in exc.problems]},
                         indent=1, ensure_ascii=False), file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
