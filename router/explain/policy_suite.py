"""Policy tests, loading: a `*.tests.json` file (schema 1) read strictly and checked whole —
the JSON, every case's request, the policy file, each catalog and overlay file, each expected
offering id and clause pointer — into a `Suite`, or `PolicyTestsError` with every problem (code,
RFC 6901 pointer into the tests file, message, hint). The schema is in docs/cli.md § policy
test; running the cases is `router.explain.policy_tests`.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from router.catalog.offerings import Catalog, default_catalog, load_catalog
from router.catalog.overlays import apply_overlays, load_overlays
from router.common import jsonio
from router.common.problems import (
    LABEL,
    Problem,
    RefusedError,
    Suggester,
    child_pointer,
    did_you_mean,
    quote,
)
from router.engine.compile import load_ruleset
from router.live.state import LiveState, LiveValues
from router.policy.admit import MAX_CASCADE, admit_text
from router.policy.attributes import CAPABILITIES, STATUSES
from router.policy.terms import Policy
from router.request.features import (
    MAX_LABELS,
    MAX_REQUEST_BYTES,
    MAX_REQUEST_DEPTH,
    RequestFeatures,
    parse_request,
)

TESTS_SCHEMA = 1
SUFFIX = ".tests.json"
MAX_TESTS_BYTES = MAX_REQUEST_BYTES  # one file, requests included
MAX_POLICY_FILE_BYTES = 1024 * 1024  # admission refuses anything over 64 KiB anyway
MAX_CASES = 1000
MAX_NAME = 500
MAX_PATH = 4096
MAX_OVERLAYS = 16
MAX_IDS = 256  # offering ids in one `admitted` or `rejected` list
MAX_LIVE = 10_000  # offerings given live values in one case
MAX_REASON = 500
MAX_INPUT_TOKENS = 10**9
MAX_CATALOGS = 16  # distinct catalog + overlays combinations in one run (one derivation each)
MAX_SHOWN = 5  # problems of one refused catalog, overlay or policy file repeated here
MAX_EXPLAINED = 4  # offerings explained per failed case
# root object, `cases`, one case: a request may nest as deep as the router allows
MAX_DEPTH = MAX_REQUEST_DEPTH + 3

FILE_FIELDS = ("schema", "description", "policy", "catalog", "overlays", "at", "cases")
CASE_FIELDS = ("name", "request", "features", "live", "catalog", "overlays", "at", "expect")
EXPECT_FIELDS = ("winner", "cascade", "admitted", "rejected", "nothing_admissible")
FEATURE_FIELDS = ("input_tokens", "max_output_tokens", "needs", "labels")
LIVE_FIELDS = ("status", "latency_ms", "error_rate", "reason")


class PolicyTestsError(RefusedError):
    """A tests file (or a file it names) was refused; every problem is listed."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("tests", problems)


# --------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class CatalogChoice:
    """Which catalog a case decides over: a file (None: the embedded catalog), then overlays."""

    catalog: Path | None = None
    overlays: tuple[Path, ...] = ()

    def label(self) -> str:
        base = str(self.catalog) if self.catalog else "embedded"
        return base + "".join(f" + {o}" for o in self.overlays)


@dataclass(frozen=True)
class Rejection:
    offering: str
    by: str | None  # a top-level FILTER pointer (`/2/3`) or `builtin:NAME`; None: any clause
    only: bool  # `by` must be the only clause that rejects it
    pointer: str  # this expectation, in the tests file

    def wanted(self) -> str:
        return (f"rejected by {self.by} alone" if self.only else
                f"rejected by {self.by}" if self.by else "rejected")

    def met(self, failed: Sequence[str]) -> bool:
        if self.only:
            return tuple(failed) == (self.by,)
        return bool(failed) and (self.by is None or self.by in failed)


@dataclass(frozen=True)
class Expectations:
    winner: str | None = None
    has_winner: bool = False  # `winner` was given (it may be null)
    cascade: tuple[str, ...] | None = None
    admitted: tuple[str, ...] = ()
    rejected: tuple[Rejection, ...] = ()
    nothing_admissible: bool | None = None


@dataclass(frozen=True)
class Case:
    index: int
    name: str
    request: Mapping[str, Any] | RequestFeatures
    live: LiveState | None
    catalog: CatalogChoice
    at: dt.datetime | None
    expect: Expectations

    @property
    def pointer(self) -> str:
        return f"/cases/{self.index}"


@dataclass(frozen=True)
class Suite:
    path: Path
    policy_path: Path
    policy_text: str
    policy: Policy
    cases: tuple[Case, ...]


Catalogs = MutableMapping[CatalogChoice, Catalog]
# A catalog choice and the pointers of the fields that made it (`catalog`, `overlays`)
_Choice = tuple[CatalogChoice, str, str]


# --------------------------------------------------------------------------- loading


def suite_paths(target: Path) -> list[Path]:
    """A tests file, or every `*.tests.json` directly in a directory (sorted by name)."""
    if target.is_dir():
        found = sorted(p for p in target.iterdir() if p.name.endswith(SUFFIX) and p.is_file())
        if not found:
            raise PolicyTestsError([Problem(
                code="tests.no_files", pointer="",
                message=f"`{target}`: no `*{SUFFIX}` file in this directory",
                hint=f"name each tests file `NAME{SUFFIX}`")])
        if len(found) > MAX_CASES:
            raise PolicyTestsError([Problem(
                code="tests.too_large", pointer="",
                message=f"`{target}`: {len(found)} tests files; the limit is {MAX_CASES}")])
        return found
    return [target]


def load_suites(target: Path, default: CatalogChoice, catalogs: Catalogs) -> list[Suite]:
    """Every suite under `target`; the problems of all of them are reported together."""
    suites: list[Suite] = []
    problems: list[Problem] = []
    for path in suite_paths(target):
        try:
            suites.append(load_suite(path, default, catalogs))
        except PolicyTestsError as exc:
            problems.extend(exc.problems)
    if problems:
        raise PolicyTestsError(problems)
    return suites


def load_suite(path: Path, default: CatalogChoice, catalogs: Catalogs) -> Suite:
    """Read and check one tests file. `default` is the catalog of cases (and files) that name
    none (`--catalog`/`--overlay`); `catalogs` caches loaded catalogs across files."""
    reader = _Reader(str(path), path.parent, catalogs)
    try:
        data = jsonio.read_json(path, MAX_TESTS_BYTES, MAX_DEPTH)
    except jsonio.JsonRefused as exc:
        raise PolicyTestsError([Problem(code=f"tests.{exc.kind}", pointer="",
                                        message=exc.message)]) from None
    suite = reader.suite(data, default)
    if reader.problems or suite is None:
        raise PolicyTestsError(reader.problems)
    return suite


class _Reader:
    """Checks one parsed tests file, collecting every problem (never stopping at the first)."""

    def __init__(self, where: str, base: Path, catalogs: Catalogs) -> None:
        self.where = where
        self.base = base
        self.catalogs = catalogs
        self.problems: list[Problem] = []
        self.builtins = tuple(f"builtin:{b.name}" for b in load_ruleset().builtins)
        self.refused: set[CatalogChoice] = set()  # catalogs already reported as refused
        self.suggester: dict[str, Suggester] = {}  # by catalog version

    def bad(self, code: str, pointer: str, message: str, hint: str | None = None) -> None:
        self.problems.append(Problem(code=f"tests.{code}", pointer=pointer,
                                     message=f"`{self.where}`: {message}", hint=hint))

    # -- the file --------------------------------------------------------------------------

    def suite(self, data: Any, default: CatalogChoice) -> Suite | None:
        if not self._object(data, "", "a tests file is a JSON object",
                            '{"schema": 1, "policy": "P.json", "cases": [...]}'):
            return None
        self._fields(data, "", FILE_FIELDS, ("schema", "policy", "cases"))
        schema = data.get("schema")
        if "schema" in data and (isinstance(schema, bool) or schema != TESTS_SCHEMA):
            self.bad("schema", "/schema", f"unsupported schema `{quote(schema)}`",
                     f"this router reads tests schema {TESTS_SCHEMA}")
        if "description" in data:
            self._string(data["description"], "/description", MAX_NAME)
        policy = self._policy(data["policy"]) if "policy" in data else None
        file_default = self._choice(data, "", (default, "", "")) or (default, "", "")
        file_at = self._at(data, "")
        cases: list[Case] = []
        raw = data.get("cases")
        if "cases" in data and not isinstance(raw, list):
            self.bad("type", "/cases", "`cases` must be a list of case objects")
        elif isinstance(raw, list):
            if not raw:
                self.bad("no_cases", "/cases", "`cases` is empty: the file tests nothing",
                         "add a case with a request and an `expect` object")
            elif len(raw) > MAX_CASES:
                self.bad("too_large", "/cases", f"{len(raw)} cases; the limit is {MAX_CASES}")
                raw = []
            names: dict[str, int] = {}
            for i, item in enumerate(raw):
                name = item.get("name") if isinstance(item, dict) else None
                if isinstance(name, str) and name in names:
                    self.bad("duplicate", f"/cases/{i}/name",
                             f"case name `{quote(name)}` also names case {names[name]}",
                             "give every case its own name")
                if isinstance(name, str):
                    names.setdefault(name, i)
                case = self._case(item, i, file_default, file_at, policy)
                if case is not None:
                    cases.append(case)
        if self.problems or policy is None:
            return None
        path, text, admitted = policy
        return Suite(Path(self.where), path, text, admitted, tuple(cases))

    def _policy(self, value: Any) -> tuple[Path, str, Policy] | None:
        path = self._path(value, "/policy")
        if path is None:
            return None
        try:
            text = jsonio.read_text(path, MAX_POLICY_FILE_BYTES)
            return path, text, admit_text(text)
        except jsonio.JsonRefused as exc:
            self.bad("bad_policy", "/policy", exc.message)
        except RefusedError as exc:
            self._relay("bad_policy", "/policy", f"policy `{path}`", exc.problems,
                        f"see `unhardcoded policy check {path}`")
        return None

    def _relay(self, code: str, pointer: str, what: str, found: Sequence[Problem],
               hint: str) -> None:
        """The first problems of a refused file this one names, repeated at `pointer`."""
        for p in found[:MAX_SHOWN]:
            self.bad(code, pointer, f"{what} refused: {p.line()}", p.hint or hint)
        if len(found) > MAX_SHOWN:
            self.bad(code, pointer, f"{what}: {len(found) - MAX_SHOWN} more problems", hint)

    # -- one case --------------------------------------------------------------------------

    def _case(self, item: Any, i: int, default: _Choice, at: dt.datetime | None,
              policy: tuple[Path, str, Policy] | None) -> Case | None:
        ptr = f"/cases/{i}"
        if not self._object(item, ptr, "a case is an object",
                            '{"name": "...", "request": {...}, "expect": {...}}'):
            return None
        before = len(self.problems)
        self._fields(item, ptr, CASE_FIELDS, ("name", "expect"))
        name = self._string(item.get("name"), f"{ptr}/name", MAX_NAME) if "name" in item else ""
        if name is not None and "name" in item and not name.strip():
            self.bad("bad_value", f"{ptr}/name", "a case name is a non-empty string")
        request = self._request(item, ptr)
        choice = self._choice(item, ptr, default)
        case_at = self._at(item, ptr) if "at" in item else at
        catalog = self._catalog(*choice) if choice is not None else None
        live = self._live(item["live"], f"{ptr}/live", catalog) if "live" in item else None
        expect = self._expect(item.get("expect"), f"{ptr}/expect", catalog,
                              policy[2] if policy else None) if "expect" in item else None
        if len(self.problems) > before or request is None or choice is None or expect is None:
            return None
        return Case(i, name or "", request, live, choice[0], case_at, expect)

    def _request(self, item: Mapping[str, Any], ptr: str
                 ) -> Mapping[str, Any] | RequestFeatures | None:
        if ("request" in item) == ("features" in item):
            self.bad("missing_field" if "request" not in item else "conflict", ptr,
                     "a case gives exactly one of `request` and `features`",
                     "`request`: an OpenAI chat body; `features`: {\"input_tokens\": N, ...}")
            return None
        if "features" in item:
            return self._features(item["features"], f"{ptr}/features")
        body = item["request"]
        try:
            parse_request(body)
        except RefusedError as exc:
            for p in exc.problems:
                self.problems.append(Problem(code=p.code, pointer=f"{ptr}/request{p.pointer}",
                                             message=f"`{self.where}`: {p.message}",
                                             hint=p.hint))
            return None
        return dict(body)

    def _features(self, value: Any, ptr: str) -> RequestFeatures | None:
        if not self._object(value, ptr, "`features` is an object",
                            '{"input_tokens": 300000, "labels": ["pii"]}'):
            return None
        before = len(self.problems)
        self._fields(value, ptr, FEATURE_FIELDS, ("input_tokens",))
        tokens = value.get("input_tokens")
        if "input_tokens" in value and not _count(tokens, 0, MAX_INPUT_TOKENS):
            self.bad("bad_value", f"{ptr}/input_tokens",
                     f"`input_tokens` is an integer 0..{MAX_INPUT_TOKENS}")
        out = value.get("max_output_tokens")
        if out is not None and not _count(out, 1, MAX_INPUT_TOKENS):
            self.bad("bad_value", f"{ptr}/max_output_tokens",
                     f"`max_output_tokens` is null or an integer 1..{MAX_INPUT_TOKENS}")
        needs = self._strings(value.get("needs", []), f"{ptr}/needs", len(CAPABILITIES))
        for j, need in enumerate(needs or ()):
            if need not in CAPABILITIES:
                self.bad("bad_value", f"{ptr}/needs/{j}", f"unknown capability `{quote(need)}`",
                         did_you_mean(need, CAPABILITIES) or f"one of {', '.join(CAPABILITIES)}")
        labels = self._strings(value.get("labels", []), f"{ptr}/labels", MAX_LABELS)
        for j, label in enumerate(labels or ()):
            if not LABEL.match(label):
                self.bad("bad_value", f"{ptr}/labels/{j}", f"bad label `{quote(label)}`",
                         "letters, digits and `_.:-`, at most 64")
        if len(self.problems) > before or needs is None or labels is None:
            return None
        return RequestFeatures(input_tokens=tokens, max_output_tokens=out,
                               needs=tuple(dict.fromkeys(needs)),
                               labels=tuple(dict.fromkeys(labels)))

    def _live(self, value: Any, ptr: str, catalog: Catalog | None) -> LiveState | None:
        if not self._object(value, ptr, "`live` maps offering ids to live values",
                            '{"openai/gpt-4o": {"status": "no_key"}}'):
            return None
        if len(value) > MAX_LIVE:
            self.bad("too_large", ptr, f"{len(value)} offerings; the limit is {MAX_LIVE}")
            return None
        values: dict[str, LiveValues] = {}
        for oid, raw in value.items():
            at = child_pointer(ptr, oid)
            self._known(oid, at, catalog)
            if not self._object(raw, at, "live values are an object",
                                '{"status": "no_key", "reason": "no key: set OPENAI_API_KEY"}'):
                continue
            self._fields(raw, at, LIVE_FIELDS, ())
            status = raw.get("status", "available")
            if status not in STATUSES:
                self.bad("bad_value", f"{at}/status", f"unknown status `{quote(status)}`",
                         did_you_mean(str(status), STATUSES) or f"one of {', '.join(STATUSES)}")
            for name, top in (("latency_ms", 3_600_000), ("error_rate", 1)):
                v = raw.get(name)
                if v is not None and not (_number(v) and 0 <= v <= top):
                    self.bad("bad_value", f"{at}/{name}", f"`{name}` is null or a number 0..{top}")
            reason = raw.get("reason")
            if reason is not None:
                self._string(reason, f"{at}/reason", MAX_REASON)
            if status in STATUSES:
                values[oid] = LiveValues(status=status, latency_ms=_float(raw.get("latency_ms")),
                                         error_rate=_float(raw.get("error_rate")),
                                         reason=reason if isinstance(reason, str) else None)
        return LiveState(values, consulted=True)

    # -- expectations ----------------------------------------------------------------------

    def _expect(self, value: Any, ptr: str, catalog: Catalog | None, policy: Policy | None
                ) -> Expectations | None:
        if not self._object(value, ptr, "`expect` is an object of expectations",
                            '{"winner": "ID", "cascade": ["ID"], "rejected": [...]}'):
            return None
        before = len(self.problems)
        self._fields(value, ptr, EXPECT_FIELDS, ())
        if not any(k in value for k in EXPECT_FIELDS):
            self.bad("no_expectation", ptr, "the case expects nothing, so it cannot fail",
                     f"give at least one of {', '.join(EXPECT_FIELDS)}")
        winner = value.get("winner")
        if winner is not None and self._string(winner, f"{ptr}/winner", 200) is not None:
            self._known(winner, f"{ptr}/winner", catalog)
        cascade = self._ids(value, "cascade", ptr, catalog, MAX_CASCADE)
        admitted = self._ids(value, "admitted", ptr, catalog, MAX_IDS)
        rejected = self._rejected(value.get("rejected", []), f"{ptr}/rejected", catalog, policy)
        nothing = value.get("nothing_admissible")
        if nothing is not None and not isinstance(nothing, bool):
            self.bad("type", f"{ptr}/nothing_admissible", "`nothing_admissible` is true or false")
        if rejected is not None and isinstance(winner, str | None) \
                and isinstance(nothing, bool | None):
            expect = Expectations(winner, "winner" in value, cascade, tuple(admitted or ()),
                                  rejected, nothing)
            self._contradictions(expect, ptr)
            if len(self.problems) == before:
                return expect
        return None

    def _ids(self, value: Mapping[str, Any], key: str, ptr: str, catalog: Catalog | None,
             limit: int) -> tuple[str, ...] | None:
        if key not in value:
            return None
        ids = self._strings(value[key], f"{ptr}/{key}", limit)
        seen: set[str] = set()
        for j, oid in enumerate(ids or ()):
            self._known(oid, f"{ptr}/{key}/{j}", catalog)
            if oid in seen:
                self.bad("duplicate", f"{ptr}/{key}/{j}", f"`{oid}` is listed twice")
            seen.add(oid)
        return tuple(ids) if ids is not None else None

    def _rejected(self, value: Any, ptr: str, catalog: Catalog | None, policy: Policy | None
                  ) -> tuple[Rejection, ...] | None:
        if not isinstance(value, list):
            self.bad("type", ptr, "`rejected` is a list of ids or {\"id\": ID, \"by\": POINTER}")
            return None
        if len(value) > MAX_IDS:
            self.bad("too_large", ptr, f"{len(value)} entries; the limit is {MAX_IDS}")
            return None
        out: list[Rejection] = []
        seen: set[tuple[str, str | None]] = set()
        for j, item in enumerate(value):
            at = f"{ptr}/{j}"
            oid: Any = item
            by: Any = None
            only: Any = False
            if isinstance(item, dict):
                self._fields(item, at, ("id", "by", "only"), ("id",))
                if "id" not in item:
                    continue
                oid, by, only = item["id"], item.get("by"), item.get("only", False)
                at_id = f"{at}/id"
                if not isinstance(only, bool):
                    self.bad("type", f"{at}/only", "`only` is true or false")
                elif only and by is None:
                    self.bad("missing_field", at, "`only` needs `by`: the clause that alone "
                             "rejects the offering")
            else:
                at_id = at
            if self._string(oid, at_id, 200, "an offering id (or {\"id\": ID, \"by\": POINTER})"
                            ) is None:
                continue
            self._known(oid, at_id, catalog)
            if by is not None and self._string(by, f"{at}/by", 200) is not None:
                self._clause_pointer(by, f"{at}/by", policy)
            clause = by if isinstance(by, str) else None
            if (oid, clause) in seen:
                self.bad("duplicate", at, f"`{oid}` is listed twice")
            seen.add((oid, clause))
            out.append(Rejection(oid, clause, only is True, at))
        return tuple(out)

    def _clause_pointer(self, by: str, ptr: str, policy: Policy | None) -> None:
        """`by` names a built-in, or one top-level FILTER clause of the policy (`/2/N`): the
        clauses a rejection is reported by."""
        if by.startswith("builtin:"):
            if by not in self.builtins:
                self.bad("bad_pointer", ptr, f"no built-in clause `{quote(by)}`",
                         did_you_mean(by, self.builtins) or ", ".join(self.builtins))
            return
        parts = by.split("/")
        if len(parts) < 3 or parts[0] != "" or parts[1] != "2" or not _index(parts[2]):
            self.bad("bad_pointer", ptr, f"`{quote(by)}` is not a FILTER clause pointer",
                     "rejections name a top-level FILTER clause, `/2/N`, or `builtin:NAME`")
            return
        if len(parts) > 3:
            self.bad("bad_pointer", ptr, f"`{quote(by)}` points inside a clause",
                     f"rejections are reported by the top-level clause: use `/2/{parts[2]}`")
            return
        n = int(parts[2])
        if policy is not None and not 1 <= n <= len(policy.filters):
            count = len(policy.filters)
            self.bad("bad_pointer", ptr, f"the policy's FILTER has no clause `{by}`",
                     f"its clauses are /2/1 to /2/{count}" if count else "its FILTER is empty")

    def _contradictions(self, e: Expectations, ptr: str) -> None:
        """Expectations no decision can meet together."""
        rejected = {r.offering for r in e.rejected}
        if e.nothing_admissible is True and (e.winner or e.cascade or e.admitted):
            self.bad("contradiction", f"{ptr}/nothing_admissible",
                     "nothing admissible, yet a winner, cascade or admitted offering is expected")
        if e.nothing_admissible is False and e.has_winner and e.winner is None:
            self.bad("contradiction", f"{ptr}/winner",
                     "`winner: null` means nothing is admissible, but `nothing_admissible` is "
                     "false")
        if e.has_winner and e.winner is None and (e.cascade or e.admitted):
            self.bad("contradiction", f"{ptr}/winner",
                     "no winner expected, yet a cascade or admitted offering is")
        if e.winner is not None and e.winner in (e.cascade or ()):
            self.bad("contradiction", f"{ptr}/cascade",
                     f"the winner `{e.winner}` is also in the cascade",
                     "the cascade lists the hops after the winner")
        if e.winner in rejected:
            self.bad("contradiction", f"{ptr}/winner",
                     f"`{e.winner}` is expected both winner and rejected")
        for key, ids in (("cascade", e.cascade or ()), ("admitted", e.admitted)):
            for j, oid in enumerate(ids):
                if oid in rejected and oid not in ids[:j]:
                    self.bad("contradiction", f"{ptr}/{key}/{j}",
                             f"`{oid}` is expected both {key} and rejected")

    # -- small checks ----------------------------------------------------------------------

    def _object(self, value: Any, ptr: str, message: str, hint: str) -> bool:
        if isinstance(value, dict):
            return True
        self.bad("not_an_object", ptr, message, hint)
        return False

    def _fields(self, value: Mapping[str, Any], ptr: str, known: Sequence[str],
                required: Sequence[str]) -> None:
        for key in value:
            if key not in known:
                self.bad("unknown_field", child_pointer(ptr, key), f"unknown field `{quote(key)}`",
                         did_you_mean(key, known) or f"fields: {', '.join(known)}")
        for key in required:
            if key not in value:
                self.bad("missing_field", ptr, f"required field `{key}` is missing")

    def _string(self, value: Any, ptr: str, limit: int, what: str = "a string"
                ) -> str | None:
        if not isinstance(value, str):
            self.bad("type", ptr, f"expected {what}, got `{quote(value)}`")
            return None
        if len(value) > limit:
            self.bad("too_large", ptr, f"{len(value)} characters; the limit is {limit}")
            return None
        return value

    def _strings(self, value: Any, ptr: str, limit: int) -> list[str] | None:
        if not isinstance(value, list):
            self.bad("type", ptr, "expected a list of strings")
            return None
        if len(value) > limit:
            self.bad("too_large", ptr, f"{len(value)} elements; the limit is {limit}")
            return None
        ok = [self._string(v, f"{ptr}/{j}", 200) for j, v in enumerate(value)]
        return [v for v in ok if v is not None] if None not in ok else None

    def _path(self, value: Any, ptr: str) -> Path | None:
        text = self._string(value, ptr, MAX_PATH, "a file path")
        if text is None:
            return None
        if not text or "\x00" in text:
            self.bad("bad_value", ptr, "a file path is a non-empty string")
            return None
        return self.base / text  # an absolute path stays absolute

    def _choice(self, item: Mapping[str, Any], ptr: str, default: _Choice) -> _Choice | None:
        """The catalog of a case (or of the whole file): its own `catalog` and `overlays`,
        each else the default; with the pointers that chose them (for problems)."""
        (catalog, overlays), (cat_ptr, over_ptr) = (default[0].catalog,
                                                    default[0].overlays), default[1:]
        if "catalog" in item:
            catalog, cat_ptr = self._path(item["catalog"], f"{ptr}/catalog"), f"{ptr}/catalog"
            if catalog is None:
                return None
        if "overlays" in item:
            raw = self._strings(item["overlays"], f"{ptr}/overlays", MAX_OVERLAYS)
            if raw is None:
                return None
            paths = [self._path(v, f"{ptr}/overlays/{j}") for j, v in enumerate(raw)]
            if None in paths:
                return None
            overlays, over_ptr = tuple(p for p in paths if p is not None), f"{ptr}/overlays"
        return CatalogChoice(catalog, overlays), cat_ptr, over_ptr

    def _catalog(self, choice: CatalogChoice, cat_ptr: str, over_ptr: str) -> Catalog | None:
        """The catalog a case decides over, loaded once per run (`catalogs`); a refused one
        is reported once, at the field that chose it (`""`: the command line)."""
        if choice in self.catalogs:
            return self.catalogs[choice]
        if choice in self.refused:
            return None
        self.refused.add(choice)
        if len(self.catalogs) >= MAX_CATALOGS:
            self.bad("too_large", cat_ptr, f"more than {MAX_CATALOGS} different catalogs in "
                     "one run", "each catalog is derived once; split the tests")
            return None
        try:
            base = load_catalog(choice.catalog) if choice.catalog else default_catalog()
        except RefusedError as exc:
            self._relay("bad_catalog", cat_ptr, f"catalog `{choice.catalog}`", exc.problems,
                        f"see `unhardcoded catalog list --catalog {choice.catalog}`")
            return None
        try:
            catalog = apply_overlays(base, load_overlays(choice.overlays))
        except RefusedError as exc:
            self._relay("bad_overlay", over_ptr, "overlay", exc.problems,
                        "see `unhardcoded catalog list --overlay FILE`")
            return None
        self.refused.discard(choice)
        self.catalogs[choice] = catalog
        return catalog

    def _known(self, oid: str, ptr: str, catalog: Catalog | None) -> None:
        if catalog is None or catalog.get(oid) is not None:
            return
        suggester = self.suggester.get(catalog.version)
        if suggester is None:
            suggester = self.suggester[catalog.version] = Suggester(o.id for o in catalog)
        self.bad("unknown_offering", ptr, f"no offering `{quote(oid)}` in the catalog",
                 suggester.hint(oid))

    def _at(self, item: Mapping[str, Any], ptr: str) -> dt.datetime | None:
        """`at`: the decision time, an ISO date-time (UTC when no offset is given)."""
        if "at" not in item:
            return None
        text = self._string(item["at"], f"{ptr}/at", 64, "an ISO date-time")
        if text is None:
            return None
        try:
            at = dt.datetime.fromisoformat(text)
        except ValueError:
            self.bad("bad_value", f"{ptr}/at", f"`{quote(text)}` is not an ISO date-time",
                     "e.g. `2026-01-01T00:00:00Z`")
            return None
        return at if at.tzinfo else at.replace(tzinfo=dt.UTC)


def _index(token: str) -> bool:
    """An array index as RFC 6901 writes it: ASCII digits, no leading zero."""
    return token.isascii() and token.isdigit() and (token == "0" or not token.startswith("0"))


def _count(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _float(value: Any) -> float | None:
    return float(value) if _number(value) else None
