"""`catalog stats`: counts by provider, region, capability and tag; prices summarised, unknown
values counted as unknown."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import pytest

from router.catalog.offerings import build_catalog, default_catalog
from router.catalog.overlays import apply_overlays, build_overlay
from router.catalog.stats import catalog_stats, stats_text
from router.cli.main import main
from router.policy.attributes import CAPABILITIES


def entry(oid: str, **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"id": oid, "model": oid.rsplit("/", 1)[-1],
                            "provider": oid.split("/", 1)[0], "region": "global"}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


SMALL = build_catalog({"schema": 1, "source": "small", "offerings": [
    entry("a/m1", input_price=1.0, output_price=4.0, capabilities=["tools", "streaming"]),
    entry("a/eu/m1", model="m1", region="eu", input_price=3.0, capabilities=["tools"]),
    entry("b/m2", input_price=0.0, output_price=2.0, context_window=1000, tags=["zdr"]),
    entry("b/m3", output_price=6.0, deprecation_date="2025-01-01"),
]})


def test_counts_and_summaries_of_a_small_catalog() -> None:
    s = catalog_stats(SMALL)
    assert (s.offerings, s.models, s.disabled) == (4, 3, 0)
    assert dict(s.by_provider) == {"a": 2, "b": 2}
    assert dict(s.by_region) == {"global": 3, "eu": 1}
    assert s.by_capability["tools"] == 2 and s.by_capability["streaming"] == 1
    assert s.capabilities_unknown == 2
    assert dict(s.by_tag) == {"zdr": 1}
    assert s.with_deprecation_date == 1
    inp = s.summaries["input_price"]
    assert (inp.known, inp.unknown, inp.min, inp.median, inp.max) == (3, 1, 0.0, 1.0, 3.0)
    assert (inp.min_id, inp.max_id) == ("b/m2", "a/eu/m1")
    out = s.summaries["output_price"]
    assert (out.known, out.unknown, out.median) == (3, 1, 4.0)
    cached = s.summaries["cached_input_price"]
    assert (cached.known, cached.unknown, cached.min, cached.median) == (0, 4, None, None)
    data = s.to_json()
    assert list(data["by_capability"]) == list(CAPABILITIES)
    assert json.loads(json.dumps(data)) == data


def test_stats_of_the_embedded_catalog_agree_with_the_offerings() -> None:
    cat = default_catalog()
    s = catalog_stats(cat)
    assert sum(s.by_provider.values()) == sum(s.by_region.values()) == len(cat)
    prices = [o.output_price for o in cat if o.output_price is not None]
    summary = s.summaries["output_price"]
    assert summary.known + summary.unknown == len(cat)
    assert (summary.min, summary.median, summary.max) == \
        (min(prices), statistics.median(prices), max(prices))
    for cap in CAPABILITIES:
        assert s.by_capability[cap] == sum(1 for o in cat if cap in (o.capabilities or ()))


def test_stats_count_overlay_tags_and_disabled() -> None:
    cat = apply_overlays(SMALL, [build_overlay({"schema": 1, "disable": ["b/*"],
                                                "tags": {"a/*": ["approved"]}})])
    s = catalog_stats(cat)
    assert s.disabled == 2
    assert dict(s.by_tag) == {"approved": 2, "zdr": 1}
    assert "overlay.1" in s.generated


def test_text_output() -> None:
    text = stats_text(catalog_stats(SMALL), top=1)
    assert text.startswith(f"catalog {SMALL.version}  4 offerings  3 models  0 disabled\n")
    assert "input_price" in text and "by region (2):" in text
    assert "… 1 more providers" in text


def test_cli_stats_json_and_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps(SMALL.to_json()), encoding="utf-8")
    assert main(["catalog", "stats", "--catalog", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["offerings"] == 4 and data["summary"]["input_price"]["unknown"] == 1
    assert main(["catalog", "stats", "--catalog", str(path)]) == 0
    assert "by provider (2):" in capsys.readouterr().out


def test_cli_stats_bad_catalog(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.json"
    path.write_text("{", encoding="utf-8")
    assert main(["catalog", "stats", "--catalog", str(path)]) == 2
    assert json.loads(capsys.readouterr().err)["refused"] == "catalog"
