"""`unhardcoded complete` and `unhardcoded catalog discover` against loopback providers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from router.cli.main import main
from router.common.problems import PolicyError
from router.policy.memo import AdmittedPolicies
from tests.dispatch_support import ANTHROPIC_KEY, OPENAI_KEY, catalog, environ, policy, request
from tests.fakes import FakeProvider, ok, status


@pytest.fixture()
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
          ) -> Iterator[tuple[FakeProvider, FakeProvider, dict[str, str]]]:
    with FakeProvider(api_key=OPENAI_KEY, models=["cheap-2026"]) as oa, \
            FakeProvider(api_key=ANTHROPIC_KEY, models=["claude-x-20260101"],
                         style="anthropic") as an:
        for k, v in environ(oa.base_url, an.base_url).items():
            monkeypatch.setenv(k, v)
        for var in ("MISTRAL_API_KEY", "AWS_ACCESS_KEY_ID", "AWS_BEARER_TOKEN_BEDROCK"):
            monkeypatch.delenv(var, raising=False)
        cat = tmp_path / "catalog.json"
        cat.write_text(json.dumps(catalog().to_json()))
        pol = tmp_path / "policy.json"
        pol.write_text(json.dumps(policy(fallback=[["retry", 0, 0]])))
        req = tmp_path / "request.json"
        req.write_text(json.dumps(request(max_tokens=20)))
        yield oa, an, {"catalog": str(cat), "policy": str(pol), "request": str(req)}


def args(files: dict[str, str], *extra: str) -> list[str]:
    return ["complete", "--catalog", files["catalog"], "--policy", files["policy"],
            "--request", files["request"], *extra]


def test_complete_prints_the_answer_and_the_hops(
        setup: Any, capsys: pytest.CaptureFixture[str]) -> None:
    oa, _, files = setup
    oa.script_for("cheap-2026", status(503))
    oa.script_for("mid", ok("the answer", usage=(10, 2)))
    assert main(args(files)) == 0
    out, err = capsys.readouterr()
    assert out.strip() == "the answer"
    assert "served_by openai/mid" in err
    assert "hop 0 openai/cheap retry 0: rate_limit HTTP 503" in err
    assert "hop 1 openai/mid retry 0: ok HTTP 200" in err
    assert OPENAI_KEY not in out + err


def test_complete_json_has_response_and_record(
        setup: Any, capsys: pytest.CaptureFixture[str]) -> None:
    oa, _, files = setup
    oa.script_for("cheap-2026", ok("hi", usage=(10, 2)))
    assert main(args(files, "--json")) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["response"]["choices"][0]["message"]["content"] == "hi"
    assert doc["record"]["served_by"] == "openai/cheap"
    assert doc["record"]["usage"]["prompt_tokens"] == 10


def test_complete_streams_to_stdout(setup: Any, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    oa, _, files = setup
    oa.script_for("cheap-2026", ok("one two three", chunks=3))
    req = tmp_path / "stream.json"
    req.write_text(json.dumps(request(stream=True)))
    files = {**files, "request": str(req)}
    assert main(args(files)) == 0
    out, err = capsys.readouterr()
    assert out.strip() == "one two three"
    assert "served_by openai/cheap" in err


def test_complete_failed_cascade_exits_4_with_every_hop(
        setup: Any, capsys: pytest.CaptureFixture[str]) -> None:
    oa, an, files = setup
    oa.script_for("cheap-2026", status(500))
    oa.script_for("mid", status(500))
    an.script_for("claude-x-20260101", status(500))
    assert main(args(files)) == 4
    err = capsys.readouterr().err
    assert err.startswith("dispatch.cascade_exhausted: every hop failed "
                          "(3 hops: the winner and 2 in the cascade)")
    assert err.count("error (HTTP 500)") == 3


def test_complete_nothing_admissible_exits_3(setup: Any, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    _, _, files = setup
    pol = tmp_path / "none.json"
    pol.write_text(json.dumps(policy(filters=[["in", "provider", ["mistral"]]])))
    assert main(args({**files, "policy": str(pol)})) == 3
    assert "no key: set MISTRAL_API_KEY" in capsys.readouterr().err


def test_complete_bad_request_file_exits_2(setup: Any, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    _, _, files = setup
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"messages": []}))
    assert main(args({**files, "request": str(bad)})) == 2
    problems = json.loads(capsys.readouterr().err)["problems"]
    assert problems[0]["pointer"] == "/messages"


def test_catalog_discover(setup: Any, capsys: pytest.CaptureFixture[str]) -> None:
    _, _, files = setup
    assert main(["catalog", "discover", "--catalog", files["catalog"]]) == 0
    out = capsys.readouterr().out
    assert "openai" in out and "1 offerings entitled, 1 not" in out
    assert "not_entitled openai/mid" in out
    assert main(["catalog", "discover", "--catalog", files["catalog"], "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc["not_entitled"]) == {"openai/mid"}


def test_negative_row_counts_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["catalog", "stats", "--top", "-1"])
    assert info.value.code == 2
    assert "is negative" in capsys.readouterr().err


def test_inline_policies_are_admitted_once_and_refusals_never_memoised() -> None:
    memo = AdmittedPolicies()
    as_policy = memo.admit
    term = policy()
    first = as_policy(term)
    assert as_policy(json.loads(json.dumps(term))) is first
    bad = policy(filters=[[">=", "context", 1]])
    for _ in range(2):
        with pytest.raises(PolicyError):
            as_policy(bad)


def test_provider_error_body_is_shown_in_text_mode(
        setup: Any, capsys: pytest.CaptureFixture[str]) -> None:
    oa, _, files = setup
    oa.script_for("cheap-2026", status(400, message="max_tokens is too large"))
    assert main(args(files)) == 4
    err = capsys.readouterr().err
    assert err.startswith("dispatch.provider_rejected:")
    assert "max_tokens is too large" in err


@pytest.mark.parametrize("value", ["nan", "-1", "0", "inf", "soon"])
def test_discover_timeout_must_be_positive_and_finite(
        value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["catalog", "discover", "--timeout", value])
    assert info.value.code == 2
    assert "--timeout" in capsys.readouterr().err
