"""What every importer shares: bounded reading, value checks, the report, and the final build.

An importer maps a foreign price list to catalog offerings and hands them to
`router.catalog.offerings.build_catalog`, so an imported catalog is validated exactly like a catalog
file. Three kinds of outcome per source entry:

* imported: it becomes an offering;
* skipped: a deliberate, counted decision (`sample_spec`, an alias, a duplicate, ...);
* a problem: the entry is malformed (a price that is not a number, a negative limit, ...). Any
  problem refuses the whole file with every problem named (`CatalogError`); nothing is written.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from router.catalog.offerings import (
    _ID,
    _NAME,
    MAX_CATALOG_BYTES,
    MAX_OFFERINGS,
    Catalog,
    build_catalog,
)
from router.common import jsonio
from router.common.problems import CatalogError, Problem, escape_token, quote

JsonObj = dict[str, Any]

MAX_SOURCE_ENTRIES = MAX_OFFERINGS
"""At most this many entries (keys, list items, model files) are read from one source."""
ISO_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class Skip(Exception):
    """An entry that deliberately does not become an offering; `reason` is a stable report key."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ImportReport:
    """How an import went: entries read, offerings imported, skips by reason, adjustments."""

    source: str
    where: str
    read: int
    imported: int
    skipped: Mapping[str, int]
    adjustments: Mapping[str, int] = field(default_factory=dict)
    conflicts: tuple[str, ...] = ()

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    def to_json(self) -> JsonObj:
        return {
            "source": self.source,
            "input": self.where,
            "read": self.read,
            "imported": self.imported,
            "skipped_total": self.skipped_total,
            "skipped": dict(sorted(self.skipped.items())),
            "adjustments": dict(sorted(self.adjustments.items())),
            "duplicate_price_conflicts": list(self.conflicts),
        }

    def text(self) -> str:
        lines = [f"imported {self.imported} offerings from {self.read} {self.source} entries "
                 f"in `{self.where}`; skipped {self.skipped_total}"]
        for reason, n in sorted(self.skipped.items(), key=lambda kv: (-kv[1], kv[0])):
            lines.append(f"  skipped {n:>6}  {reason}")
        for what, n in sorted(self.adjustments.items()):
            lines.append(f"  adjusted {n:>5}  {what}")
        if self.conflicts:
            lines.append(f"  {len(self.conflicts)} ids whose duplicate entries disagree on price "
                         "(the preferred entry was kept)")
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class ImportResult:
    """A validated catalog plus the report of how it was made."""

    catalog: Catalog
    report: ImportReport


# --------------------------------------------------------------------------- reading


def read_source(path: Path, limit: int = MAX_CATALOG_BYTES) -> bytes:
    """The bytes of a source file, refused (`import.unreadable`, `import.too_large`) politely."""
    try:
        size = path.stat().st_size
        if size > limit:
            raise CatalogError([problem("import.too_large", "",
                                        f"`{path}` is {size} bytes; the limit is {limit}")])
        chunks: list[bytes] = []
        total = 0
        with path.open("rb") as handle:
            while chunk := handle.read(min(size + 1, 1 << 20)):
                total += len(chunk)
                if total > limit:  # it grew after the size check
                    raise CatalogError([problem("import.too_large", "",
                                                f"`{path}` is over {limit} bytes")])
                chunks.append(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise CatalogError([problem("import.unreadable", "",
                                    f"cannot read `{path}`: {exc.strerror}")]) from None


def parse_json(raw: bytes, where: str) -> Any:
    """Strict JSON (UTF-8, no NaN/Infinity, no duplicate keys); refusals name the file."""
    try:
        return jsonio.loads(raw, f"`{where}`")
    except jsonio.JsonRefused as exc:
        raise CatalogError([problem("import.invalid_json", "", exc.message)]) from None


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- problems


def problem(code: str, pointer: str, message: str, hint: str | None = None) -> Problem:
    return Problem(code=code, pointer=pointer, message=message, hint=hint)


def pointer(*tokens: str | int) -> str:
    """An RFC 6901 pointer from raw tokens."""
    return "".join("/" + escape_token(t) for t in tokens)


def bad_value(ptr: str, label: str, field_name: str, expected: str, value: Any) -> Problem:
    hint = None
    if isinstance(value, str) and "number" in expected:
        try:
            float(value)
            hint = "write the number without quotes"
        except ValueError:
            pass
    return problem("import.invalid_value", ptr,
                   f"{label}: field `{field_name}`: expected {expected}, got `{shown(value)}`",
                   hint)


def shown(value: Any) -> str:
    """A source value as it appears in the source (JSON-like), cut to one short line."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return quote(text)


def check_number(value: Any, ptr: str, label: str, name: str,
                 problems: list[Problem]) -> None:
    """A price: absent/null, or a finite number >= 0."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or value < 0:
        problems.append(bad_value(ptr, label, name, "a number >= 0", value))


def check_count(value: Any, ptr: str, label: str, name: str, problems: list[Problem]) -> None:
    """A token limit: absent/null, or a whole number >= 0 (0 means unknown)."""
    if value is None:
        return
    whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if isinstance(value, bool) or not whole or value < 0:
        problems.append(bad_value(ptr, label, name, "a whole number >= 0", value))


def check_bool(value: Any, ptr: str, label: str, name: str, problems: list[Problem]) -> None:
    if value is not None and not isinstance(value, bool):
        problems.append(bad_value(ptr, label, name, "true or false", value))


def check_date(value: Any, ptr: str, label: str, name: str, problems: list[Problem]) -> None:
    if value is not None and valid_date(value) is None:
        problems.append(bad_value(ptr, label, name, "an ISO date YYYY-MM-DD", value))


# --------------------------------------------------------------------------- values


def positive_int(value: Any) -> int | None:
    """`value` if it is an int > 0 (bools and floats with fractions rejected)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return value if isinstance(value, int) and value > 0 else None


def scaled_price(value: Any, scale: float) -> float | None:
    """`value` x `scale`, float noise rounded away; None unless a finite number >= 0."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or value < 0:
        return None
    return float(round(value * scale, 6))


def per_million(value: Any) -> float | None:
    """USD per token -> USD per 1M tokens."""
    return scaled_price(value, 1e6)


def valid_date(value: Any) -> str | None:
    """An ISO `YYYY-MM-DD` calendar date, or None."""
    if not isinstance(value, str) or not ISO_DATE_RE.match(value):
        return None
    try:
        datetime.date.fromisoformat(value)
    except ValueError:
        return None
    return value


def valid_name(name: str) -> bool:
    """Whether `name` is acceptable as an offering's `model`."""
    return bool(_NAME.match(name))


def valid_id(offering_id: str) -> bool:
    return bool(_ID.match(offering_id))


# --------------------------------------------------------------------------- the result


def render_catalog(doc: Mapping[str, Any]) -> str:
    """The exact on-disk form of a catalog document (stable: sorted keys, one-space indent)."""
    return json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def finish_import(
    *,
    source: str,
    where: str,
    header: str,
    generated: Mapping[str, str],
    offerings: Sequence[tuple[str, JsonObj]],
    read: int,
    skipped: Counter[str],
    adjustments: Counter[str],
    conflicts: Sequence[str] = (),
) -> ImportResult:
    """Validate the mapped offerings through `build_catalog` and attach the report.

    `offerings` pairs each offering with the pointer of the source entry it came from, so a
    problem `build_catalog` finds is reported against the source entry, not the output.
    """
    doc = {"schema": 1, "source": header, "generated": dict(generated),
           "offerings": [o for _, o in offerings]}
    try:
        catalog = build_catalog(doc, where)
    except CatalogError as exc:
        raise CatalogError([_to_source(p, offerings) for p in exc.problems]) from None
    report = ImportReport(source=source, where=where, read=read, imported=len(catalog),
                          skipped=dict(skipped), adjustments=dict(adjustments),
                          conflicts=tuple(conflicts))
    return ImportResult(catalog, report)


def _to_source(p: Problem, offerings: Sequence[tuple[str, JsonObj]]) -> Problem:
    parts = p.pointer.split("/")
    if len(parts) < 3 or parts[1] != "offerings" or not parts[2].isdigit():
        return p
    origin, offering = offerings[int(parts[2])]
    rest = "/".join(parts[3:]) or "(entry)"
    return problem(p.code, origin,
                   f"source entry `{origin}` maps to offering `{offering.get('id')}` whose field "
                   f"`{rest}` is invalid: {p.message.split(': ', 2)[-1]}", p.hint)
