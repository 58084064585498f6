"""Helpers for the records tests: decisions from scenarios, a store in a temp file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from router.decide.decider import Decider, Decision
from router.engine.derive import derive
from router.explain.record import to_record
from router.records import Pending, RecordWriter, SqliteStore
from tests.strategies import Scenario


def decided(s: Scenario) -> Decision:
    return Decider(derive(s.policy, s.catalog)).decide(s.features, s.live, s.at)


def live_record(p: Pending, proofs: bool = True) -> dict[str, Any]:
    """What the in-memory decision's record is, as JSON data."""
    record = to_record(p.decision, p.trace_id, full_proofs=proofs, dispatch=p.dispatch,
                       config_hash=p.config_hash)
    return json.loads(json.dumps(record))  # type: ignore[no-any-return]


def writer(path: Path, key: bytes | None = None) -> RecordWriter:
    return RecordWriter(SqliteStore(path), key)
