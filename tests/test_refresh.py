"""Live refresh: reload on request, on file change and on SIGHUP; refused files change nothing;
a background swap while decisions flow; discovery against a loopback provider."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from router.catalog.refresh import CatalogSource, ReloadReport, Watcher, source_of
from router.common.problems import CatalogError
from router.config import RouterConfig
from router.dispatch.completion import Completion
from router.facade import Router
from tests.dispatch_support import OPENAI_KEY, Clock, catalog, environ, make_router, policy, request
from tests.fakes import FakeProvider, status


def write_catalog(path: Path, offerings: list[dict[str, Any]]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"schema": 1, "source": "test", "offerings": offerings}))
    os.replace(tmp, path)


def base_offerings() -> list[dict[str, Any]]:
    return [o.static_json() for o in catalog()]


def wait_until(predicate: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


@pytest.fixture()
def files(tmp_path: Path) -> tuple[Path, Path]:
    cat = tmp_path / "catalog.json"
    write_catalog(cat, base_offerings())
    overlay = tmp_path / "ops.toml"
    overlay.write_text('schema = 1\n')
    return cat, overlay


def test_reload_swaps_after_deriving_registered_policies(files: tuple[Path, Path]) -> None:
    cat, overlay = files
    router = Router(cat, overlays=[overlay], config=RouterConfig(environ={}))
    pol = router.register(policy())
    before = router.catalog.version
    assert router.route(pol, request()).selected == "mistral/nokey"  # dry run: live not read
    offerings = base_offerings()
    for o in offerings:
        if o["id"] == "mistral/nokey":
            o["input_price"] = 50.0
    write_catalog(cat, offerings)
    report = router.reload()
    assert report.changed and report.previous_version == before
    assert report.version == router.catalog.version != before
    assert report.policies_derived == 1
    assert router.deciders.cache.peek(pol, router.catalog) is not None  # derived before swap
    result = router.route(pol, request())
    assert result.selected == "bedrock/noadapter"
    assert result.record()["catalog_version"] == report.version
    assert not router.reload().changed  # same files: nothing to do
    router.close()


def test_overlay_change_disables_an_offering_with_the_reason(files: tuple[Path, Path]) -> None:
    cat, overlay = files
    router = Router(cat, overlays=[overlay], config=RouterConfig(environ={}))
    pol = policy()
    overlay.write_text('schema = 1\ndisable = ["mistral/nokey"]\n')
    report = router.reload()
    assert report.changed
    result = router.route(pol, request())
    assert result.selected == "bedrock/noadapter"
    reasons = [e["reason"] for e in result.record()["rejected"]["mistral/nokey"]]
    assert any("disabled" in r for r in reasons), reasons
    assert router.live().of("mistral/nokey").status == "disabled"
    router.close()


@pytest.mark.parametrize("bad", [
    "{not json",
    json.dumps({"schema": 1, "offerings": [{"id": "x/y", "model": "y", "provider": "x",
                                            "region": "global", "input_price": -1}]}),
])
def test_refused_catalog_leaves_the_one_in_force(files: tuple[Path, Path], bad: str) -> None:
    cat, overlay = files
    router = Router(cat, overlays=[overlay], config=RouterConfig(environ={}))
    before = router.catalog
    cat.write_text(bad)
    report = router.reload()
    assert report.refused and not report.changed
    assert report.problems and all(p.startswith("catalog.") for p in report.problems)
    assert router.catalog is before
    assert router.route(policy(), request()).selected == "mistral/nokey"
    router.close()


def test_refused_overlay_leaves_the_one_in_force(files: tuple[Path, Path]) -> None:
    cat, overlay = files
    router = Router(cat, overlays=[overlay], config=RouterConfig(environ={}))
    before = router.catalog
    overlay.write_text('schema = 1\ndisable = "not-a-list"\n')
    report = router.reload()
    assert report.refused and router.catalog is before
    assert "/disable" in " ".join(report.problems)
    router.close()


def test_watch_reloads_when_a_file_changes(files: tuple[Path, Path]) -> None:
    cat, overlay = files
    router = Router(cat, overlays=[overlay], config=RouterConfig(environ={}))
    before = router.catalog.version
    watcher = router.watch(interval_s=0.05)
    overlay.write_text('schema = 1\n[tags]\n"openai/*" = ["approved"]\n')
    assert wait_until(lambda: router.catalog.version != before)
    o = router.catalog.get("openai/mid")
    assert o is not None and "approved" in o.tags
    assert wait_until(lambda: len(watcher.reports) == 1)
    router.close()


def test_sighup_reloads(files: tuple[Path, Path]) -> None:
    cat, overlay = files
    router = Router(cat, overlays=[overlay], config=RouterConfig(environ={}))
    before = router.catalog.version
    previous = signal.getsignal(signal.SIGHUP)
    try:
        router.reload_on_sighup()
        overlay.write_text('schema = 1\ndisable = ["openai/mid"]\n')
        os.kill(os.getpid(), signal.SIGHUP)
        assert wait_until(lambda: router.catalog.version != before)
        assert "openai/mid" in router.catalog.disabled
    finally:
        signal.signal(signal.SIGHUP, previous)
        router.close()


def test_background_swap_while_decisions_flow(tmp_path: Path) -> None:
    """Decisions keep flowing on the old version while the new one is derived; none fails, and
    each names the version it used; old before the swap, new after."""
    from benchmarks.workload import catalog as synthetic
    from benchmarks.workload import policy as synthetic_policy

    path = tmp_path / "big.json"
    path.write_text(json.dumps(synthetic(600).to_json()))
    router = Router(path, config=RouterConfig(environ={}))
    policies = [router.register(synthetic_policy(k)) for k in (3, 6, 9, 12)]
    for p in policies:
        router.derivation(p)
    old = router.catalog.version
    doc = json.loads(path.read_text())
    doc["offerings"][0]["input_price"] = 0.0001
    path.write_text(json.dumps(doc))
    seen: list[tuple[float, float, str]] = []  # (started, ended, catalog version used)
    errors: list[BaseException] = []
    stop = threading.Event()

    def decide() -> None:
        i = 0
        while not stop.is_set():
            try:
                t0 = time.monotonic()
                r = router.route(policies[i % len(policies)], {"messages": [
                    {"role": "user", "content": "x" * 400}], "labels": ["pii"]})
                version = r.record(proofs=False)["catalog_version"]
                seen.append((t0, time.monotonic(), version))
            except BaseException as exc:  # collected and asserted below
                errors.append(exc)
            i += 1

    workers = [threading.Thread(target=decide) for _ in range(2)]
    for w in workers:
        w.start()
    time.sleep(0.05)
    started = time.monotonic()
    future = router.reload_in_background()
    report = future.result(timeout=120)
    assert report.swapped_at is not None
    swapped = report.swapped_at
    # let a few decisions start and finish on the new version (the first builds its decider)
    assert wait_until(lambda: sum(1 for t0, _, _ in seen if t0 > swapped) >= 5, timeout=30)
    stop.set()
    for w in workers:
        w.join()
    assert errors == []
    assert report.changed and report.policies_derived == 4
    new = report.version
    assert {v for _, _, v in seen} == {old, new}
    # every decision that ended before the swap used the old version, while the new one was
    # being derived (decisions did not wait for it) ...
    during = [v for t0, t1, v in seen if t0 > started and t1 < swapped]
    assert during and set(during) == {old}
    # ... and every decision that started after the swap used the new one
    after = [v for t0, _, v in seen if t0 > swapped]
    assert after and set(after) == {new}
    router.close()


# -- discovery --------------------------------------------------------------------------------


@pytest.fixture()
def openai_fake() -> Iterator[FakeProvider]:
    with FakeProvider(api_key=OPENAI_KEY, models=["cheap-2026", "gpt-other"]) as oa, \
            FakeProvider(api_key="sk-ant-test-abcdefghij", models=["claude-x-20260101"],
                         style="anthropic") as an:
        yield oa, an  # type: ignore[misc]


def test_discovery_marks_models_the_key_may_not_use(openai_fake: Any) -> None:
    oa, an = openai_fake
    router = make_router(environ(oa.base_url, an.base_url), Clock())
    found = router.discover_sync()
    assert set(found.values) == {"openai/mid"}
    v = router.live().of("openai/mid")
    assert v.status == "not_entitled"
    assert "the `openai` key may not use `mid`" in (v.reason or "")
    by_provider = {e.provider: e for e in found.endpoints}
    assert by_provider["openai"].models == 2 and by_provider["openai"].not_entitled == (
        "openai/mid",)
    assert by_provider["anthropic"].entitled == 1
    # explain shows the reason; dispatch never calls it
    why = router.explain(policy(), "openai/mid", request(), router.live())[0]
    assert any("may not use `mid`" in f.reason for f in why.failed)
    oa.script_for("cheap-2026", status(500))
    done = router.complete_sync(policy(), request())
    assert isinstance(done, Completion) and done.served_by == "anthropic/claude"
    assert [r.json["model"] for r in oa.requests if r.method == "POST"] == ["cheap-2026"]
    assert oa.requests[0].headers["authorization"] == f"Bearer {OPENAI_KEY}"
    router.close()


def test_discovery_failure_hides_nothing(openai_fake: Any) -> None:
    oa, an = openai_fake
    router = make_router(environ(oa.base_url, an.base_url), Clock())
    oa.script_models(status(503))
    found = router.discover_sync(providers=["openai"])
    assert found.values == {}
    (result,) = found.endpoints
    assert result.models is None and result.error is not None and "rate_limit" in result.error
    assert router.live().of("openai/mid").status == "available"
    router.close()


def test_a_failed_listing_keeps_the_earlier_marks(openai_fake: Any) -> None:
    oa, an = openai_fake
    router = make_router(environ(oa.base_url, an.base_url), Clock())
    router.discover_sync()
    assert router.live().of("openai/mid").status == "not_entitled"
    oa.script_models(status(500))
    found = router.discover_sync()
    assert {e.provider: e.error is not None for e in found.endpoints} == {
        "anthropic": False, "openai": True}
    assert router.live().of("openai/mid").status == "not_entitled"  # not un-hidden
    router.close()


def test_local_runtimes_are_not_called_until_configured() -> None:
    from router.catalog.offerings import build_catalog

    cat = build_catalog({"schema": 1, "offerings": [
        {"id": "ollama/llama3", "model": "llama3", "provider": "ollama", "region": "global"},
        {"id": "vllm/mine", "model": "mine", "provider": "vllm", "region": "global",
         "base_url": "http://127.0.0.1:9/v1"}]})
    router = Router(cat, config=RouterConfig(environ={}))
    live = router.live()
    assert live.of("ollama/llama3").status == "no_key"
    assert "set OLLAMA_BASE_URL" in (live.of("ollama/llama3").reason or "")
    assert live.of("vllm/mine").status == "available"  # its own base_url configures it
    configured = Router(cat, config=RouterConfig(environ={"OLLAMA_BASE_URL": "http://127.0.0.1:11434/v1"}))
    assert configured.live().of("ollama/llama3").status == "available"
    bad = Router(cat, config=RouterConfig(environ={"OLLAMA_BASE_URL": "file:///etc/passwd"}))
    assert bad.live().of("ollama/llama3").status == "unsupported"


# -- hardening (issue 11, findings 8, 10 and 14) ----------------------------------------------


HUGE_PRICE = 'schema = 1\n[prices."openai/mid"]\ninput_price = ' + "9" * 400 + "\n"


def test_reload_refuses_a_400_digit_price_and_keeps_the_catalog(files: tuple[Path, Path]) -> None:
    cat, overlay = files
    router = Router(cat, overlays=[overlay], config=RouterConfig(environ={}))
    before = router.catalog
    overlay.write_text(HUGE_PRICE)
    report = router.reload()  # was: OverflowError raised from reload()
    assert report.refused and not report.changed and router.catalog is before
    assert report.problems[0].startswith("overlay.invalid_toml at /: ")
    assert "400 digits" in report.problems[0]
    router.close()


def test_the_watcher_logs_one_line_for_a_hostile_overlay(
        files: tuple[Path, Path], caplog: pytest.LogCaptureFixture) -> None:
    cat, overlay = files
    router = Router(cat, overlays=[overlay], config=RouterConfig(environ={}))
    before = router.catalog
    caplog.set_level(logging.INFO, logger="unhardcoded.refresh")
    watcher = router.watch(interval_s=0.05)
    overlay.write_text(HUGE_PRICE)
    assert wait_until(lambda: len(watcher.reports) == 1)  # was: a traceback and no report
    router.close()
    assert watcher.reports[0].refused and router.catalog is before
    [record] = [r for r in caplog.records if r.name == "unhardcoded.refresh"]
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert "\n" not in record.getMessage() and "400 digits" in record.getMessage()


def test_a_reload_that_fails_unexpectedly_is_a_refused_report(
        files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    cat, overlay = files
    router = Router(cat, overlays=[overlay], config=RouterConfig(environ={}))
    before = router.catalog

    def broken(self: CatalogSource) -> None:
        raise OverflowError("int too large to convert to float")

    monkeypatch.setattr(CatalogSource, "load", broken)
    report = router.reload()
    assert report.refused and router.catalog is before
    assert report.problems[0].startswith("catalog.unreadable at /: reading the files failed: "
                                          "OverflowError: int too large")
    router.close()


def test_a_watcher_whose_reload_raises_logs_one_line(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "ops.toml"
    path.write_text("schema = 1\n")
    calls: list[int] = []

    def reload() -> ReloadReport:
        calls.append(1)
        raise RuntimeError("the derivation worker died")

    caplog.set_level(logging.DEBUG, logger="unhardcoded.refresh")
    watcher = Watcher(source_of(None, [path]), reload, interval_s=0.05).start()
    path.write_text("schema = 1\n# changed\n")
    assert wait_until(lambda: bool(calls))
    assert wait_until(lambda: any(r.levelno == logging.ERROR for r in caplog.records))
    watcher.stop()
    [error] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert error.exc_info is None and error.getMessage() == (
        "catalog reload failed, the previous version stays in force: RuntimeError: the "
        "derivation worker died")


def test_reload_to_a_catalog_with_no_offerings_is_refused(files: tuple[Path, Path]) -> None:
    cat, overlay = files
    router = Router(cat, overlays=[overlay], config=RouterConfig(environ={}))
    before = router.catalog
    write_catalog(cat, [])
    report = router.reload()  # was: swapped in silently, every decision then fails
    assert report.refused and router.catalog is before
    [line] = report.problems
    assert line.startswith(f"catalog.empty at /offerings: `{cat}` with its overlays has no "
                           f"offerings")
    assert 'disable = ["*"]' in line
    with pytest.raises(CatalogError) as info:  # the same at start-up
        Router(cat, config=RouterConfig(environ={}))
    assert [p.code for p in info.value.problems] == ["catalog.empty"]
    router.close()


def test_an_empty_catalog_file_with_overlay_offerings_and_a_kill_switch_are_served(
        files: tuple[Path, Path]) -> None:
    cat, overlay = files
    write_catalog(cat, [])  # an empty base is fine when the overlays add offerings
    overlay.write_text('schema = 1\n[[offerings]]\nid = "vllm/llama"\nmodel = "llama"\n'
                       'provider = "vllm"\nregion = "eu"\nbase_url = "http://10.0.0.5/v1"\n')
    router = Router(cat, overlays=[overlay], config=RouterConfig(environ={}))
    assert [o.id for o in router.catalog] == ["vllm/llama"]
    write_catalog(cat, base_offerings())
    overlay.write_text('schema = 1\ndisable = ["*"]\n')  # stopping all traffic on purpose
    report = router.reload()
    assert report.changed and router.catalog.disabled == {o.id for o in router.catalog}
    assert router.route(policy(), request()).selected is None
    router.close()
