"""`unhardcoded keys …`: the caller keys of `unhardcoded serve --keys FILE`.

  unhardcoded keys new    --file FILE --id ID [--team T] [--policy NAME …] [--label L …]
  unhardcoded keys list   --file FILE
  unhardcoded keys revoke --file FILE --id ID

`new` creates the file when it is missing, adds one entry and prints the key once, on stdout
alone (`KEY=$(unhardcoded keys new …)` captures it); only its SHA-256 is stored. The file is
rewritten whole (a temporary file, then a rename), readable and writable by its owner only
(0600). `list` never prints a key or its hash. A refusal raises `KeysError` (exit status 2,
every problem printed). Two `keys` commands writing one file at the same time are not
serialized: the last rename wins.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from router.cli.inputs import replace_file
from router.common.problems import Problem, did_you_mean
from router.service.keys import (
    MAX_KEYS,
    MAX_KEYS_FILE_BYTES,
    KeyEntry,
    KeysError,
    entry_problems,
    key_hash,
    new_key,
    now_text,
    read_keys_file,
    render_keys,
    to_entry,
)

FILE_MODE = 0o600


def cmd_keys_new(args: argparse.Namespace) -> int:
    entries = read_keys_file(args.file) if os.path.lexists(args.file) else ()
    key = new_key()
    item: dict[str, Any] = {"id": args.id, "sha256": key_hash(key)}
    if args.team is not None:
        item["team"] = args.team
    if args.policy:
        item["policies"] = args.policy
    if args.label:
        item["labels"] = args.label
    item["created"] = now_text()
    problems = entry_problems(item, "")
    if any(e.id == args.id for e in entries):
        problems.append(Problem(code="keys.duplicate_id", pointer="/id",
                                message=f"`{args.file}` already has a key `{args.id}`",
                                hint="choose another id, or revoke that key first"))
    if len(entries) >= MAX_KEYS:
        problems.append(Problem(code="keys.too_many", pointer="",
                                message=f"`{args.file}` holds {len(entries)} keys; the limit "
                                        f"is {MAX_KEYS}", hint="revoke keys no longer used"))
    if problems:
        raise KeysError(problems)
    entry = to_entry(item)
    write_keys_file(args.file, (*entries, entry))
    print(key)
    sys.stdout.flush()
    print(f"key `{entry.id}` added to `{args.file}`. The key itself is not stored anywhere: "
          "copy it now, it cannot be shown again.", file=sys.stderr)
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    entries = read_keys_file(args.file)
    print(f"{'id':<24} {'team':<16} {'policies':<28} {'labels':<20} created")
    for e in entries:
        policies = "(any)" if e.policies is None else ",".join(e.policies)
        print(f"{e.id:<24} {e.team or '-':<16} {policies:<28} "
              f"{','.join(e.labels) or '-':<20} {e.created or '-'}")
    print(f"({len(entries)} key{'s' if len(entries) != 1 else ''})", file=sys.stderr)
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    entries = read_keys_file(args.file)
    kept = tuple(e for e in entries if e.id != args.id)
    if len(kept) == len(entries):
        raise KeysError([Problem(code="keys.unknown_id", pointer="/id",
                                 message=f"`{args.file}` has no key `{args.id}`",
                                 hint=did_you_mean(args.id, [e.id for e in entries])
                                 or "see `unhardcoded keys list`")])
    write_keys_file(args.file, kept)
    print(f"revoked key `{args.id}`; {len(kept)} key{'s' if len(kept) != 1 else ''} left")
    return 0


def write_keys_file(path: str | Path, entries: Sequence[KeyEntry]) -> None:
    """Replace the keys file atomically with one holding `entries`, mode 0600: a failure leaves
    the old file as it was."""
    text = render_keys(entries).encode("utf-8")
    if len(text) > MAX_KEYS_FILE_BYTES:
        raise KeysError([Problem(code="keys.too_large", pointer="",
                                 message=f"the keys file would be over {MAX_KEYS_FILE_BYTES} "
                                         "bytes", hint="revoke keys no longer used")])
    try:
        replace_file(path, text, FILE_MODE)
    except OSError as exc:
        raise KeysError([Problem(code="keys.unwritable", pointer="",
                                 message=f"cannot write `{path}`: {exc.strerror}")]) from None


def add_parsers(sub: Any) -> None:
    """The `keys` command, added to the main parser's subcommands."""
    k = sub.add_parser("keys", help="caller keys for `unhardcoded serve`: new, list, revoke")
    ks = k.add_subparsers(dest="keys_command", required=True)

    def file_opt(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--file", required=True, metavar="FILE", help="the keys file (JSON)")

    new = ks.add_parser("new", help="add a key and print it once (only its hash is stored)")
    file_opt(new)
    new.add_argument("--id", required=True, help="the key's name in the file and the records")
    new.add_argument("--team", help="a team name recorded with each decision")
    new.add_argument("--policy", action="append", default=[], metavar="NAME",
                     help="a named policy the key may use; repeat for several (default: any "
                          "policy, inline policies and plain models included)")
    new.add_argument("--label", action="append", default=[], metavar="LABEL",
                     help="a label added to the key's requests; repeat for several")
    new.set_defaults(fn=cmd_keys_new)
    lst = ks.add_parser("list", help="one line per key: id, team, policies, labels, created")
    file_opt(lst)
    lst.set_defaults(fn=cmd_keys_list)
    rv = ks.add_parser("revoke", help="remove a key from the file")
    file_opt(rv)
    rv.add_argument("--id", required=True)
    rv.set_defaults(fn=cmd_keys_revoke)
