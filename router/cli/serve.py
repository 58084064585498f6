"""`unhardcoded serve`: the OpenAI-compatible service (docs/service.md). Only parses flags."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any, count: Any, seconds: Any) -> None:
    s = sub.add_parser("serve", help="the OpenAI-compatible HTTP service: point any OpenAI SDK "
                                     "at it (docs/service.md)")
    s.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; others need --keys)")
    s.add_argument("--port", type=count, default=8080)
    s.add_argument("--policies", metavar="DIR",
                   help="directory of named policies: NAME.json is `policy:NAME`")
    s.add_argument("--catalog", metavar="FILE", help="catalog file (default: embedded)")
    s.add_argument("--overlay", action="append", default=[], metavar="FILE",
                   help="overlay applied over the catalog (repeatable, in order)")
    s.add_argument("--records", metavar="PATH|DSN",
                   help="records store: a SQLite file or postgresql://… (default: "
                        "UNHARDCODED_RECORDS, else the user's data directory)")
    s.add_argument("--no-record", action="store_true", help="record nothing")
    s.add_argument("--store-content", action="store_true",
                   help="store message content in the records (default: its SHA-256 only)")
    s.add_argument("--keys", metavar="FILE",
                   help="caller keys file (`unhardcoded keys new`); without it, loopback only")
    s.add_argument("--workers", type=count, default=1, help="processes sharing the port")
    s.add_argument("--watch", type=seconds, metavar="SECONDS",
                   help="reload when the policies, catalog, overlay or keys files change")
    s.add_argument("--max-body-bytes", type=count, default=None,
                   help="largest request body accepted (default 8 MiB)")
    s.add_argument("--body-timeout", type=seconds, default=30.0, metavar="SECONDS",
                   help="a request body must arrive within this (default 30 s)")
    s.add_argument("--graceful", type=seconds, default=30.0, metavar="SECONDS",
                   help="on SIGTERM, in-flight requests get this long (default 30 s)")
    s.add_argument("--max-concurrency", type=count, default=None,
                   help="open connections past which the service answers 503")
    s.add_argument("--log-level", default="info",
                   choices=("critical", "error", "warning", "info", "debug"))
    s.set_defaults(fn=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    from router.service.server import serve
    from router.service.settings import ServiceSettings

    defaults = ServiceSettings()
    settings = ServiceSettings(
        host=args.host, port=args.port, policies=args.policies, catalog=args.catalog,
        overlays=tuple(args.overlay), records=args.records, record=not args.no_record,
        store_content=args.store_content, keys=args.keys, workers=args.workers,
        max_body_bytes=args.max_body_bytes or defaults.max_body_bytes,
        body_timeout_s=args.body_timeout, graceful_s=args.graceful, watch_s=args.watch,
        max_concurrency=args.max_concurrency, log_level=args.log_level)
    return serve(settings)
