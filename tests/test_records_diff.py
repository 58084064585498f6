"""`diff`: stored decisions re-decided under a new policy or catalog — what moved, between
which offerings, why, and the cost change; `catalog diff`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from router.catalog.changes import catalog_changes
from router.catalog.offerings import Catalog, build_catalog
from router.config import RouterConfig
from router.facade import Router
from router.policy.admit import admit
from router.records import Replayer, SqliteStore
from router.records.store import Query
from router.records.whatif import WhatIf
from tests.dispatch_support import catalog, offering, policy

REQUESTS = [{"messages": [{"role": "user", "content": "x" * n}], "max_tokens": 100}
            for n in (10, 2000, 40000)]
ROOT = Path(__file__).resolve().parents[1]


def record_some(path: Path, cat: Catalog) -> list[str]:
    router = Router(cat, config=RouterConfig(environ={}, records=path))
    ids = [router.route(policy(), r).trace_id for r in REQUESTS]
    router.close()
    return ids


def what_if(path: Path, **changes: object) -> dict[str, object]:
    store = SqliteStore(path)
    report = WhatIf(Replayer(store), **changes).run(store.iterate(Query()))  # type: ignore[arg-type]
    store.close()
    return report.to_json()


def with_offerings(cat: Catalog, *changes: tuple[str, dict[str, object]]) -> Catalog:
    doc = cat.to_json()
    edits = dict(changes)
    doc["offerings"] = [{**o, **edits.get(o["id"], {})} for o in doc["offerings"]
                        if edits.get(o["id"]) != {"removed": True}]
    return build_catalog(doc)


@pytest.fixture()
def stored(tmp_path: Path) -> Path:
    path = tmp_path / "records.sqlite3"
    record_some(path, catalog())
    return path


def test_the_same_policy_and_catalog_move_nothing(stored: Path) -> None:
    report = what_if(stored, policy=admit(policy()))
    assert report["decisions"] == 3 and report["moved"] == 0


def test_a_clause_that_now_rejects_the_winner_is_named(stored: Path) -> None:
    stricter = admit(policy(filters=[[">=", "context_window", 1000],
                                     ["!=", "provider", "mistral"]]))
    report = what_if(stored, policy=stricter)
    assert report["moved"] == 3
    change = report["changes"][0]  # type: ignore[index]
    assert change["old"] == "mistral/nokey" and change["new"] == "bedrock/noadapter"
    assert change["why"].startswith("`/2/2` now rejects `mistral/nokey`: provider `mistral`")
    assert report["pairs"] == [{"from": "mistral/nokey", "to": "bedrock/noadapter",
                                "count": 3}]
    cost = report["est_cost_usd"]
    assert cost["after"] > cost["before"] > 0  # type: ignore[operator]


def test_a_price_change_names_the_rank_key_that_moved_it(stored: Path) -> None:
    dearer = with_offerings(catalog(), ("mistral/nokey", {"input_price": 5.0}))
    report = what_if(stored, catalog=dearer)
    assert report["moved"] == 3
    why = report["changes"][0]["why"]  # type: ignore[index]
    assert why == "`bedrock/noadapter` now ranks first on `asc input_price`: 0.02 against 5"


def test_a_winner_that_left_the_catalog_is_said_so(stored: Path) -> None:
    gone = with_offerings(catalog(), ("mistral/nokey", {"removed": True}))
    report = what_if(stored, catalog=gone)
    assert report["moved"] == 3
    assert report["changes"][0]["why"] == "`mistral/nokey` is not in the new catalog"  # type: ignore[index]


def test_catalog_changes() -> None:
    old = catalog()
    new = with_offerings(old, ("mistral/nokey", {"input_price": 0.02, "capabilities": ["tools"]}),
                         ("openai/mid", {"removed": True}))
    new = build_catalog({**new.to_json(), "offerings": [
        *new.to_json()["offerings"], offering("new/one", "new", "one", 1.0, 1.0)]})
    changes = catalog_changes(old, new)
    assert changes.added == ["new/one"] and changes.removed == ["openai/mid"]
    assert changes.repriced == [("mistral/nokey", "input_price", 0.01, 0.02)]
    assert changes.capabilities == [("mistral/nokey", [], ["streaming"])]
    assert "input_price 0.01 -> 0.02 (+100.0%)" in changes.text()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    cli = Path(sys.executable).with_name("unhardcoded")
    return subprocess.run([str(cli), *args], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ))


def test_diff_and_catalog_diff_on_the_command_line(stored: Path, tmp_path: Path) -> None:
    old_file, new_file = tmp_path / "old.json", tmp_path / "new.json"
    old_file.write_text(json.dumps(catalog().to_json()))
    new_file.write_text(json.dumps(with_offerings(
        catalog(), ("mistral/nokey", {"input_price": 5.0})).to_json()))
    done = _cli("diff", "--catalog", str(new_file), "--records", str(stored))
    assert done.returncode == 0, done.stderr
    assert "3 stored decisions re-decided" in done.stdout and "3 moved" in done.stdout
    assert "mistral/nokey -> bedrock/noadapter" in done.stdout
    assert "now ranks first on `asc input_price`" in done.stdout
    as_json = json.loads(_cli("diff", "--catalog", str(new_file), "--records", str(stored),
                              "--json").stdout)
    assert as_json["moved"] == 3
    changed = _cli("catalog", "diff", str(old_file), str(new_file))
    assert changed.returncode == 0 and "mistral/nokey  input_price 0.01 -> 5" in changed.stdout
    nothing = _cli("diff", "--records", str(stored))
    assert nothing.returncode == 2 and "records.usage" in nothing.stderr
