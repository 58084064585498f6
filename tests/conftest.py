from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from router.offerings import Catalog, load_catalog

FIXTURES = Path(__file__).parent / "fixtures"
AT = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="session")
def fixture_catalog() -> Catalog:
    return load_catalog(FIXTURES / "catalog.json")
