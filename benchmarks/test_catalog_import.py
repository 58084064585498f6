"""Catalog import: time and peak memory for the full LiteLLM price map (and the other sources).

Run: python -m pytest benchmarks/test_catalog_import.py --benchmark-only \
       --benchmark-columns=min,median,mean,max,rounds -s

Each round is a whole import: read the file, parse JSON, map every entry, validate the offerings
through `build_catalog`. Peak memory is measured once per source with tracemalloc (Python
allocations only, on top of what was allocated before) and printed / stored in extra_info.
"""

from __future__ import annotations

import gc
import json
import time
import tracemalloc
from pathlib import Path

import pytest

from router.catalog.importers import import_catalog
from tests.catalog_sources import LITELLM, MODELS_DEV, OPENROUTER

# source name -> its path inside the sample sources (the `catalog_sources` fixture, unpacked
# from tests/data/catalog-sources.tar.xz)
CASES = {"litellm": LITELLM, "openrouter": OPENROUTER, "models.dev": MODELS_DEV}


def peak_memory(source: str, path: Path) -> tuple[int, float]:
    """(peak bytes allocated during one import, seconds of that traced import)."""
    gc.collect()
    tracemalloc.start()
    try:
        t0 = time.perf_counter()
        import_catalog(source, path)
        elapsed = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, elapsed


@pytest.mark.parametrize("source", list(CASES))
def test_import(benchmark, source: str,  # type: ignore[no-untyped-def]
                catalog_sources: Path) -> None:
    path = catalog_sources / CASES[source]
    result = benchmark.pedantic(import_catalog, args=(source, path),
                                rounds=10 if source != "models.dev" else 3,
                                iterations=1, warmup_rounds=1)
    peak, traced = peak_memory(source, path)
    size = (path.stat().st_size if path.is_file()
            else sum(p.stat().st_size for p in path.rglob("*.toml")))
    benchmark.extra_info.update({
        "source_bytes": size, "read": result.report.read, "imported": result.report.imported,
        "peak_mib": round(peak / 2**20, 1), "traced_s": round(traced, 3),
    })
    print("\n" + json.dumps({"source": source, **benchmark.extra_info}))
    assert result.report.imported > 0
