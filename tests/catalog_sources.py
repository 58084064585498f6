"""The sample catalog sources (LiteLLM, OpenRouter, models.dev) the importer tests run on.

They are committed as one archive, ``tests/data/catalog-sources.tar.xz`` (provenance and
licences in ``tests/data/README.md`` and inside the archive).  `extract_catalog_sources` unpacks
it; the ``catalog_sources`` fixtures in ``tests/conftest.py`` and ``benchmarks/conftest.py`` call
it once per session.  A missing or unreadable archive is a test failure, never a skip.
"""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Final

import pytest

ARCHIVE: Final = Path(__file__).resolve().parent / "data" / "catalog-sources.tar.xz"
TOP: Final = "catalog-sources"  # the archive's single top-level directory
LITELLM: Final = "litellm/model_prices_and_context_window_backup.json"
OPENROUTER: Final = "openrouter/models.json"
MODELS_DEV: Final = "models.dev"


def extract_catalog_sources(dest: Path) -> Path:
    """Unpack the archive under `dest`; returns the ``catalog-sources`` directory."""
    if not ARCHIVE.is_file():
        pytest.fail(f"test data missing: {ARCHIVE} (the sample catalog sources; see "
                    f"tests/data/README.md for how to regenerate it)", pytrace=False)
    try:
        with tarfile.open(ARCHIVE, "r:xz") as tar:
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, OSError, EOFError) as e:
        pytest.fail(f"cannot extract {ARCHIVE}: {e}", pytrace=False)
    root = dest / TOP
    missing = [rel for rel in (LITELLM, OPENROUTER, MODELS_DEV) if not (root / rel).exists()]
    if missing:
        pytest.fail(f"{ARCHIVE} lacks {', '.join(f'{TOP}/{m}' for m in missing)}", pytrace=False)
    return root
