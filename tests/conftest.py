from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from router.catalog.offerings import Catalog, load_catalog
from router.facade import Router
from tests.catalog_sources import extract_catalog_sources
from tests.dispatch_support import ANTHROPIC_KEY, OPENAI_KEY, Clock, environ, make_router

# No test may reach the network: botocore's credential chain and google-auth's application
# default credentials would ask the cloud's metadata service when nothing else is configured
# (inherited by subprocesses).
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ["NO_GCE_CHECK"] = "true"
from tests.fakes import FakeProvider
from tests.records_backends import BACKENDS, Backend, make_backend

FIXTURES = Path(__file__).parent / "fixtures"
AT = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="session")
def fixture_catalog() -> Catalog:
    return load_catalog(FIXTURES / "catalog.json")


@pytest.fixture(scope="session")
def catalog_sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample catalog sources, unpacked once per session from tests/data (fails if missing)."""
    return extract_catalog_sources(tmp_path_factory.mktemp("catalog-sources"))


# -- dispatch: two loopback providers (OpenAI and Anthropic wire formats) per test module ----


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[FakeProvider, FakeProvider]]:
    with FakeProvider(api_key=OPENAI_KEY, models=["cheap-2026", "mid"]) as oa, \
            FakeProvider(api_key=ANTHROPIC_KEY, models=["claude-x-20260101"],
                         style="anthropic") as an:
        yield oa, an


@pytest.fixture()
def fakes(servers: tuple[FakeProvider, FakeProvider]) -> tuple[FakeProvider, FakeProvider]:
    """The module's providers, with their scripts and recorded requests cleared."""
    for fp in servers:
        fp.clear()
    return servers


@pytest.fixture()
def clock() -> Clock:
    return Clock()


@pytest.fixture()
def router(fakes: tuple[FakeProvider, FakeProvider], clock: Clock) -> Iterator[Router]:
    """A router over the dispatch test catalog, pointed at the fakes, time injected."""
    r = make_router(environ(fakes[0].base_url, fakes[1].base_url), clock)
    yield r
    r.close()


@pytest.fixture(scope="session", autouse=True)
def _records_in_a_temp_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Routers made with the process environment (and CLI subprocesses) record into a
    throwaway store, never into the user's data directory."""
    old = os.environ.get("UNHARDCODED_RECORDS")
    os.environ["UNHARDCODED_RECORDS"] = str(tmp_path_factory.mktemp("records")
                                            / "records.sqlite3")
    yield
    if old is None:
        os.environ.pop("UNHARDCODED_RECORDS", None)
    else:
        os.environ["UNHARDCODED_RECORDS"] = old


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """A new, empty records store location: a SQLite file, or a PostgreSQL schema of its own
    (skipped without a server, failed when `.ci/run` requires one)."""
    made = make_backend(request.param, tmp_path)
    yield made
    made.close()
