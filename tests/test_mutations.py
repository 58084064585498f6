"""Mutation semantics per hop (spec §7): set/default order, clamp field, est_cost agreement."""

from __future__ import annotations

from typing import Any

import pytest

from router.config import RouterConfig
from router.facade import Router
from tests.dispatch_support import catalog, policy, request


@pytest.fixture(scope="module")
def router() -> Router:
    return Router(catalog(), config=RouterConfig(environ={}))


def calls(router: Router, mutate: list[Any], req: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result = router.route(policy(mutate=mutate, cascade=4), req)
    return {c.offering_id: c.params for c in result.decision.calls}


def test_set_max_tokens_then_clamp_uses_the_set_value(router: Router) -> None:
    got = calls(router, [["set", "max_tokens", 1500], ["clamp_max_tokens"]],
                request(max_tokens=20))
    # limits: cheap 1000, mid 2000, claude 8000
    assert got["openai/cheap"] == {"max_tokens": 1000}
    assert got["openai/mid"] == {"max_tokens": 1500}
    assert got["anthropic/claude"] == {"max_tokens": 1500}


def test_default_max_completion_tokens_with_clamp_writes_one_field(router: Router) -> None:
    got = calls(router, [["default", "max_completion_tokens", 1500], ["clamp_max_tokens"]],
                request())
    assert got["openai/cheap"] == {"max_completion_tokens": 1000}
    assert got["openai/mid"] == {"max_completion_tokens": 1500}


def test_default_never_overrides_the_request(router: Router) -> None:
    got = calls(router, [["default", "temperature", 0.3], ["default", "top_p", 0.9]],
                request(temperature=1.0))
    assert got["openai/cheap"] == {"top_p": 0.9}


def test_set_overrides_the_request_and_the_first_default_wins(router: Router) -> None:
    got = calls(router, [["default", "seed", 1], ["default", "seed", 2],
                         ["set", "temperature", 0.0]], request(temperature=1.0))
    assert got["openai/cheap"] == {"seed": 1, "temperature": 0.0}


def test_est_cost_uses_the_max_output_the_call_is_sent_with(router: Router) -> None:
    pol = policy(mutate=[["set", "max_tokens", 1500], ["clamp_max_tokens"]], cascade=4)
    pol[3] = ["rank", ["asc", "est_cost"]]
    result = router.route(pol, request(max_tokens=20))
    keys = {r.offering_id: r.keys[0] for r in result.decision.ranking}
    tokens = result.decision.context.features.input_tokens
    # cheap: clamped to its 1000 limit; mid: the set 1500
    assert keys["openai/cheap"] == pytest.approx((tokens * 0.1 + 1000 * 0.4) / 1e6)
    assert keys["openai/mid"] == pytest.approx((tokens * 1.0 + 1500 * 4.0) / 1e6)


def test_without_clamp_est_cost_uses_the_ask(router: Router) -> None:
    pol = policy(cascade=4)
    pol[3] = ["rank", ["asc", "est_cost"]]
    result = router.route(pol, request(max_tokens=50_000))
    keys = {r.offering_id: r.keys[0] for r in result.decision.ranking}
    tokens = result.decision.context.features.input_tokens
    assert keys["openai/cheap"] == pytest.approx((tokens * 0.1 + 50_000 * 0.4) / 1e6)


def test_rejections_finished_per_request_name_the_values_compared() -> None:
    """The per-request half of a rejection's proof: the live and request values compared."""
    router = Router(catalog(), config=RouterConfig(environ={"OPENAI_API_KEY": "x"}))
    pol = policy(filters=[["<=", "est_cost", 0.0001]])
    rec = router.route(pol, request(max_tokens=100), router.live()).record()
    by_pointer = {e["pointer"]: e for e in rec["rejected"]["openai/mid"]}
    cost = by_pointer["/2/1"]["finished"]
    assert cost["truth"] == "F" and cost["compared"]["max_output"] == 100
    assert cost["compared"]["input_price"] == 1.0 and cost["compared"]["output_price"] == 4.0
    assert cost["compared"]["est_cost"] == pytest.approx(
        (cost["compared"]["input_tokens"] * 1.0 + 100 * 4.0) / 1e6)
    status = {e["pointer"]: e for e in rec["rejected"]["mistral/nokey"]}
    assert status["builtin:status_available"]["finished"]["compared"] == {
        "status": "no_key", "reason": "no key: set MISTRAL_API_KEY"}
    assert "builtin:status_available" not in by_pointer  # openai has a key
