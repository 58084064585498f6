"""Caller keys: who may call the HTTP service, under which policies, with which labels.

A caller sends `Authorization: Bearer <key>`. The keys file holds only each key's SHA-256::

    {"schema": 1, "keys": [{"id": "support-1", "sha256": "<64 hex>", "team": "support",
                            "policies": ["support-tickets"], "labels": ["pii"],
                            "created": "2026-12-02T07:00:00Z"}]}

`policies` absent: the key may use any policy, inline policies and plain model names included;
present: only the named policies. `labels` are added to the caller's requests; `team` and the
key's id go into the decision record (never the key, nor its hash). The file is read strictly
(`jsonio`), bounded (`MAX_KEYS_FILE_BYTES`, `MAX_KEYS`), and a bad file is refused with every
problem (`KeysError`). `unhardcoded keys new|list|revoke` (router/cli/keys.py) writes it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import re
import secrets
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from router.common import jsonio
from router.common.problems import (
    LABEL,
    Problem,
    RefusedError,
    child_pointer,
    did_you_mean,
    quote,
)
from router.request.features import MAX_LABELS

KEYS_SCHEMA = 1
MAX_KEYS = 10_000
MAX_KEYS_FILE_BYTES = 4 * 1024 * 1024
MAX_KEYS_DEPTH = 8
MAX_TEAM_CHARS = 64
MAX_POLICIES = 256
# The longest `Authorization` value looked at; a longer one is refused before it is hashed.
MAX_AUTHORIZATION_CHARS = 1024
KEY_PREFIX = "uh_"
KEY_ID = LABEL  # 1-64 of [A-Za-z0-9_.:-], starting with a letter or digit
POLICY_NAME = LABEL
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_TOKEN = re.compile(r"^[A-Za-z0-9._~+/-]+=*$")  # RFC 6750 b64token
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_FIELDS = ("id", "sha256", "team", "policies", "labels", "created")
_TOP = ("schema", "keys")


class KeysError(RefusedError):
    """A keys file (or a new entry for one) that cannot be used; carries every problem."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("keys", problems)


@dataclass(frozen=True)
class Caller:
    """Who is calling: a key's id, team and labels, and the named policies it may use (None:
    any). `ANONYMOUS` is every caller of a server without a keys file."""

    key_id: str | None
    team: str | None
    labels: tuple[str, ...]
    policies: frozenset[str] | None

    def allows(self, policy_name: str | None) -> bool:
        """Whether this caller may decide under the policy named `policy_name`; None is an
        inline policy or a plain model name, which only an unrestricted key may use."""
        if self.policies is None:
            return True
        return policy_name is not None and policy_name in self.policies

    def to_json(self) -> dict[str, Any]:
        """The caller as the decision record shows it: never the key nor its hash."""
        return {"key_id": self.key_id, "team": self.team, "labels": list(self.labels)}


ANONYMOUS = Caller(None, None, (), None)


@dataclass(frozen=True)
class KeyEntry:
    """One entry of a keys file, validated."""

    id: str
    sha256: str
    team: str | None = None
    policies: tuple[str, ...] | None = None
    labels: tuple[str, ...] = ()
    created: str | None = None

    def caller(self) -> Caller:
        policies = None if self.policies is None else frozenset(self.policies)
        return Caller(self.id, self.team, self.labels, policies)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "sha256": self.sha256}
        if self.team is not None:
            out["team"] = self.team
        if self.policies is not None:
            out["policies"] = list(self.policies)
        if self.labels:
            out["labels"] = list(self.labels)
        if self.created is not None:
            out["created"] = self.created
        return out


def new_key() -> str:
    """A fresh caller key: `uh_` and 43 URL-safe characters (256 random bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)[:43]


def key_hash(key: str) -> str:
    """What the keys file stores for a key. A plain SHA-256 is the right hash here: the keys are
    256 random bits, so there is nothing to guess a preimage from and no need for a slow,
    salted password hash (GitHub and Stripe store their tokens the same way); and a fast hash
    keeps authentication one hash and one dictionary lookup per request."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def now_text() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class CallerKeys:
    """The keys a server accepts, indexed by hash: `authenticate` costs one SHA-256 and one
    dictionary lookup, whatever the number of keys."""

    def __init__(self, entries: Iterable[KeyEntry]) -> None:
        self._by_hash: dict[str, tuple[str, Caller]] = {
            e.sha256: (e.sha256, e.caller()) for e in entries}

    @classmethod
    def load(cls, path: str | Path) -> CallerKeys:
        """The keys in a file; `KeysError` with every problem when it cannot be used."""
        return cls(read_keys_file(path))

    def __len__(self) -> int:
        return len(self._by_hash)

    def authenticate(self, authorization: str | None) -> Caller | None:
        """The caller an `Authorization` header value names, or None when it is missing, not
        `Bearer <key>`, too long, or not a key in the file.

        The lookup is by the hash of the presented key: its timing depends only on that hash,
        which tells a caller nothing about the stored ones (finding a key from a hash is a
        preimage attack). The match is then confirmed in constant time."""
        token = bearer_token(authorization)
        if token is None:
            return None
        digest = key_hash(token)
        found = self._by_hash.get(digest)
        if found is None or not hmac.compare_digest(found[0], digest):
            return None
        return found[1]


def bearer_token(authorization: str | None) -> str | None:
    """The token of `Bearer <token>` (the scheme in any case, RFC 7235), or None."""
    if authorization is None or len(authorization) > MAX_AUTHORIZATION_CHARS:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not _TOKEN.fullmatch(token):
        return None
    return token


# --------------------------------------------------------------------------- the file


def read_keys_file(path: str | Path) -> tuple[KeyEntry, ...]:
    """Read and validate a keys file. A file others may write is refused too: whoever can write
    it can add a key."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise KeysError([Problem(code="keys.not_found", pointer="",
                                 message=f"no keys file `{path}`",
                                 hint="create one with `unhardcoded keys new`")]) from None
    except OSError as exc:
        raise KeysError([Problem(code="keys.unreadable", pointer="",
                                 message=f"cannot read `{path}`: {exc.strerror}")]) from None
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise KeysError([Problem(code="keys.insecure_file", pointer="",
                                 message=f"`{path}` may be written by other users",
                                 hint=f"chmod 600 {path}")])
    try:
        data = jsonio.read_json(path, MAX_KEYS_FILE_BYTES, MAX_KEYS_DEPTH)
    except jsonio.JsonRefused as exc:
        raise KeysError([Problem(code=f"keys.{exc.kind}", pointer="", message=exc.message,
                                 hint=_KIND_HINTS.get(exc.kind))]) from None
    return parse_keys(data)


_KIND_HINTS = {"too_large": f"a keys file is at most {MAX_KEYS_FILE_BYTES} bytes",
               "invalid_json": "a keys file is strict JSON: no duplicate keys, NaN or comments"}


def render_keys(entries: Iterable[KeyEntry]) -> str:
    """A keys file's text."""
    doc = {"schema": KEYS_SCHEMA, "keys": [e.to_json() for e in entries]}
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"


def parse_keys(data: object) -> tuple[KeyEntry, ...]:
    """Validate a keys document (as read by `jsonio`): the entries, or `KeysError`."""
    problems: list[Problem] = []
    if not isinstance(data, dict):
        raise KeysError([Problem(code="keys.invalid", pointer="",
                                 message="a keys file is a JSON object",
                                 hint='{"schema": 1, "keys": [...]}')])
    problems += _unknown_fields(data, _TOP, "")
    schema = data.get("schema")
    if type(schema) is not int or schema != KEYS_SCHEMA:  # `true` equals 1 in Python
        said = "is missing" if "schema" not in data else f"`{quote(schema)}` is not {KEYS_SCHEMA}"
        problems.append(Problem(code="keys.schema", pointer="/schema",
                                message=f"schema {said}", hint=f'"schema": {KEYS_SCHEMA}'))
    raw = data.get("keys")
    entries: list[KeyEntry] = []
    if not isinstance(raw, list):
        problems.append(Problem(code="keys.invalid", pointer="/keys",
                                message="`keys` must be a list of key entries"))
    elif len(raw) > MAX_KEYS:
        problems.append(Problem(code="keys.too_many", pointer="/keys",
                                message=f"{len(raw)} keys; the limit is {MAX_KEYS}"))
    else:
        entries = _entries(raw, problems)
    if problems:
        raise KeysError(problems)
    return tuple(entries)


def _entries(raw: list[Any], problems: list[Problem]) -> list[KeyEntry]:
    """The valid entries; the problems of the rest, and every id or hash used twice (counted
    wherever the id or hash itself is valid, even in an entry refused for another reason)."""
    entries: list[KeyEntry] = []
    first: dict[tuple[str, str], int] = {}
    for i, item in enumerate(raw):
        found = entry_problems(item, f"/keys/{i}")
        if isinstance(item, dict):
            bad = {p.pointer for p in found}
            for field in ("id", "sha256"):
                value, at = item.get(field), f"/keys/{i}/{field}"
                if isinstance(value, str) and at not in bad:
                    j = first.setdefault((field, value), i)
                    if j != i:
                        found.append(_duplicate(field, value, at, j))
        problems += found
        if not found:
            entries.append(to_entry(item))
    return entries


def _duplicate(field: str, value: str, at: str, first: int) -> Problem:
    if field == "id":
        return Problem(code="keys.duplicate_id", pointer=at, message=f"id `{value}` is used twice",
                       hint=f"first at /keys/{first}")
    return Problem(code="keys.duplicate_key", pointer=at, message="this key hash is used twice",
                   hint=f"first at /keys/{first}; one key has one entry")


def to_entry(item: dict[str, Any]) -> KeyEntry:
    """An entry from a dict `entry_problems` found nothing wrong with."""
    policies = item.get("policies")
    return KeyEntry(id=item["id"], sha256=item["sha256"], team=item.get("team"),
                    policies=None if policies is None else tuple(sorted(set(policies))),
                    labels=tuple(sorted(set(item.get("labels", ())))),
                    created=item.get("created"))


def entry_problems(item: object, at: str) -> list[Problem]:
    """Every problem of one key entry, located under the pointer `at`."""
    if not isinstance(item, dict):
        return [Problem(code="keys.invalid", pointer=at, message="a key entry is an object",
                        hint='{"id": "...", "sha256": "..."}')]
    problems = _unknown_fields(item, _FIELDS, at)
    problems += [Problem(code="keys.missing_field", pointer=f"{at}/{name}",
                         message=f"required field `{name}` is missing")
                 for name in ("id", "sha256") if name not in item]
    key_id = item.get("id")
    if "id" in item and (not isinstance(key_id, str) or not KEY_ID.fullmatch(key_id)):
        problems.append(Problem(code="keys.invalid_id", pointer=f"{at}/id",
                                message=f"id `{quote(key_id)}` is not 1-64 letters, digits "
                                        "or `_.:-`", hint="e.g. `support-1`"))
    digest = item.get("sha256")
    if "sha256" in item and (not isinstance(digest, str) or not _SHA256.fullmatch(digest)):
        problems.append(Problem(code="keys.invalid_sha256", pointer=f"{at}/sha256",
                                message="`sha256` is not 64 lowercase hex digits",
                                hint="the SHA-256 of the key; `unhardcoded keys new` "
                                     "writes it"))
    team = item.get("team")
    if team is not None and (not isinstance(team, str) or not 0 < len(team) <= MAX_TEAM_CHARS
                             or _CONTROL.search(team)):
        problems.append(Problem(code="keys.invalid_team", pointer=f"{at}/team",
                                message=f"team `{quote(team)}` is not 1-{MAX_TEAM_CHARS} "
                                        "printable characters"))
    problems += _names(item, "policies", at, POLICY_NAME, MAX_POLICIES)
    problems += _names(item, "labels", at, LABEL, MAX_LABELS)
    created = item.get("created")
    if created is not None and not _is_time(created):
        problems.append(Problem(code="keys.invalid_created", pointer=f"{at}/created",
                                message=f"`{quote(created)}` is not an ISO 8601 date-time",
                                hint="e.g. `2026-12-02T07:00:00Z`"))
    return problems


def _names(item: dict[str, Any], field: str, at: str, pattern: re.Pattern[str],
           limit: int) -> list[Problem]:
    """Problems of an optional list of names: `policies` (not empty: leave it out to allow
    every policy) or `labels`."""
    if field not in item:
        return []
    value = item[field]
    code = "keys.invalid_policy" if field == "policies" else "keys.invalid_label"
    if not isinstance(value, list):
        return [Problem(code=code, pointer=f"{at}/{field}",
                        message=f"`{field}` must be a list of names")]
    if field == "policies" and not value:
        return [Problem(code=code, pointer=f"{at}/{field}",
                        message="an empty `policies` list would allow no policy",
                        hint="leave `policies` out to allow every policy")]
    if len(value) > limit:
        return [Problem(code=code, pointer=f"{at}/{field}",
                        message=f"{len(value)} {field}; the limit is {limit}")]
    return [Problem(code=code, pointer=f"{at}/{field}/{j}",
                    message=f"`{quote(name)}` is not 1-64 letters, digits or `_.:-`",
                    hint="starting with a letter or digit")
            for j, name in enumerate(value)
            if not isinstance(name, str) or not pattern.fullmatch(name)]


def _unknown_fields(item: dict[str, Any], known: Sequence[str], at: str) -> list[Problem]:
    return [Problem(code="keys.unknown_field", pointer=child_pointer(at, name),
                    message=f"unknown field `{quote(name)}`",
                    hint=did_you_mean(name, known) or f"fields: {', '.join(known)}")
            for name in item if name not in known]


def _is_time(value: object) -> bool:
    if not isinstance(value, str) or len(value) > 40:
        return False
    try:
        dt.datetime.fromisoformat(value)
    except ValueError:
        return False
    return True
