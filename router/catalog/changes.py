"""What changed between two catalogs: offerings added and removed, prices changed,
capabilities gained and lost, and any other static attribute changed (per offering, by id)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from router.catalog.offerings import Catalog

PRICES = ("input_price", "output_price", "cached_input_price")


@dataclass
class CatalogChanges:
    old_version: str
    new_version: str
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    repriced: list[tuple[str, str, Any, Any]] = field(default_factory=list)
    capabilities: list[tuple[str, list[str], list[str]]] = field(default_factory=list)
    other: list[tuple[str, str, Any, Any]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.repriced or self.capabilities
                    or self.other)

    def to_json(self) -> dict[str, Any]:
        return {
            "old": self.old_version, "new": self.new_version,
            "added": self.added, "removed": self.removed,
            "repriced": [{"offering": o, "field": f, "old": a, "new": b}
                         for o, f, a, b in self.repriced],
            "capabilities": [{"offering": o, "gained": g, "lost": lost}
                             for o, g, lost in self.capabilities],
            "changed": [{"offering": o, "field": f, "old": a, "new": b}
                        for o, f, a, b in self.other],
        }

    def text(self, max_rows: int | None = None) -> str:
        out = [f"catalog {self.old_version} -> {self.new_version}: {len(self.added)} added, "
               f"{len(self.removed)} removed, {len(self.repriced)} price changes, "
               f"{len(self.capabilities)} capability changes, {len(self.other)} other changes"]

        def section(title: str, lines: list[str]) -> None:
            if not lines:
                return
            shown = lines if max_rows is None else lines[:max_rows]
            out.append(title)
            out.extend(shown)
            if len(shown) < len(lines):
                out.append(f"  … and {len(lines) - len(shown)} more")

        section("added:", [f"  + {o}" for o in self.added])
        section("removed:", [f"  - {o}" for o in self.removed])
        section("repriced (USD per 1M tokens):",
                [f"  {o}  {f} {_v(a)} -> {_v(b)}{_pct(a, b)}" for o, f, a, b in self.repriced])
        section("capabilities:", [
            f"  {o}  " + " ".join([f"+{c}" for c in g] + [f"-{c}" for c in lost])
            for o, g, lost in self.capabilities])
        section("other:", [f"  {o}  {f}: {_v(a)} -> {_v(b)}" for o, f, a, b in self.other])
        return "\n".join(out) + "\n"


def catalog_changes(old: Catalog, new: Catalog) -> CatalogChanges:
    out = CatalogChanges(old.version, new.version)
    before = {o.id: o.static_json() for o in old}
    after = {o.id: o.static_json() for o in new}
    out.added = sorted(set(after) - set(before))
    out.removed = sorted(set(before) - set(after))
    for oid in sorted(set(before) & set(after)):
        a, b = before[oid], after[oid]
        if a == b:
            continue
        for name in sorted(set(a) | set(b)):
            va, vb = a.get(name), b.get(name)
            if va == vb:
                continue
            if name in PRICES:
                out.repriced.append((oid, name, va, vb))
            elif name == "capabilities":
                gained = sorted(set(vb or ()) - set(va or ()))
                lost = sorted(set(va or ()) - set(vb or ()))
                out.capabilities.append((oid, gained, lost))
            else:
                out.other.append((oid, name, va, vb))
    return out


def _v(v: Any) -> str:
    if v is None:
        return "unknown"
    if isinstance(v, list):
        return "[" + ", ".join(map(str, v)) + "]"
    return f"{v:g}" if isinstance(v, float) else str(v)


def _pct(a: Any, b: Any) -> str:
    if isinstance(a, int | float) and isinstance(b, int | float) and a:
        return f" ({(b - a) / a * 100:+.1f}%)"
    return ""
