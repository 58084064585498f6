"""`DecisionRecord`, the typed decision record: every record the router produces is an instance
of it, and its JSON form is the record itself — on generated decisions, on dry runs, calls,
streams, refusals and a record that hit its limits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from pydantic import ValidationError

from router import DecisionRecord, Router, RouterConfig
from router.cli.main import main
from router.decide.decider import Decider
from router.dispatch.completion import DispatchError
from router.engine.derive import derive
from router.explain.record import to_record
from tests.dispatch_support import (
    ANTHROPIC_KEY,
    OPENAI_KEY,
    Clock,
    environ,
    make_router,
    policy,
    request,
)
from tests.fakes import FakeProvider, status, stream_drop
from tests.strategies import Scenario, scenarios

ROOT = Path(__file__).resolve().parent.parent


def as_json(record: dict[str, Any]) -> Any:
    return json.loads(json.dumps(record))


def round_trip(record: dict[str, Any]) -> DecisionRecord:
    typed = DecisionRecord.of(record)
    assert typed.to_json() == as_json(record)
    return typed


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(scenarios())
def test_generated_decisions_are_typed_records(s: Scenario) -> None:
    decision = Decider(derive(s.policy, s.catalog)).decide(s.features, s.live, s.at)
    for proofs in (True, False):
        typed = round_trip(to_record(decision, "t", full_proofs=proofs))
        assert typed.selected == decision.selected
        assert [r.offering for r in typed.ranking] == list(decision.admissible)


def test_the_readme_example_and_its_typed_fields() -> None:
    policy_text = (ROOT / "examples" / "support-tickets.policy.json").read_text()
    req = json.loads((ROOT / "examples" / "support-ticket.request.json").read_text())
    with Router(config=RouterConfig(records=None)) as router:
        result = router.route(policy_text, req)
        typed = result.record_model()
        assert typed.to_json() == as_json(result.record())
    assert typed.record_version == 1
    assert typed.selected == result.selected
    first = next(iter(typed.rejected.values()))[0]
    assert first.reason and first.stage in ("derive", "decide")


def test_calls_streams_and_refusals_are_typed_records() -> None:
    with FakeProvider(api_key=OPENAI_KEY) as oa, \
            FakeProvider(api_key=ANTHROPIC_KEY, style="anthropic") as an:
        router = make_router(environ(oa.base_url, an.base_url), Clock())
        try:
            oa.script_for("cheap-2026", status(500))
            done = router.complete_sync(policy(), request())
            typed = round_trip(done.record(proofs=True))
            assert typed.attempts is not None and typed.attempts[0].outcome == "error"
            assert typed.served_by == "openai/mid" and typed.usage is not None
            assert done.record_model().to_json() == as_json(done.record())

            oa.script_for("cheap-2026", stream_drop(after_chunks=2))
            stream = router.stream_sync(policy(), request())
            list(stream)
            assert stream.record_model().outcome == "failed"

            oa.script_for("cheap-2026", status(400, message="bad"))
            with pytest.raises(DispatchError) as refused:
                router.complete_sync(policy(), request())
            typed = round_trip(refused.value.record)
            assert typed.error is not None and typed.error.kind == "bad_request"

            with pytest.raises(DispatchError) as nothing:
                router.complete_sync(policy(filters=[["<", "input_price", 0]]), request())
            assert round_trip(nothing.value.record).selected is None
        finally:
            router.close()


def test_a_record_of_another_version_or_shape_is_refused() -> None:
    with Router(config=RouterConfig(records=None)) as router:
        record = router.route(policy(), request()).record(proofs=False)
    with pytest.raises(ValidationError):
        DecisionRecord.of({**record, "record_version": 2})
    with pytest.raises(ValidationError):
        DecisionRecord.of({**record, "surprise": 1})


def test_the_schema_command_prints_the_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "record"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "DecisionRecord"
    assert "record_version" in schema["required"]
