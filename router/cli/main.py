"""The `unhardcoded` command line.

  unhardcoded route   --policy P.json --request R.json [--catalog C.json] [--json] [--live]
  unhardcoded explain --policy P.json --model ID [--request R.json] [--format text|json|dot]
  unhardcoded complete --policy P.json --request R.json [--json]   (calls providers)
  unhardcoded policy check P.json
  unhardcoded catalog list|show ID|stats|export [--catalog C.json] [--overlay O.toml ...]
  unhardcoded catalog import --from litellm|openrouter|models.dev SOURCE -o OUT.json
  unhardcoded catalog discover [--provider P ...] [--json]          (asks providers)
  unhardcoded trace list|show ID|export|verify|prune [--records PATH]  (stored decisions)
  unhardcoded replay ID | --all [--since T]          (re-decide stored decisions)
  unhardcoded diff --policy NEW.json | --catalog NEW.json   (what would move, and why)
  unhardcoded catalog diff OLD NEW

Exit status: 0 success; 1 `trace verify` / `replay` found a problem; 2 refused input (every
problem printed); 3 no admissible offering;
4 dispatch failed (every hop failed, or a provider refused the request); 5 the derivation
failed (its worker could not start or died twice, or it ran past its time limit).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from router.cli.inputs import InputError, catalog_of, policy_text, read_json, replace_file
from router.common.problems import Problem, RefusedError
from router.engine.worker import EngineError

_read_json = read_json
_policy_text = policy_text
_catalog = catalog_of


def _config(args: argparse.Namespace) -> Any:
    """Settings from the command line: where decisions are recorded."""
    from router.config import RouterConfig

    content = bool(getattr(args, "store_content", False))
    if getattr(args, "no_record", False):
        return RouterConfig(records=None)
    if getattr(args, "records", None):
        return RouterConfig(records=args.records, store_content=content)
    return RouterConfig(store_content=content)


def _router(args: argparse.Namespace) -> Any:
    from router.facade import Router

    return Router(_catalog(args), config=_config(args))


def _policy_name(path: str) -> str:
    """A policy's name in the records: its file name without `.json` / `.policy.json`."""
    name = Path(path).name
    for suffix in (".json", ".policy"):
        name = name.removesuffix(suffix)
    return name or path


def _recorded(router: Any, trace_id: str) -> None:
    if router.records is not None:
        print(f"recorded as trace {trace_id} in {router.records.store.where} "
              f"(`unhardcoded trace show {trace_id}`)", file=sys.stderr)


def _live(args: argparse.Namespace, router: Any) -> Any:
    return router.live_from_environment() if args.live else router.installed_state()


def cmd_route(args: argparse.Namespace) -> int:
    from router.cli.render import decision_table
    from router.cli.style import style_for
    from router.cli.summary import decision_summary

    router = _router(args)
    try:
        policy = _policy_text(args.policy)
        request = _read_json(args.request, "request")
        result = router.route(policy, request, _live(args, router),
                              policy_name=_policy_name(args.policy))
        if args.json:
            print(json.dumps(result.record(), indent=1, ensure_ascii=False))
        else:
            label = args.catalog or "embedded"
            if args.overlay:
                label += f" + {len(args.overlay)} overlay" + (
                    "s" if len(args.overlay) > 1 else "")
            if args.all or args.max_rows is not None:
                sys.stdout.write(decision_table(result, label, args.max_rows))
            else:
                sys.stdout.write(decision_summary(result, label, style_for(sys.stdout)))
        _recorded(router, result.trace_id)
        return 0 if result.selected else 3
    finally:
        router.close()


def cmd_explain(args: argparse.Namespace) -> int:
    from router.cli.render import explanation_text
    from router.cli.style import style_for
    from router.cli.summary import EXPLAINED
    from router.explain.proof import to_dot, to_node_link

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
            disabled = len(router.catalog.disabled)
            print("(live state not consulted: every callable offering counted as available"
                  + (f", except {disabled} disabled by overlays)" if disabled else ")"))
        style = style_for(sys.stdout)
        shown = found if args.all else found[:EXPLAINED]
        if len(found) > len(shown):  # one line each, then the first few in full
            print(f"{len(found)} offerings of `{args.model}`:")
            for e in found:
                first = e.failed[0].reason if e.failed else f"rank {e.rank_position}"
                print(style.clip(f"  {e.offering:<50} {e.verdict:<9} {first}"))
            print(f"\nthe first {len(shown)} in full (--all for every one):\n")
        for e in shown:
            sys.stdout.write(explanation_text(e, style))
            if args.proof:
                for f in e.failed:
                    sys.stdout.write(f.proof.text(1) + "\n")
    return 0


def _dispatch_router(args: argparse.Namespace) -> Any:
    from router.facade import Router

    return Router(args.catalog, overlays=args.overlay or (), config=_config(args))


def cmd_complete(args: argparse.Namespace) -> int:
    from router.dispatch.completion import DispatchError, NoAdmissibleOffering

    router = _dispatch_router(args)
    policy = _policy_text(args.policy)
    request = _read_json(args.request, "request")
    try:
        streamed = isinstance(request, dict) and request.get("stream") is True
        name = _policy_name(args.policy)
        result = (router.stream_sync(policy, request, policy_name=name) if streamed
                  else router.complete_sync(policy, request, policy_name=name))
        if streamed:
            chunks = []
            for chunk in result:
                chunks.append(chunk)
                if not args.json:
                    _print_delta(chunk)
            body: Any = {"chunks": chunks}
            if not args.json:
                print()
        else:
            body = result.response
            if not args.json:
                for choice in body.get("choices", []):
                    message = choice.get("message") or {}
                    print(message.get("content") or json.dumps(message.get("tool_calls")))
        record = result.record(proofs=False)
        if args.json:
            print(json.dumps({"response": body, "record": record}, indent=1,
                             ensure_ascii=False))
        else:
            _print_dispatch_summary(record)
        if streamed:
            result.close()  # the stream has ended: its record is queued
        _recorded(router, record["trace_id"])
        return 0 if record["outcome"] == "ok" else 4
    except NoAdmissibleOffering as exc:
        _print_dispatch_error(exc, args.json)
        return 3
    except DispatchError as exc:
        _print_dispatch_error(exc, args.json)
        return 4
    finally:
        router.close()


def _print_delta(chunk: dict[str, Any]) -> None:
    if "error" in chunk:
        print(f"\n[stream error: {chunk['error'].get('message')}]", file=sys.stderr)
        return
    for choice in chunk.get("choices") or []:
        text = (choice.get("delta") or {}).get("content")
        if text:
            sys.stdout.write(text)
            sys.stdout.flush()


def _print_dispatch_summary(record: dict[str, Any]) -> None:
    usage = record.get("usage")
    cost = record.get("cost_usd")
    print(f"--\nserved_by {record['served_by']}  trace {record['trace_id']}  "
          f"catalog {record['catalog_version']}", file=sys.stderr)
    for a in record["attempts"]:
        status = f" HTTP {a['status']}" if a.get("status") else ""
        detail = f" ({a['detail']})" if a.get("detail") else ""
        print(f"  hop {a['hop']} {a['offering']} retry {a['retry']}: {a['outcome']}{status}"
              f"{detail}", file=sys.stderr)
    print(f"usage {json.dumps(usage) if usage else 'not reported'}  cost "
          f"{'unknown' if cost is None else f'${cost:.6f}'}", file=sys.stderr)


def _print_dispatch_error(exc: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"ok": False, "error": exc.to_json(), "record": exc.record},
                         indent=1, ensure_ascii=False), file=sys.stderr)
    else:
        print(f"{exc.code}: {exc.message}", file=sys.stderr)
        provider_error = getattr(exc, "provider_error", None)
        if provider_error is not None:
            print("provider said: " + json.dumps(provider_error, ensure_ascii=False)[:2000],
                  file=sys.stderr)


def cmd_catalog_discover(args: argparse.Namespace) -> int:
    router = _dispatch_router(args)
    try:
        found = router.discover_sync(args.provider or None, args.timeout)
    finally:
        router.close()
    if args.json:
        print(json.dumps({
            "at": found.at.isoformat(),
            "endpoints": [e.__dict__ | {"not_entitled": list(e.not_entitled)}
                          for e in found.endpoints],
            "not_entitled": {oid: v.reason for oid, v in sorted(found.values.items())},
        }, indent=1, ensure_ascii=False))
        return 0
    if not found.endpoints:
        print("no provider with a key (and an adapter) in the catalog: nothing to ask")
    for e in found.endpoints:
        if e.error:
            print(f"{e.provider:<14} {e.base_url}  listing failed: {e.error}")
        else:
            print(f"{e.provider:<14} {e.base_url}  {e.models} models listed; "
                  f"{e.entitled} offerings entitled, {len(e.not_entitled)} not")
            for oid in e.not_entitled[:args.max_rows]:
                print(f"  not_entitled {oid}")
    return 0


def cmd_policy_check(args: argparse.Namespace) -> int:
    from router.policy.admit import admit_text

    policy = admit_text(_policy_text(args.file))
    print(json.dumps({"ok": True, "hash": policy.hash, "canonical": policy.canonical}))
    return 0


def cmd_catalog(args: argparse.Namespace) -> int:
    from router.cli.render import offering_line

    catalog = _catalog(args)
    if args.catalog_command == "list":
        print(f"{catalog.version}  {len(catalog)} offerings  source: {catalog.source}")
        for o in catalog:
            suffix = "  disabled" if o.id in catalog.disabled else ""
            print(offering_line(o) + suffix)
        return 0
    if not args.id:
        raise InputError([Problem(code="cli.usage", pointer="",
                                  message="`catalog show` needs an offering id")])
    offering = catalog.get(args.id)
    if offering is None:
        from router.common.problems import did_you_mean

        raise InputError([Problem(code="catalog.unknown_offering", pointer="",
                                  message=f"no offering `{args.id}`",
                                  hint=did_you_mean(args.id, [o.id for o in catalog]))])
    print(json.dumps(offering.static_json(), indent=1, ensure_ascii=False))
    if offering.id in catalog.disabled:
        print(f"(`{offering.id}` is disabled by an overlay)", file=sys.stderr)
    return 0


def cmd_catalog_import(args: argparse.Namespace) -> int:
    from router.catalog.importers import import_catalog, render_catalog

    result = import_catalog(args.source, args.input)
    _write(args.output, render_catalog(result.catalog.to_json()))
    report = result.report
    stream = sys.stderr if args.output == "-" else sys.stdout
    if args.report_json:
        body = {"ok": True, "output": args.output, "version": result.catalog.version,
                **report.to_json()}
        print(json.dumps(body, indent=1, ensure_ascii=False), file=stream)
    else:
        stream.write(report.text())
        if args.output != "-":
            stream.write(f"wrote `{args.output}` (catalog {result.catalog.version})\n")
    return 0


def cmd_catalog_stats(args: argparse.Namespace) -> int:
    from router.catalog.stats import catalog_stats, stats_text
    from router.dispatch.callability import callability, callability_text

    catalog = _catalog(args)
    stats = catalog_stats(catalog)
    calls = callability(catalog, os.environ if args.live else None)
    if args.json:
        print(json.dumps({**stats.to_json(), "callability": calls.to_json()}, indent=1,
                         ensure_ascii=False))
    else:
        sys.stdout.write(stats_text(stats, args.top))
        sys.stdout.write("\n" + callability_text(calls, args.top))
    return 0


def cmd_catalog_diff(args: argparse.Namespace) -> int:
    from router.catalog.changes import catalog_changes
    from router.catalog.offerings import default_catalog, load_catalog

    def load(path: str) -> Any:
        return default_catalog() if path == "embedded" else load_catalog(path)

    changes = catalog_changes(load(args.old), load(args.new))
    if args.json:
        print(json.dumps(changes.to_json(), indent=1, ensure_ascii=False))
    else:
        sys.stdout.write(changes.text(args.max_rows))
    return 0


def cmd_catalog_export(args: argparse.Namespace) -> int:
    from router.catalog.importers import render_catalog
    from router.catalog.overlays import export_document

    _write(args.output, render_catalog(export_document(_catalog(args))))
    return 0


def _write(path: str, text: str) -> None:
    """Write `text` to `path` atomically (`-` is stdout): a failure leaves the old file."""
    if path == "-":
        sys.stdout.write(text)
        return
    try:
        replace_file(path, text.encode("utf-8"))
    except OSError as exc:
        raise InputError([Problem(code="cli.unwritable", pointer="",
                                  message=f"cannot write `{path}`: {exc.strerror}")]) from None


def _seconds(text: str) -> float:
    """A positive, finite number of seconds (at most an hour) for argparse."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"`{text}` is not a number of seconds") from None
    if not (0 < value <= 3600):  # also refuses nan and inf
        raise argparse.ArgumentTypeError(f"`{text}`: seconds must be > 0 and at most 3600")
    return value


def _count(text: str) -> int:
    """A non-negative row count for argparse."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"`{text}` is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"`{text}` is negative; use 0 or more")
    return value


def parser() -> argparse.ArgumentParser:
    from router import __version__

    p = argparse.ArgumentParser(prog="unhardcoded", description="LLM policy router")
    p.add_argument("--version", action="version", version=f"unhardcoded {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    def catalog_opt(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--catalog", help="catalog JSON file (default: the embedded catalog)")
        sp.add_argument("--overlay", action="append", default=[], metavar="FILE",
                        help="operator overlay (JSON or TOML) applied to the catalog; "
                             "repeat to apply several, in order")

    def record_opts(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--records", metavar="PATH",
                        help="record decisions in this SQLite file (default: "
                             "UNHARDCODED_RECORDS, else the user's data directory)")
        sp.add_argument("--no-record", action="store_true", help="do not record decisions")
        sp.add_argument("--store-content", action="store_true",
                        help="record the request's messages too (default: only their SHA-256)")

    r = sub.add_parser("route", help="decide (dry run) and print the decision")
    r.add_argument("--policy", required=True)
    r.add_argument("--request", required=True)
    catalog_opt(r)
    r.add_argument("--json", action="store_true", help="print the decision record")
    r.add_argument("--live", action="store_true", help="consult keys in the environment")
    r.add_argument("--all", action="store_true",
                   help="every offering, one line each (default: a summary that fits a screen)")
    r.add_argument("--max-rows", type=_count, default=None,
                   help="with --all (implied): limit table rows per section")
    record_opts(r)
    r.set_defaults(fn=cmd_route)

    e = sub.add_parser("explain", help="why an offering was rejected, admitted or outranked")
    e.add_argument("--policy", required=True)
    e.add_argument("--model", required=True, help="offering id or model name")
    e.add_argument("--request")
    catalog_opt(e)
    e.add_argument("--live", action="store_true")
    e.add_argument("--format", choices=("text", "json", "dot", "graph-json"), default="text")
    e.add_argument("--proof", action="store_true", help="print the proof trees (text)")
    e.add_argument("--all", action="store_true",
                   help="every matching offering in full (default: the first 3, the rest "
                        "one line each)")
    e.set_defaults(fn=cmd_explain)

    cp = sub.add_parser("complete", help="decide and call the winner over your keys, failing "
                                         "over along the cascade")
    cp.add_argument("--policy", required=True)
    cp.add_argument("--request", required=True, help="an OpenAI chat-completions body (JSON)")
    catalog_opt(cp)
    cp.add_argument("--json", action="store_true", help="print the response and the record")
    record_opts(cp)
    cp.set_defaults(fn=cmd_complete)

    pol = sub.add_parser("policy", help="policy tools")
    pol_sub = pol.add_subparsers(dest="policy_command", required=True)
    chk = pol_sub.add_parser("check", help="admit a policy: every problem, or canonical form")
    chk.add_argument("file")
    chk.set_defaults(fn=cmd_policy_check)
    from router.cli.lint import add_parser as add_lint
    from router.cli.policy_test import add_parser as add_policy_test

    add_lint(pol_sub, catalog_opt)
    add_policy_test(pol_sub, catalog_opt)

    c = sub.add_parser("catalog", help="the offerings in force; import, stats, export, "
                                       "discover")
    cat = c.add_subparsers(dest="catalog_command", required=True)
    lst = cat.add_parser("list", help="one line per offering")
    catalog_opt(lst)
    lst.set_defaults(fn=cmd_catalog)
    show = cat.add_parser("show", help="one offering's static attributes as JSON")
    show.add_argument("id", nargs="?")
    catalog_opt(show)
    show.set_defaults(fn=cmd_catalog)
    imp = cat.add_parser("import", help="map a LiteLLM, OpenRouter or models.dev file to a "
                                        "catalog file")
    imp.add_argument("--from", dest="source", required=True, choices=_importer_names(),
                     help="the format of SOURCE")
    imp.add_argument("input", metavar="SOURCE",
                     help="the source file (models.dev: the TOML tree directory or api.json)")
    imp.add_argument("-o", "--output", required=True,
                     help="catalog file to write (`-` for stdout); written only if valid")
    imp.add_argument("--report-json", action="store_true", help="print the report as JSON")
    imp.set_defaults(fn=cmd_catalog_import)
    st = cat.add_parser("stats", help="counts by provider, region, capability; prices")
    catalog_opt(st)
    st.add_argument("--json", action="store_true")
    st.add_argument("--top", type=_count, default=15, help="providers listed in text output")
    st.add_argument("--live", action="store_true",
                    help="also count what this environment's keys and credentials configure")
    st.set_defaults(fn=cmd_catalog_stats)
    dis = cat.add_parser("discover", help="ask each provider with a key which models it may "
                                          "use (the rest are not_entitled)")
    catalog_opt(dis)
    dis.add_argument("--provider", action="append", default=[], help="only this provider")
    dis.add_argument("--timeout", type=_seconds, default=10.0, help="seconds per listing")
    dis.add_argument("--json", action="store_true")
    dis.add_argument("--max-rows", type=_count, default=20, help="not_entitled ids shown each")
    dis.set_defaults(fn=cmd_catalog_discover)
    ex = cat.add_parser("export", help="write the catalog in force (overlays applied) as a "
                                       "catalog file")
    catalog_opt(ex)
    ex.add_argument("-o", "--output", default="-", help="file to write (default: stdout)")
    ex.set_defaults(fn=cmd_catalog_export)
    cdf = cat.add_parser("diff", help="offerings added, removed, repriced, capability changes")
    cdf.add_argument("old", help="catalog file (or `embedded`)")
    cdf.add_argument("new", help="catalog file (or `embedded`)")
    cdf.add_argument("--json", action="store_true")
    cdf.add_argument("--max-rows", type=_count, default=50, help="rows per section")
    cdf.set_defaults(fn=cmd_catalog_diff)

    sc = sub.add_parser("schema", help="the JSON Schema of a document the router writes")
    sc.add_argument("what", choices=("record",), help="record: the decision record")
    sc.set_defaults(fn=cmd_schema)

    from router.cli.keys import add_parsers as add_keys_parsers
    from router.cli.serve import add_parser as add_serve_parser
    from router.cli.trace import add_parsers

    add_parsers(sub, _count)
    add_serve_parser(sub, _count, _seconds)
    add_keys_parsers(sub)
    return p


def cmd_schema(args: argparse.Namespace) -> int:
    from router.explain.record_model import DecisionRecord

    print(json.dumps(DecisionRecord.model_json_schema(), indent=1))
    return 0


def _importer_names() -> list[str]:
    from router.catalog.importers import IMPORTERS

    return list(IMPORTERS)


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
    except EngineError as exc:  # before BrokenPipeError: a worker's pipe is not our stdout
        print(json.dumps({"ok": False, "problems": [exc.to_json()]}, indent=1,
                         ensure_ascii=False), file=sys.stderr)
        return 5
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
