from __future__ import annotations

from pathlib import Path

import pytest

from tests.catalog_sources import extract_catalog_sources


@pytest.fixture(scope="session")
def catalog_sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample catalog sources, unpacked once per session from tests/data (fails if missing)."""
    return extract_catalog_sources(tmp_path_factory.mktemp("catalog-sources"))
