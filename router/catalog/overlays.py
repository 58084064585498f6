"""Operator overlays: files kept next to the catalog that tag, disable, re-price or add offerings.

An overlay is JSON (`.json`) or TOML (`.toml`) with a small strict schema::

    schema = 1
    description = "ACME production"                # optional
    disable = ["openai/gpt-4o-mini", "fireworks_ai/*"]

    [tags]                                          # id or glob -> tags added
    "anthropic/*" = ["approved", "zdr"]

    [prices."openai/gpt-4o"]                        # exact id -> negotiated prices (USD per 1M)
    input_price = 2.0
    output_price = 8.0

    [[offerings]]                                   # new offerings: private deployments
    id = "vllm/llama-3.3-70b"
    model = "llama-3.3-70b"
    provider = "vllm"
    region = "eu"
    base_url = "http://10.0.0.5:8000/v1"

Within one overlay: offerings are added first, then prices, tags and disables are applied (so a
glob can match an offering the same overlay adds). Overlays are applied in the order given. Every
problem (file, RFC 6901 pointer into the overlay, why, hint) is reported at once; a refused
overlay changes nothing. The result is a new `Catalog` whose version hashes the base version and
every overlay's canonical content, and whose `generated` names the overlays applied. Disabled
offerings stay in the catalog (`Catalog.disabled`); `with_disabled` turns them into live status
`disabled` for a decision.
"""

from __future__ import annotations

import bisect
import fnmatch
import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from router.catalog.offerings import (
    MAX_CATALOG_BYTES,
    MAX_OFFERINGS,
    Catalog,
    Offering,
    price_value,
)
from router.common import jsonio
from router.common.problems import (
    LABEL,
    Problem,
    RefusedError,
    Suggester,
    child_pointer,
    did_you_mean,
    pointer_key,
    quote,
    validation_error,
)

OVERLAY_SCHEMA = 1
_PATTERN = re.compile(r"^[A-Za-z0-9*?\[\]!_.:@/+-]{1,200}$")
_GLOB = re.compile(r"[*?\[]")
_MAX_RULES = 10_000
# Ids and globs that match nothing, reported one by one (with a "did you mean"), per overlay;
# the rest are counted in one more problem.
MAX_UNKNOWN_REPORTED = 20


class OverlayError(RefusedError):
    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("overlay", problems)


class PriceOverride(BaseModel):
    """Negotiated prices for one offering, USD per 1M tokens; fields not given stay as they are."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    input_price: float | None = Field(default=None, ge=0, le=1_000_000)
    output_price: float | None = Field(default=None, ge=0, le=1_000_000)
    cached_input_price: float | None = Field(default=None, ge=0, le=1_000_000)

    @field_validator("input_price", "output_price", "cached_input_price", mode="before")
    @classmethod
    def _number(cls, v: Any) -> Any:
        return price_value(v)

    def update(self) -> dict[str, float]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class OverlaySpec(BaseModel):
    """The validated content of one overlay file."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    schema_: int = Field(alias="schema")
    description: str | None = Field(default=None, max_length=500)
    tags: dict[str, list[str]] = Field(default_factory=dict)
    disable: list[str] = Field(default_factory=list)
    prices: dict[str, PriceOverride] = Field(default_factory=dict)
    offerings: list[Offering] = Field(default_factory=list)

    @field_validator("schema_", mode="before")
    @classmethod
    def _schema(cls, v: Any) -> Any:
        if isinstance(v, bool) or v != OVERLAY_SCHEMA:
            raise ValueError(f"unsupported overlay schema `{quote(v)}`; this router reads "
                             f"schema {OVERLAY_SCHEMA}")
        return v


@dataclass(frozen=True)
class Overlay:
    """One overlay file, validated on its own (references are checked when applied)."""

    where: str
    spec: OverlaySpec
    digest: str  # sha256 of the canonical JSON of the validated content

    def record(self) -> str:
        return f"{self.where} sha256:{self.digest}"


# --------------------------------------------------------------------------- reading


def load_overlay(path: str | Path) -> Overlay:
    """Read and validate an overlay file (format by extension: `.json` or `.toml`)."""
    p = Path(path)
    where = str(path)
    suffix = p.suffix.lower()
    if suffix not in (".json", ".toml"):
        raise OverlayError([_problem("overlay.format", "", where,
                                     f"unknown overlay format `{p.suffix or '(none)'}`",
                                     "name the file `*.json` or `*.toml`")])
    try:
        text = jsonio.read_text(p, MAX_CATALOG_BYTES)
    except jsonio.JsonRefused as exc:
        raise OverlayError([_problem(f"overlay.{exc.kind}", "", where, exc.message)]) from None
    return parse_overlay(text, where, "toml" if suffix == ".toml" else "json")


def parse_overlay(text: str, where: str = "overlay", fmt: str = "json") -> Overlay:
    """Parse and validate overlay text; raise `OverlayError` naming every problem."""
    data: Any
    try:
        data = (jsonio.loads_toml(text, "the overlay") if fmt == "toml"
                else jsonio.loads(text, "the overlay"))
    except jsonio.JsonRefused as exc:
        raise OverlayError([_problem(f"overlay.{exc.kind}", "", where, exc.message)]) from None
    return build_overlay(data, where)


def build_overlay(data: object, where: str = "overlay") -> Overlay:
    """Validate a parsed overlay document."""
    if not isinstance(data, dict):
        raise OverlayError([_problem("overlay.not_an_object", "", where,
                                     "an overlay is an object (a JSON object or a TOML table)",
                                     'start with `{"schema": 1, ...}` or `schema = 1`')])
    try:
        spec = OverlaySpec.model_validate(data)
    except ValidationError as exc:
        raise OverlayError([_validation_problem(err, where) for err in exc.errors()]) from None
    problems: list[Problem] = []
    rules = len(spec.tags) + len(spec.disable) + len(spec.prices) + len(spec.offerings)
    if rules > _MAX_RULES:
        problems.append(_problem("overlay.too_large", "", where,
                                 f"{rules} rules; the limit is {_MAX_RULES}"))
    for pattern in spec.tags:
        _check_pattern(pattern, child_pointer("/tags", pattern), where, problems)
    for index, pattern in enumerate(spec.disable):
        _check_pattern(pattern, f"/disable/{index}", where, problems)
    for oid in spec.prices:
        if _GLOB.search(oid):
            problems.append(_problem("overlay.invalid_pattern", child_pointer("/prices", oid),
                                     where, f"`prices` takes exact offering ids, not `{oid}`",
                                     "negotiated prices are per offering"))
        elif not spec.prices[oid].update():
            problems.append(_problem("overlay.type", child_pointer("/prices", oid), where,
                                     f"no price given for `{oid}`",
                                     "set input_price, output_price or cached_input_price"))
    for key, tags in spec.tags.items():
        for index, tag in enumerate(tags):
            if not LABEL.match(tag):
                problems.append(_problem(
                    "overlay.invalid_tag", child_pointer(child_pointer("/tags", key), index),
                    where, f"bad tag `{quote(tag)}`", "letters, digits, `_.:-`, at most 64"))
    if problems:
        raise OverlayError(problems)
    canonical = json.dumps(spec.model_dump(mode="json", by_alias=True, exclude_none=True),
                           sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return Overlay(where, spec, hashlib.sha256(canonical.encode()).hexdigest())


def _check_pattern(pattern: str, pointer: str, where: str, problems: list[Problem]) -> None:
    if not _PATTERN.match(pattern):
        problems.append(_problem("overlay.invalid_pattern", pointer, where,
                                 f"`{quote(pattern)}` is not an offering id or glob",
                                 "ids use letters, digits and `_.:@/+-`; globs add `*?[]`"))


def _validation_problem(err: Any, where: str) -> Problem:
    pointer, message = validation_error(err, {"schema_": "schema"})
    hint = _field_hint(err["loc"]) if err.get("type") == "extra_forbidden" else None
    return _problem("overlay.invalid", pointer, where, f"`{pointer or '/'}`: {message}", hint)


def _field_hint(loc: Sequence[Any]) -> str | None:
    name = str(loc[-1]) if loc else ""
    if len(loc) == 1:
        return did_you_mean(name, ["schema", "description", "tags", "disable", "prices",
                                   "offerings"])
    if len(loc) == 3 and loc[0] == "prices":
        return did_you_mean(name, ["input_price", "output_price", "cached_input_price"])
    if len(loc) == 3 and loc[0] == "offerings":
        if name in ("status", "latency_ms", "error_rate"):
            return "live attributes are never read from a file; use `disable`"
        return did_you_mean(name, list(Offering.model_fields))
    return None


def _problem(code: str, pointer: str, where: str, message: str,
             hint: str | None = None) -> Problem:
    return Problem(code=code, pointer=pointer, message=f"`{where}`: {message}", hint=hint)


# --------------------------------------------------------------------------- applying


def load_overlays(paths: Iterable[str | Path]) -> list[Overlay]:
    """Load several overlays, reporting the problems of all of them at once."""
    problems: list[Problem] = []
    overlays: list[Overlay] = []
    for path in paths:
        try:
            overlays.append(load_overlay(path))
        except OverlayError as exc:
            problems.extend(exc.problems)
    if problems:
        raise OverlayError(problems)
    return overlays


def apply_overlays(catalog: Catalog, overlays: Sequence[Overlay]) -> Catalog:
    """A new catalog: `catalog` with `overlays` applied in order (raises `OverlayError`)."""
    if not overlays:
        return catalog
    by_id: dict[str, Offering] = {o.id: o for o in catalog}
    disabled: set[str] = set(catalog.disabled)
    problems: list[Problem] = []
    for overlay in overlays:
        _apply(overlay, by_id, disabled, problems)
    if len(by_id) > MAX_OFFERINGS:
        problems.append(Problem(code="overlay.too_large", pointer="",
                                message=f"{len(by_id)} offerings after overlays; the limit is "
                                        f"{MAX_OFFERINGS}"))
    if problems:
        raise OverlayError(problems)
    generated = dict(catalog.generated)
    start = sum(1 for k in generated if k.startswith("overlay."))
    for index, overlay in enumerate(overlays, start + 1):
        generated[f"overlay.{index}"] = overlay.record()
    offerings = tuple(sorted(by_id.values(), key=lambda o: o.id))
    return Catalog(offerings, catalog.source, overlay_version(catalog.version, overlays),
                   generated, frozenset(disabled))


def overlay_version(base_version: str, overlays: Sequence[Overlay]) -> str:
    """The version of a catalog with overlays: the base version and every overlay's content."""
    body = ":".join([base_version, *(o.digest for o in overlays)])
    return "cat-" + hashlib.sha256(f"overlays1:{body}".encode()).hexdigest()[:16]


def _apply(overlay: Overlay, by_id: dict[str, Offering], disabled: set[str],
           problems: list[Problem]) -> None:
    spec, where = overlay.spec, overlay.where
    for index, offering in enumerate(spec.offerings):
        if offering.id in by_id:
            problems.append(_problem(
                "overlay.duplicate_id", f"/offerings/{index}/id", where,
                f"offering `{offering.id}` is already in the catalog",
                "change an existing offering with `prices` or `tags`, or pick a new id"))
        else:
            by_id[offering.id] = offering
    ids = sorted(by_id)  # the ids no longer change below (prices and tags change values)
    unmatched: list[tuple[str, str]] = []  # (pointer, id or glob) that match no offering
    for oid, override in spec.prices.items():
        existing = by_id.get(oid)
        if existing is None:
            unmatched.append((child_pointer("/prices", oid), oid))
        else:
            by_id[oid] = existing.model_copy(update=override.update())
    for pattern, tags in spec.tags.items():
        pointer = child_pointer("/tags", pattern)
        for oid in _matches(pattern, pointer, ids, by_id, unmatched):
            _tag(by_id, oid, tags, pointer, where, problems)
    for index, pattern in enumerate(spec.disable):
        disabled.update(_matches(pattern, f"/disable/{index}", ids, by_id, unmatched))
    _report_unmatched(unmatched, ids, where, problems)


def _matches(pattern: str, pointer: str, ids: list[str], by_id: dict[str, Offering],
             unmatched: list[tuple[str, str]]) -> list[str]:
    """The ids `pattern` names. A glob is tried only on the ids that start with its literal
    prefix (found by bisection in the sorted `ids`), not on every id."""
    glob = _GLOB.search(pattern)
    if glob is None:
        if pattern in by_id:
            return [pattern]
        unmatched.append((pointer, pattern))
        return []
    prefix = pattern[:glob.start()]
    match = re.compile(fnmatch.translate(pattern)).match
    found = []
    for i in range(bisect.bisect_left(ids, prefix), len(ids)):
        if not ids[i].startswith(prefix):
            break
        if match(ids[i]):
            found.append(ids[i])
    if not found:
        unmatched.append((pointer, pattern))
    return found


def _report_unmatched(unmatched: list[tuple[str, str]], ids: list[str], where: str,
                      problems: list[Problem]) -> None:
    """The first `MAX_UNKNOWN_REPORTED` ids and globs that match nothing (in pointer order),
    each with its problem and a "did you mean" for an id; one more problem counts the rest."""
    if not unmatched:
        return
    unmatched.sort(key=lambda u: pointer_key(u[0]))
    suggester: Suggester | None = None
    for pointer, pattern in unmatched[:MAX_UNKNOWN_REPORTED]:
        if _GLOB.search(pattern):
            problems.append(_problem("overlay.no_match", pointer, where,
                                     f"the glob `{pattern}` matches no offering",
                                     "`*` matches any characters, `/` included"))
            continue
        suggester = suggester or Suggester(ids)
        problems.append(_problem("overlay.unknown_offering", pointer, where,
                                 f"no offering `{pattern}` in the catalog",
                                 suggester.hint(pattern)))
    rest = unmatched[MAX_UNKNOWN_REPORTED:]
    if rest:
        pointer, pattern = rest[0]
        problems.append(_problem(
            "overlay.unknown_offering", pointer, where,
            f"`{pattern}` and {len(rest) - 1} more ids or globs after it match no offering in "
            f"the catalog (not listed one by one)",
            "fix the ones listed first; was this overlay written for this catalog?"))


def _tag(by_id: dict[str, Offering], oid: str, tags: list[str], pointer: str, where: str,
         problems: list[Problem]) -> None:
    offering = by_id[oid]
    merged = sorted(set(offering.tags) | set(tags))
    if len(merged) > 64:
        problems.append(_problem("overlay.invalid_tag", pointer, where,
                                 f"offering `{oid}` would carry {len(merged)} tags; at most 64"))
        return
    by_id[oid] = offering.model_copy(update={"tags": tuple(merged)})


def export_document(catalog: Catalog) -> dict[str, Any]:
    """The catalog as a file: disabled offerings are left out (a catalog file cannot mark an
    offering disabled, and loading the file must not enable it again)."""
    doc = catalog.to_json()
    if catalog.disabled:
        doc["offerings"] = [o for o in doc["offerings"] if o["id"] not in catalog.disabled]
        doc["generated"]["overlay.disabled_omitted"] = str(len(catalog.disabled))
    return doc
