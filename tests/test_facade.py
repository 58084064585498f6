"""The facade: one frozen config whose hash every record carries, context managers, and one
method per answer shape (`complete` for one piece, `stream` for chunks)."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

import router as public
from router import (
    BreakerSettings,
    RequestError,
    Router,
    RouterConfig,
)
from router.catalog.offerings import Catalog
from tests.conftest import AT

POLICY = ["policy", ["ev_zero"], ["filter"], ["rank", ["asc", "input_price"]],
          ["select", ["first"], ["cascade", 1]], ["mutate"], ["fallback"]]
REQUEST = {"messages": [{"role": "user", "content": "hi"}]}


def test_config_hash_is_in_every_record_and_tracks_settings(fixture_catalog: Catalog) -> None:
    base = RouterConfig(clock=lambda: AT, environ={})
    with Router(fixture_catalog, config=base) as r:
        record = r.route(POLICY, REQUEST).record(proofs=False)
    assert record["config_hash"] == base.hash and len(base.hash) == 64
    # the seams (clock, environment with its keys) are not hashed; the settings are
    assert RouterConfig(environ={"OPENAI_API_KEY": "sk-x"}).hash == base.hash
    stricter = dataclasses.replace(base, breaker=BreakerSettings(failure_threshold=1))
    assert stricter.hash != base.hash
    assert "sk-x" not in str(RouterConfig(environ={"OPENAI_API_KEY": "sk-x"}))
    with pytest.raises(dataclasses.FrozenInstanceError):
        base.trust_env = True  # type: ignore[misc]


def test_complete_refuses_a_stream_request_and_names_the_method(fixture_catalog: Catalog) -> None:
    with Router(fixture_catalog, config=RouterConfig(environ={})) as r:
        with pytest.raises(RequestError) as e:
            r.complete_sync(POLICY, {**REQUEST, "stream": True})
        [p] = e.value.problems
        assert (p.code, p.pointer) == ("request.stream_method", "/stream")
        assert p.hint is not None and "stream" in p.hint
        with pytest.raises(RequestError) as e2:  # a non-object request is refused, not a crash
            r.complete_sync(POLICY, [1, 2, 3])  # type: ignore[arg-type]
        assert e2.value.problems[0].code == "request.invalid"


def test_async_context_manager_closes_its_clients(fixture_catalog: Catalog) -> None:
    async def run() -> bool:
        async with Router(fixture_catalog, config=RouterConfig(environ={})) as r:
            r.clients.client()
            pools = list(r.clients._pools.values())
        return all(c.is_closed for pool in pools for c in pool.clients)

    assert asyncio.run(run())


def test_public_surface_has_no_engine_internals() -> None:
    for name in ("Derivation", "DerivationCache", "derive", "Decider"):
        assert name not in public.__all__
    for name in public.__all__:
        assert hasattr(public, name), name


def test_import_works_from_a_source_tree_without_install(tmp_path: Path) -> None:
    """`import router` and the CLI's --version from the checkout itself (package data inside
    the package, no path remapping)."""
    root = Path(__file__).resolve().parents[1]
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import router; "
            "print(router.__file__); print(len(router.Router(config=router.RouterConfig("
            "environ={}, derive_in_processes=False)).catalog))")
    done = subprocess.run([sys.executable, "-I", "-c", code, str(root)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    where, count = done.stdout.split()
    assert Path(where).resolve() == root / "router" / "__init__.py"
    assert int(count) > 3000
    version = subprocess.run([sys.executable, "-m", "router.cli", "--version"],
                             capture_output=True, text=True, timeout=60, cwd=root)
    assert version.returncode == 0 and version.stdout.startswith("unhardcoded ")


def test_an_offerings_endpoint_is_resolved_once_per_router() -> None:
    """Resolution depends on the offering and the router's environment snapshot only, so the
    second call returns what the first resolved (keys, cloud credentials, refusals alike)."""
    from router.catalog.offerings import default_catalog
    from router.config import RouterConfig
    from router.dispatch.providers.base import Endpoint
    from router.dispatch.providers.registry import Unreachable
    from router.facade import Router

    catalog = default_catalog()
    openai = next(o for o in catalog if o.provider == "openai")
    anthropic = next(o for o in catalog if o.provider == "anthropic")
    offerings = [openai, anthropic]
    with Router(catalog, config=RouterConfig(records=None,
                                             environ={"OPENAI_API_KEY": "sk-x"})) as router:
        first = [router.endpoint(o) for o in offerings]
        assert [router.endpoint(o) for o in offerings] == first
        assert all(a is b for a, b in zip(first, [router.endpoint(o) for o in offerings],
                                          strict=True))
    assert isinstance(first[0], Endpoint) and first[0].api_key is not None
    assert isinstance(first[1], Unreachable) and first[1].status == "no_key"
    with Router(catalog, config=RouterConfig(records=None, environ={})) as other:
        found = other.endpoint(openai)  # another router, its own snapshot: no OpenAI key there
        assert isinstance(found, Unreachable) and found.status == "no_key"
