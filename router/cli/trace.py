"""`unhardcoded trace …` and `unhardcoded replay`: reading the records store.

  unhardcoded trace list   [--since T --until T --policy HASH|NAME --served-by ID --outcome O
                            --limit N]
  unhardcoded trace show   ID [--json] [--no-proofs] [--stored]
  unhardcoded trace export --jsonl [filters] [--full]
  unhardcoded trace verify
  unhardcoded trace prune  --older-than 30d | --max-size 1GB
  unhardcoded replay       ID | --all [--since T]
  unhardcoded diff         --policy NEW.json | --catalog NEW.json [--overlay O …] [--since T]

Every command takes `--records PATH` (default: `UNHARDCODED_RECORDS`, else the user's data
directory). Times are ISO dates or date-times (UTC when no offset is given), or an age such as
`30m`, `12h`, `7d`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import sys
from collections import Counter
from typing import Any

from router.records import (
    KEY_VARIABLE,
    Query,
    Replayer,
    StoredRecord,
    default_location,
    open_store,
    verify,
)
from router.records.location import is_dsn
from router.records.store import RecordsError, RecordStore

_AGE = re.compile(r"^(\d{1,6})([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE = re.compile(r"^(\d{1,12})\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?$", re.IGNORECASE)
_BYTES = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12, "kib": 2**10,
          "mib": 2**20, "gib": 2**30, "tib": 2**40}


def records_location(args: argparse.Namespace) -> str:
    if args.records:
        return str(args.records)
    found = default_location(os.environ)
    if found is None:
        raise RecordsError("records.location", "records",
                           "recording is off (UNHARDCODED_RECORDS=off) or no data directory",
                           "pass `--records PATH`")
    return str(found)


def _open(args: argparse.Namespace, must_exist: bool = True) -> RecordStore:
    where = records_location(args)
    if must_exist and not is_dsn(where) and not os.path.exists(where):
        raise RecordsError("records.not_found", where, "no records store here yet",
                           "decisions are recorded here once `route` or `complete` runs; "
                           "or pass `--records PATH`")
    return open_store(where)


def when(text: str, now: dt.datetime | None = None) -> str:
    """A time bound for queries, as the store's UTC text."""
    now = now or dt.datetime.now(dt.UTC)
    age = _AGE.match(text.strip())
    if age:
        at = now - dt.timedelta(seconds=int(age.group(1)) * _UNITS[age.group(2)])
    else:
        try:
            at = dt.datetime.fromisoformat(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"`{text}` is neither an ISO date/time nor an age like `7d`") from None
        if at.tzinfo is None:
            at = at.replace(tzinfo=dt.UTC)
    return at.astimezone(dt.UTC).isoformat(timespec="microseconds")


def size(text: str) -> int:
    m = _SIZE.match(text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"`{text}` is not a size like `500MB` or `1GB`")
    return int(m.group(1)) * _BYTES[(m.group(2) or "b").lower()]


def _query(args: argparse.Namespace, limit: int | None = None) -> Query:
    return Query(since=args.since, until=args.until, policy=args.policy,
                 served_by=args.served_by, outcome=args.outcome, limit=limit,
                 newest_first=limit is not None)


def cmd_trace_list(args: argparse.Namespace) -> int:
    store = _open(args)
    try:
        rows = list(store.iterate(_query(args, args.limit)))
    finally:
        store.close()
    print(f"{'at (UTC)':<26} {'trace id':<32} {'policy':<12} {'outcome':<13} winner / served by")
    for r in rows:
        who = r.served_by or r.selected or "-"
        name = r.policy_name or r.policy_hash[:12]
        print(f"{r.at[:26]:<26} {r.trace_id[:32]:<32} {name[:12]:<12} {r.outcome:<13} {who}")
    print(f"({len(rows)} record{'s' if len(rows) != 1 else ''}, newest first)", file=sys.stderr)
    return 0


def _get(store: RecordStore, trace_id: str) -> StoredRecord:
    found = store.get(trace_id)
    if found is None:
        raise RecordsError("records.unknown_trace", store.where, f"no record `{trace_id}`",
                           "see `unhardcoded trace list`")
    return found


def cmd_trace_show(args: argparse.Namespace) -> int:
    store = _open(args)
    try:
        stored = _get(store, args.id)
        if args.stored:
            print(json.dumps(stored.body, indent=1, ensure_ascii=False))
            return 0
        replayer = Replayer(store)
        if args.json:
            print(json.dumps(replayer.record(stored, proofs=not args.no_proofs), indent=1,
                             ensure_ascii=False))
            return 0
        return _show_text(replayer, stored, args.max_rows, args.all)
    finally:
        store.close()


def _show_text(replayer: Replayer, stored: StoredRecord, max_rows: int | None,
               every: bool) -> int:
    from router.cli.render import decision_table
    from router.cli.style import style_for
    from router.cli.summary import decision_summary
    from router.facade import RouteResult

    replayed = replayer.replay(stored)
    if replayed.decision is None or replayed.status != "same":
        raise RecordsError("records.not_reproducible", replayer.store.where,
                           f"record `{stored.trace_id}` cannot be rebuilt: {replayed.status}: "
                           f"{replayed.detail}", "`trace show ID --stored` shows what was stored")
    body = stored.body
    print(f"trace    {stored.trace_id}   at {body['at']}   outcome {stored.outcome}")
    result = RouteResult(replayed.decision, stored.trace_id, body["config_hash"])
    if every or max_rows is not None:
        sys.stdout.write(decision_table(result, "stored snapshot", max_rows))
    else:
        sys.stdout.write(decision_summary(result, "stored snapshot", style_for(sys.stdout)))
    dispatch = body.get("dispatch")
    if dispatch:
        for a in dispatch.get("attempts", []):
            status = f" HTTP {a['status']}" if a.get("status") else ""
            print(f"  hop {a['hop']} {a['offering']} retry {a['retry']}: {a['outcome']}{status}")
        cost = dispatch.get("cost_usd")
        print(f"served_by {dispatch.get('served_by')}  cost "
              f"{'unknown' if cost is None else f'${cost:.6f}'}  latency "
              f"{dispatch.get('latency_ms')} ms")
    return 0


def cmd_trace_export(args: argparse.Namespace) -> int:
    store = _open(args)
    try:
        replayer = Replayer(store) if args.full else None
        for stored in store.iterate(_query(args)):
            line: dict[str, Any] = stored.body if replayer is None else \
                replayer.record(stored, proofs=False)
            sys.stdout.write(json.dumps(line, ensure_ascii=False, sort_keys=True) + "\n")
    finally:
        store.close()
    return 0


def _key() -> bytes | None:
    value = os.environ.get(KEY_VARIABLE)
    return value.encode() if value else None


def cmd_trace_verify(args: argparse.Namespace) -> int:
    store = _open(args)
    try:
        links, heads = store.chains()
        counted = Counter[str]()

        def counting() -> Any:
            for item in links:
                counted[item.writer] += 1
                yield item

        key = _key()
        found = verify(counting(), heads, key)
    finally:
        store.close()
    for f in found:
        print(f.line())
    total = sum(counted.values())
    signed = "signatures checked" if key else f"not signed-checked (set {KEY_VARIABLE})"
    print(f"{total} records in {len(heads)} chains; {len(found)} problem"
          f"{'s' if len(found) != 1 else ''}; {signed}", file=sys.stderr)
    return 1 if found else 0


def cmd_trace_prune(args: argparse.Namespace) -> int:
    if args.older_than is None and args.max_size is None:
        raise RecordsError("records.usage", "prune", "nothing to prune by",
                           "give `--older-than 30d` and/or `--max-size 1GB`")
    store = _open(args)
    try:
        older = dt.datetime.fromisoformat(args.older_than) if args.older_than else None
        report = store.prune(older, args.max_size, _key())
    finally:
        store.close()
    print(f"pruned {report.records} records and {report.objects} unreferenced objects")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    if bool(args.id) == bool(args.all):
        raise RecordsError("records.usage", "replay", "name one trace id, or `--all`",
                           "e.g. `unhardcoded replay --all --since 1d`")
    store = _open(args)
    try:
        replayer = Replayer(store)
        items = [_get(store, args.id)] if args.id else store.iterate(
            Query(since=args.since, until=args.until))
        tally = Counter[str]()
        for stored in items:
            got = replayer.replay(stored)
            tally[got.status] += 1
            if got.status != "same":
                print(f"{got.status:<14} {got.trace_id}  {got.detail}")
    finally:
        store.close()
    print(", ".join(f"{n} {s}" for s, n in sorted(tally.items())) or "no records",
          file=sys.stderr)
    return 1 if tally["differs"] or tally["unreadable"] else 0


def cmd_diff(args: argparse.Namespace) -> int:
    from router.catalog.offerings import default_catalog, load_catalog
    from router.catalog.overlays import apply_overlays, load_overlays
    from router.common import jsonio
    from router.policy.admit import admit_text
    from router.records.whatif import WhatIf

    if not (args.policy or args.catalog or args.overlay):
        raise RecordsError("records.usage", "diff", "nothing to compare against",
                           "give `--policy NEW.json` and/or `--catalog NEW.json` / `--overlay`")
    policy = None
    if args.policy:
        try:
            policy = admit_text(jsonio.read_text(args.policy, 8 * 1024 * 1024))
        except jsonio.JsonRefused as exc:
            raise RecordsError("policy.unreadable", args.policy, exc.message) from None
    catalog = None
    if args.catalog or args.overlay:
        base = load_catalog(args.catalog) if args.catalog else default_catalog()
        catalog = apply_overlays(base, load_overlays(args.overlay)) if args.overlay else base
    store = _open(args)
    try:
        report = WhatIf(Replayer(store), policy, catalog).run(
            store.iterate(Query(since=args.since, until=args.until, policy=args.of_policy)))
    finally:
        store.close()
    if args.json:
        print(json.dumps(report.to_json(), indent=1, ensure_ascii=False))
        return 0
    what = " and ".join(x for x in (
        f"policy {policy.hash[:16]}" if policy else "",
        f"catalog {catalog.version}" if catalog else "") if x)
    print(f"{report.decisions} stored decisions re-decided under {what}: "
          f"{len(report.moved)} moved")
    for (a, b), n in sorted(report.pairs.items(), key=lambda kv: (-kv[1], str(kv[0])))[:20]:
        print(f"  {n:>6}  {a or '(none)'} -> {b or '(none)'}")
    change = report.cost_after - report.cost_before
    pct = f" ({change / report.cost_before * 100:+.1f}%)" if report.cost_before else ""
    print(f"estimated cost of the winners: ${report.cost_before:.6f} -> "
          f"${report.cost_after:.6f}{pct}"
          + (f"; {report.unpriced} decisions without a price" if report.unpriced else ""))
    shown = report.moved if args.max_rows is None else report.moved[:args.max_rows]
    for m in shown:
        print(f"{m.at[:19]}  {m.trace_id}  {m.old or '(none)'} -> {m.new or '(none)'}: {m.why}")
    if len(shown) < len(report.moved):
        print(f"… and {len(report.moved) - len(shown)} more (--max-rows, --json)")
    for line in report.unreadable:
        print(f"unreadable {line}", file=sys.stderr)
    return 0


def add_parsers(sub: Any, count: Any) -> None:
    """The `trace` and `replay` commands, added to the main parser's subcommands."""
    def records_opt(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--records", metavar="PATH",
                        help="records store (default: UNHARDCODED_RECORDS, else the user's "
                             "data directory)")

    def filters(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--since", type=when, help="from this time (ISO, or an age: 7d)")
        sp.add_argument("--until", type=when, help="before this time")
        sp.add_argument("--policy", help="a policy hash (or its first characters) or name")
        sp.add_argument("--served-by", help="an offering id")
        sp.add_argument("--outcome",
                        choices=("routed", "ok", "failed", "cancelled", "no_admissible"))

    t = sub.add_parser("trace", help="stored decision records: list, show, export, verify, "
                                     "prune")
    ts = t.add_subparsers(dest="trace_command", required=True)
    lst = ts.add_parser("list", help="one line per stored decision, newest first")
    records_opt(lst)
    filters(lst)
    lst.add_argument("--limit", type=count, default=50)
    lst.set_defaults(fn=cmd_trace_list)
    show = ts.add_parser("show", help="a stored decision, rebuilt: the table `route` prints, "
                                      "or the full record")
    show.add_argument("id")
    records_opt(show)
    show.add_argument("--json", action="store_true", help="the full record (spec §10)")
    show.add_argument("--no-proofs", action="store_true", help="with --json: without proofs")
    show.add_argument("--stored", action="store_true", help="the stored row as it is")
    show.add_argument("--all", action="store_true",
                      help="every offering, one line each (default: a summary)")
    show.add_argument("--max-rows", type=count, default=None,
                      help="with --all (implied): limit table rows per section")
    show.set_defaults(fn=cmd_trace_show)
    ex = ts.add_parser("export", help="stored rows (or full records) as JSON lines")
    ex.add_argument("--jsonl", action="store_true", required=True)
    ex.add_argument("--full", action="store_true", help="rebuild each full record (slower)")
    records_opt(ex)
    filters(ex)
    ex.set_defaults(fn=cmd_trace_export)
    ver = ts.add_parser("verify", help="check every writer's hash chain (and signatures with "
                                       f"{KEY_VARIABLE})")
    records_opt(ver)
    ver.set_defaults(fn=cmd_trace_verify)
    pr = ts.add_parser("prune", help="delete old records and what only they referenced")
    records_opt(pr)
    pr.add_argument("--older-than", type=when, help="an age (30d) or a time")
    pr.add_argument("--max-size", type=size, help="keep the newest records within this size")
    pr.set_defaults(fn=cmd_trace_prune)

    rp = sub.add_parser("replay", help="re-decide stored decisions and report any that differ")
    rp.add_argument("id", nargs="?")
    rp.add_argument("--all", action="store_true")
    rp.add_argument("--since", type=when)
    rp.add_argument("--until", type=when)
    records_opt(rp)
    rp.set_defaults(fn=cmd_replay)

    df = sub.add_parser("diff", help="re-decide stored requests under a new policy or catalog: "
                                     "what moves, and why")
    df.add_argument("--policy", help="the new policy (replaces each record's own)")
    df.add_argument("--catalog", help="the new catalog file (replaces each record's snapshot)")
    df.add_argument("--overlay", action="append", default=[], metavar="FILE",
                    help="overlay applied to the new catalog (alone: to the embedded one)")
    df.add_argument("--since", type=when)
    df.add_argument("--until", type=when)
    df.add_argument("--of-policy", metavar="HASH|NAME",
                    help="only records decided under this policy")
    df.add_argument("--max-rows", type=count, default=20, help="changes listed")
    df.add_argument("--json", action="store_true")
    records_opt(df)
    df.set_defaults(fn=cmd_diff)

