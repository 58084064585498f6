"""The catalog: offerings (model × provider × region) validated strictly, versioned by hash.

A file is validated whole before anything is used: every problem is named (entry id or index,
field, why) and a refused file changes nothing. Missing values stay unknown (absent), never 0.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from router.common import jsonio
from router.common.problems import LABEL, CatalogError, Problem, child_pointer, validation_error
from router.policy.attributes import CAPABILITIES

MAX_CATALOG_BYTES = 64 * 1024 * 1024
MAX_OFFERINGS = 50_000
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@/+-]{0,199}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@/+-]{0,199}$")
MAX_URL_LENGTH = 2048
MAX_PRICE = 1_000_000
_KEY_VARIABLE = re.compile(r"^[A-Z][A-Z0-9_]{0,119}_API_KEY$")


def price_value(v: Any) -> Any:
    """Before-validation of a price field: a finite number (ints become floats), never a bool."""
    if isinstance(v, bool):
        raise ValueError("a price is a number, not a bool")
    if isinstance(v, int):
        if abs(v) > MAX_PRICE:
            raise ValueError(f"input should be less than or equal to {MAX_PRICE}")
        return float(v)
    if isinstance(v, float) and not math.isfinite(v):
        raise ValueError("a price must be finite")
    return v


class Offering(BaseModel):
    """One model served by one provider in one region (static attributes only)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    id: str = Field(pattern=_ID.pattern)
    model: str = Field(pattern=_NAME.pattern)
    provider: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
    region: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")
    context_window: int | None = Field(default=None, gt=0, le=100_000_000)
    max_output_tokens: int | None = Field(default=None, gt=0, le=100_000_000)
    input_price: float | None = Field(default=None, ge=0, le=1_000_000)
    output_price: float | None = Field(default=None, ge=0, le=1_000_000)
    cached_input_price: float | None = Field(default=None, ge=0, le=1_000_000)
    capabilities: tuple[str, ...] | None = None
    tags: tuple[str, ...] = ()
    deprecation_date: str | None = None
    api_model: str | None = Field(default=None, min_length=1, max_length=200)
    # Extension (documented in docs/catalog.md): the base URL of an OpenAI-compatible API that
    # serves this offering (a private deployment such as a local vLLM). Not a policy attribute.
    base_url: str | None = Field(default=None, min_length=1, max_length=MAX_URL_LENGTH)
    # Extension (docs/catalog.md): the environment variable holding this offering's key. Its
    # value is only ever sent to the URL the environment pairs with it (`X_API_KEY` with
    # `X_BASE_URL`; a provider's own key variable with that provider's endpoint).
    api_key_env: str | None = Field(default=None, min_length=1, max_length=128)

    @field_validator("input_price", "output_price", "cached_input_price", mode="before")
    @classmethod
    def _number(cls, v: Any) -> Any:
        return price_value(v)

    @field_validator("capabilities", "tags", mode="before")
    @classmethod
    def _list(cls, v: Any) -> Any:
        return tuple(v) if isinstance(v, list) else v

    @field_validator("capabilities")
    @classmethod
    def _caps(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if v is None:
            return None
        unknown = [c for c in v if c not in CAPABILITIES]
        if unknown:
            raise ValueError(f"unknown capability `{unknown[0]}`; one of {', '.join(CAPABILITIES)}")
        return tuple(sorted(set(v)))

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if len(v) > 64:
            raise ValueError("at most 64 tags")
        bad = [t for t in v if not isinstance(t, str) or not LABEL.match(t)]
        if bad:
            raise ValueError(f"bad tag `{bad[0]!r}`: letters, digits, `_.:-`, at most 64")
        return tuple(sorted(set(v)))

    @field_validator("deprecation_date")
    @classmethod
    def _date(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                dt.date.fromisoformat(v)
            except ValueError:
                raise ValueError(f"`{v}` is not an ISO date (YYYY-MM-DD)") from None
        return v

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, v: str | None) -> str | None:
        if v is not None:
            problem = base_url_problem(v)
            if problem is not None:
                raise ValueError(problem)
            v = normalise_base_url(v)
        return v

    @field_validator("api_key_env")
    @classmethod
    def _api_key_env(cls, v: str | None) -> str | None:
        if v is not None and not _KEY_VARIABLE.match(v):
            raise ValueError(f"`{v[:128]}` is not a key variable: upper-case letters, digits "
                             f"and `_`, ending in `_API_KEY` (its key is only sent to the URL "
                             f"in the matching `_BASE_URL` variable)")
        return v

    def static_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)

    def attr(self, name: str) -> Any:
        """A static attribute value, or None when unknown."""
        value = getattr(self, name, None)
        if name in ("capabilities", "tags") and value is not None:
            return frozenset(value)
        return value


def normalise_base_url(url: str) -> str:
    """A valid base URL with its scheme in lower case (`HTTP://h/v1` → `http://h/v1`): schemes
    are case-insensitive, and the router compares and calls the lower-case form."""
    scheme, sep, rest = url.partition("://")
    return scheme.lower() + sep + rest if sep else url


def base_url_problem(url: str) -> str | None:
    """Why `url` is not an acceptable base URL (http or https, a host, no credentials, query or
    fragment, no whitespace), or None."""
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        return "a base URL may not contain whitespace or control characters"
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"not a valid URL: {exc}"
    if parts.scheme not in ("http", "https"):
        return "a base URL must start with `http://` or `https://`"
    if not parts.hostname:
        return "a base URL needs a host"
    if parts.username is not None or parts.password is not None:
        return "a base URL may not carry credentials (keys come from the environment)"
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        return "a base URL may not have a query or fragment"
    if port == 0:
        return "port 0 is not a valid port"
    return None


@dataclass(frozen=True)
class Catalog:
    """A validated, immutable catalog snapshot.

    `disabled` holds the ids of offerings an operator overlay disabled: they stay in the catalog
    (so an explanation can name them) and the decision layer reads them as status `disabled`.
    """

    offerings: tuple[Offering, ...]
    source: str
    version: str
    generated: Mapping[str, str] = field(default_factory=dict)
    disabled: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {o.id: o for o in self.offerings})

    def get(self, offering_id: str) -> Offering | None:
        by_id: dict[str, Offering] = getattr(self, "_by_id")  # noqa: B009
        return by_id.get(offering_id)

    def __iter__(self) -> Iterator[Offering]:
        return iter(self.offerings)

    def __len__(self) -> int:
        return len(self.offerings)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": 1,
            "source": self.source,
            "generated": dict(self.generated),
            "offerings": [o.static_json() for o in self.offerings],
        }


def catalog_version(offerings: tuple[Offering, ...]) -> str:
    body = json.dumps([o.static_json() for o in offerings], separators=(",", ":"),
                      sort_keys=True, ensure_ascii=False)
    return "cat-" + hashlib.sha256(f"schema1:{body}".encode()).hexdigest()[:16]


def build_catalog(data: object, where: str = "catalog") -> Catalog:
    """Validate a parsed catalog document; raise `CatalogError` naming every problem."""
    problems: list[Problem] = []
    if not isinstance(data, dict):
        raise CatalogError([Problem(code="catalog.not_an_object", pointer="",
                                    message=f"{where}: expected a JSON object")])
    extra = set(data) - {"schema", "source", "generated", "offerings"}
    for key in sorted(extra):
        problems.append(Problem(code="catalog.unknown_field", pointer=child_pointer("", key),
                                message=f"unknown top-level field `{key}`"))
    if data.get("schema") != 1 or isinstance(data.get("schema"), bool):
        problems.append(Problem(code="catalog.schema", pointer="/schema",
                                message=f"unsupported schema `{data.get('schema')!r}`",
                                hint="this router reads schema 1"))
    source = data.get("source", "")
    if not isinstance(source, str):
        problems.append(Problem(code="catalog.type", pointer="/source",
                                message="`source` must be a string"))
        source = ""
    generated = data.get("generated", {})
    if not isinstance(generated, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in generated.items()
    ):
        problems.append(Problem(code="catalog.type", pointer="/generated",
                                message="`generated` must be an object of strings"))
        generated = {}
    raw = data.get("offerings")
    if not isinstance(raw, list):
        problems.append(Problem(code="catalog.type", pointer="/offerings",
                                message="`offerings` must be a list"))
        raise CatalogError(problems)
    if len(raw) > MAX_OFFERINGS:
        problems.append(Problem(code="catalog.too_large", pointer="/offerings",
                                message=f"{len(raw)} offerings; the limit is {MAX_OFFERINGS}"))
        raise CatalogError(problems)
    offerings: list[Offering] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(raw):
        label = _entry_label(entry, index)
        pointer = f"/offerings/{index}"
        try:
            offering = Offering.model_validate(entry)
        except ValidationError as exc:
            for err in exc.errors():
                below, message = validation_error(err)
                if err.get("type") == "extra_forbidden":
                    message += " (live attributes such as status are never read from a file)"
                field = below.lstrip("/") or "(entry)"
                problems.append(Problem(code="catalog.invalid_entry", pointer=pointer + below,
                                        message=f"{label}: field `{field}`: {message}"))
            continue
        if offering.id in seen:
            problems.append(Problem(code="catalog.duplicate_id", pointer=f"{pointer}/id",
                                    message=f"{label}: id also used by entry {seen[offering.id]}"))
            continue
        seen[offering.id] = index
        offerings.append(offering)
    if problems:
        raise CatalogError(problems)
    ordered = tuple(sorted(offerings, key=lambda o: o.id))
    return Catalog(ordered, source, catalog_version(ordered), dict(generated))


def _entry_label(entry: object, index: int) -> str:
    if isinstance(entry, dict) and isinstance(entry.get("id"), str):
        return f"entry {index} (`{entry['id'][:80]}`)"
    return f"entry {index}"



def load_catalog(path: str | Path) -> Catalog:
    """Read and validate a catalog file. Nothing is changed if it is refused."""
    try:
        data = jsonio.read_json(path, MAX_CATALOG_BYTES)
    except jsonio.JsonRefused as exc:
        raise CatalogError([Problem(code=f"catalog.{exc.kind}", pointer="",
                                    message=exc.message)]) from None
    return build_catalog(data, str(path))


def parse_catalog(text: str, where: str = "catalog") -> Catalog:
    try:
        data = jsonio.loads(text, where)
    except jsonio.JsonRefused as exc:
        raise CatalogError([Problem(code=f"catalog.{exc.kind}", pointer="",
                                    message=exc.message)]) from None
    return build_catalog(data, where)


def default_catalog() -> Catalog:
    """The embedded catalog shipped in the package (generated from public sources)."""
    text = resources.files("router.catalog").joinpath("default.json").read_text("utf-8")
    return parse_catalog(text, "embedded catalog")
