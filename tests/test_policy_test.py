"""`unhardcoded policy test`: table-driven policy tests decided by the real router.

Passing and failing suites (exit 0 / 1), the report (text and `--json`) with the expected
against the actual and the `explain` of the offending offering, a refused tests file (exit 2,
every problem), DIR mode, per-case catalogs, overlays, live state and decision time; and the
shipped example tests, whose expectations are checked against the independent oracle.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import router.cli.main as cli_main
from router.catalog.offerings import Catalog
from router.explain.policy_suite import CatalogChoice, load_suite
from router.live.state import LiveState
from router.request.features import RequestFeatures, features_of
from tests.conftest import AT, FIXTURES
from tests.oracle import oracle_decide

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
CATALOG = FIXTURES / "catalog.json"  # six offerings, see tests/fixtures/catalog.json

POLICY: list[Any] = [
    "policy", ["ev_zero"],
    ["filter", [">=", "context_window", 200000], ["when", ["req", "pii"], ["in", "region", ["eu"]]],
     ["<=", "output_price", 10.0]],
    ["rank", ["asc", "est_cost"]], ["select", ["first"], ["cascade", 1]], ["mutate"], ["fallback"]]
HI: dict[str, Any] = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 100}
PII: dict[str, Any] = {**HI, "labels": ["pii"]}
# Over the fixture catalog, for HI: /2/1 strikes openai/gpt-4o (128k) alone, azure/eu/gpt-4o
# (128k, $11 out) with /2/3, mystery/unpriced (32k, no prices) with /2/3 (unknown); the three
# left rank by est_cost: anthropic ($1/$5) < bedrock/eu ($1.1/$5.5) < gemini ($1.25/$10).


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli_main.main(["policy", "test", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def write_suite(tmp_path: Path, cases: list[Any], name: str = "p.tests.json",
                policy: list[Any] | None = None, **top: Any) -> Path:
    (tmp_path / "p.policy.json").write_text(json.dumps(policy or POLICY))
    doc = {"schema": 1, "policy": "p.policy.json", "catalog": str(CATALOG), **top,
           "cases": cases}
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def case(name: str, expect: dict[str, Any], request: dict[str, Any] | None = None,
         **extra: Any) -> dict[str, Any]:
    return {"name": name, "request": request or HI, **extra, "expect": expect}


def problems(err: str) -> list[tuple[str, str]]:
    body = json.loads(err)
    assert body["ok"] is False and body["refused"] == "tests"
    return [(p["code"], p["pointer"]) for p in body["problems"]]


# -- the shipped examples ---------------------------------------------------------------------


def test_the_example_tests_pass(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, str(EXAMPLES))
    assert code == 0, out + err
    lines = out.splitlines()
    assert lines[0].startswith(f"{EXAMPLES / 'support-tickets.tests.json'}   policy ")
    assert sum(line.startswith("  ok    ") for line in lines) == 5
    assert lines[-1] == "1 file, 5 cases: 5 passed, 0 failed"


def test_the_example_expectations_follow_from_the_spec() -> None:
    """Every expectation of the shipped tests holds in the independent oracle's decision over
    the embedded catalog: they are what the policy means, not a copy of the router's output."""
    catalogs: dict[CatalogChoice, Catalog] = {}
    suite = load_suite(EXAMPLES / "support-tickets.tests.json", CatalogChoice(), catalogs)
    catalog = catalogs[CatalogChoice()]
    assert len(suite.cases) == 5
    for c in suite.cases:
        features = (c.request if isinstance(c.request, RequestFeatures)
                    else features_of(c.request))
        d = oracle_decide(suite.policy, catalog, features, c.live or LiveState.not_consulted(),
                          AT)
        e = c.expect
        assert not e.has_winner or d["selected"] == e.winner, c.name
        assert e.cascade is None or d["cascade"] == list(e.cascade), c.name
        assert all(oid in d["admissible"] for oid in e.admitted), c.name
        for r in e.rejected:
            assert r.met(d["rejected"].get(r.offering, [])), (c.name, r)
        if e.nothing_admissible is not None:
            assert (d["selected"] is None) == e.nothing_admissible, c.name
        if "pii" in features.labels:  # `pii` keeps every admissible offering in the EU
            assert {catalog.get(i).region for i in d["admissible"]} <= {"eu"}  # type: ignore[union-attr]


# -- passing and failing suites ---------------------------------------------------------------


def test_a_passing_suite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_suite(tmp_path, [
        case("plain: cheapest of the three that pass", {
            "winner": "anthropic/claude-haiku-4-5", "cascade": ["bedrock/eu/claude-haiku-4-5"],
            "admitted": ["gemini/gemini-2.5-pro"],
            "rejected": ["mystery/unpriced", {"id": "openai/gpt-4o", "by": "/2/1", "only": True},
                         {"id": "azure/eu/gpt-4o", "by": "/2/3"}]}),
        case("pii: only the EU haiku", {"winner": "bedrock/eu/claude-haiku-4-5", "cascade": [],
                                         "rejected": [{"id": "anthropic/claude-haiku-4-5",
                                                       "by": "/2/2", "only": True}]}, PII),
        {"name": "a long thread fits only gemini", "features": {"input_tokens": 300000},
         "expect": {"winner": "gemini/gemini-2.5-pro", "nothing_admissible": False}},
    ])
    code, out, err = run(capsys, str(path))
    assert (code, err) == (0, "")
    assert out.splitlines()[1:] == [
        "  ok    plain: cheapest of the three that pass",
        "  ok    pii: only the EU haiku",
        "  ok    a long thread fits only gemini",
        "1 file, 3 cases: 3 passed, 0 failed",
    ]


def test_a_failing_suite_prints_expected_actual_and_explain(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_suite(tmp_path, [
        case("passes", {"winner": "anthropic/claude-haiku-4-5"}),
        case("rejected winner", {"winner": "openai/gpt-4o"}),
        case("outranked winner", {"winner": "gemini/gemini-2.5-pro"}),
        case("wrong rejections", {"rejected": [
            {"id": "anthropic/claude-haiku-4-5", "by": "/2/3"},
            {"id": "azure/eu/gpt-4o", "by": "/2/1", "only": True}]}),
        case("nothing", {"nothing_admissible": True}),
    ])
    code, out, _ = run(capsys, str(path))
    assert code == 1
    assert "  ok    passes" in out and out.count("  FAIL  ") == 4
    assert out.splitlines()[-1] == "1 file, 5 cases: 1 passed, 4 failed"
    # expected against actual, with the pointer of the expectation
    assert ("expected winner `openai/gpt-4o`, got `anthropic/claude-haiku-4-5`   "
            "(/cases/1/expect/winner)") in out
    assert ("decided over " + str(CATALOG) + ": winner anthropic/claude-haiku-4-5, cascade "
            "[bedrock/eu/claude-haiku-4-5], 3 admissible") in out
    # the explain of the offending offering: why rejected, and the smallest change
    assert "openai/gpt-4o: REJECTED" in out
    assert "context_window 128000 < 200000   [derive]" in out
    assert "lower the `context_window` floor at /2/1 from 200000 to 128000" in out
    # ... why outranked: its rank keys against the winner's
    assert "gemini/gemini-2.5-pro: OUTRANKED" in out
    assert "rank position 3" in out and "winner anthropic/claude-haiku-4-5" in out
    # ... why admitted
    assert ("expected `anthropic/claude-haiku-4-5` rejected by /2/3, but it is admitted "
            "(rank 1 of 3, the winner)") in out
    assert "anthropic/claude-haiku-4-5: SELECTED" in out
    assert "✓ /2/3: output_price 5.0 <= 10" in out
    assert ("expected `azure/eu/gpt-4o` rejected by /2/1 alone, but it is rejected by "
            "/2/1, /2/3") in out
    assert ("expected nothing admissible, but 3 offerings are; the winner is "
            "`anthropic/claude-haiku-4-5`") in out


def test_the_json_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_suite(tmp_path, [
        case("passes", {"winner": "anthropic/claude-haiku-4-5"}),
        case("fails", {"cascade": ["gemini/gemini-2.5-pro"], "admitted": ["openai/gpt-4o"],
                       "rejected": [{"id": "azure/eu/gpt-4o", "by": "/2/2"}]}),
    ])
    code, out, _ = run(capsys, str(path), "--json")
    assert code == 1
    report = json.loads(out)
    assert {k: report[k] for k in ("ok", "cases", "passed", "failed")} == {
        "ok": False, "cases": 2, "passed": 1, "failed": 1}
    [f] = report["files"]
    assert f["file"] == str(path) and f["policy"] == str(tmp_path / "p.policy.json")
    assert len(f["policy_hash"]) == 64 and (f["passed"], f["failed"]) == (1, 1)
    ok, bad = f["cases"]
    assert ok == {"name": "passes", "pointer": "/cases/0", "ok": True, "catalog": str(CATALOG),
                  "actual": {"winner": "anthropic/claude-haiku-4-5",
                             "cascade": ["bedrock/eu/claude-haiku-4-5"], "admissible": 3},
                  "failures": [], "explain": []}
    assert bad["failures"] == [
        {"expectation": "cascade", "pointer": "/cases/1/expect/cascade",
         "message": "expected cascade [gemini/gemini-2.5-pro], got [bedrock/eu/claude-haiku-4-5]",
         "expected": ["gemini/gemini-2.5-pro"], "actual": ["bedrock/eu/claude-haiku-4-5"],
         "offering": "gemini/gemini-2.5-pro"},
        {"expectation": "admitted", "pointer": "/cases/1/expect/admitted/0",
         "message": "expected `openai/gpt-4o` admitted, but it is rejected by /2/1",
         "expected": "admitted", "actual": ["/2/1"], "offering": "openai/gpt-4o"},
        {"expectation": "rejected", "pointer": "/cases/1/expect/rejected/0",
         "message": "expected `azure/eu/gpt-4o` rejected by /2/2, but it is rejected by /2/1, "
                    "/2/3",
         "expected": {"by": "/2/2", "only": False}, "actual": ["/2/1", "/2/3"],
         "offering": "azure/eu/gpt-4o"},
    ]
    assert [(e["offering"], e["verdict"]) for e in bad["explain"]] == [
        ("gemini/gemini-2.5-pro", "outranked"), ("openai/gpt-4o", "rejected"),
        ("azure/eu/gpt-4o", "rejected")]
    assert bad["explain"][1]["smallest_change"] == [
        "lower the `context_window` floor at /2/1 from 200000 to 128000"]


# -- what a case may set: features, live state, catalogs, overlays, time ----------------------


def test_a_real_long_request_is_struck_by_the_builtin(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A request body over 200,000 tokens (its estimate; each `0 ` is at least a token per
    byte), not features: the 200k windows pass /2/1 and fail only the built-in."""
    long = {"messages": [{"role": "user", "content": "0 " * 110_000}], "max_tokens": 100}
    path = write_suite(tmp_path, [case("long", {
        "winner": "gemini/gemini-2.5-pro", "cascade": [],
        "rejected": [{"id": "anthropic/claude-haiku-4-5", "by": "builtin:context_fits_input",
                      "only": True}]}, long)])
    code, out, _ = run(capsys, str(path))
    assert code == 0, out


def test_live_state_overlays_and_catalog_choice(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    overlay = tmp_path / "ops.json"
    overlay.write_text(json.dumps({"schema": 1, "disable": ["anthropic/claude-haiku-4-5"]}))
    path = write_suite(tmp_path, [
        case("no key for the winner", {
            "winner": "bedrock/eu/claude-haiku-4-5", "cascade": ["gemini/gemini-2.5-pro"],
            "rejected": [{"id": "anthropic/claude-haiku-4-5", "by": "builtin:status_available",
                          "only": True}]},
             live={"anthropic/claude-haiku-4-5": {"status": "no_key",
                                                  "reason": "no key: set ANTHROPIC_API_KEY"}}),
        case("disabled by this case's overlay", {
            "winner": "bedrock/eu/claude-haiku-4-5",
            "rejected": [{"id": "anthropic/claude-haiku-4-5", "by": "builtin:status_available"}]},
             overlays=["ops.json"]),
        case("the file's catalog, no overlay", {"winner": "anthropic/claude-haiku-4-5"}),
    ])
    code, out, _ = run(capsys, str(path))
    assert code == 0, out
    # --catalog / --overlay apply to files and cases that name no catalog
    doc = json.loads(path.read_text())
    del doc["catalog"]
    path.write_text(json.dumps(doc))
    code, out, _ = run(capsys, str(path), "--catalog", str(CATALOG))
    assert code == 0, out
    code, out, _ = run(capsys, str(path), "--catalog", str(CATALOG), "--overlay", str(overlay))
    assert code == 1  # the third case now decides with the winner disabled
    assert ("expected winner `anthropic/claude-haiku-4-5`, got `bedrock/eu/claude-haiku-4-5`"
            in out)
    assert f"decided over {CATALOG} + {overlay}: winner bedrock/eu/claude-haiku-4-5" in out


def test_the_decision_time(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`at` fixes the time `deprecated` is judged at (openai/gpt-4o: from 2027-01-14)."""
    policy = ["policy", ["ev_zero"], ["filter", ["==", "deprecated", False]],
              ["rank", ["asc", "est_cost"]], ["select", ["first"]], ["mutate"], ["fallback"]]
    path = write_suite(tmp_path, [
        case("before", {"admitted": ["openai/gpt-4o"]}),
        case("after", {"rejected": [{"id": "openai/gpt-4o", "by": "/2/1"}]},
             at="2027-01-14T00:00:00Z"),
    ], policy=policy, at="2027-01-13")
    code, out, _ = run(capsys, str(path))
    assert code == 0, out


# -- directories ------------------------------------------------------------------------------


def test_a_directory_runs_every_tests_file(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    write_suite(tmp_path, [case("a", {"winner": "anthropic/claude-haiku-4-5"})], "a.tests.json")
    write_suite(tmp_path, [case("b", {"winner": "openai/gpt-4o"})], "b.tests.json")
    (tmp_path / "c.json").write_text("not a tests file, not read")
    code, out, _ = run(capsys, str(tmp_path))
    assert code == 1
    assert f"{tmp_path / 'a.tests.json'}   policy" in out
    assert f"{tmp_path / 'b.tests.json'}   policy" in out
    assert out.splitlines()[-1] == "2 files, 2 cases: 1 passed, 1 failed"
    (tmp_path / "b.tests.json").unlink()
    assert run(capsys, str(tmp_path))[0] == 0


def test_an_empty_directory_is_refused(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, str(tmp_path))
    assert code == 2
    assert problems(err) == [("tests.no_files", "")]


# -- refused tests files ----------------------------------------------------------------------


def test_a_bad_tests_file_is_refused_with_every_problem(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_suite(tmp_path, [
        case("dup", {}),
        case("dup", {"winner": "anthropic/claude-haiku", "nothing_admissible": True,
                     "cascade": ["openai/gpt-4o", "openai/gpt-4o"],
                     "rejected": [{"id": "openai/gpt-4o", "by": "/2/9"},
                                  {"id": "openai/gpt-4o", "by": "/2/2/2"},
                                  {"id": "openai/gpt-4o", "by": "builtin:context_fits"},
                                  {"id": "openai/gpt-4o", "only": True}, 5]},
             {"messages": []}),
        {"name": "features", "features": {"input_tokens": -1, "needs": ["vison"],
                                          "labels": ["p ii"], "tokens": 1},
         "live": {"nope/x": {"status": "nokey", "error_rate": 2}},
         "at": "yesterday", "expect": {"admitted": ["gemini/gemini-2.5-pro"], "winner": None}},
        {"name": "both", "request": HI, "features": {"input_tokens": 1},
         "expect": {"winner": "openai/gpt-4o", "rejected": ["openai/gpt-4o"]}},
        {"name": "missing catalog", "request": HI, "catalog": "nope.json",
         "expect": {"winner": None}},
        7,
    ], schema=2, extra=True)
    code, out, err = run(capsys, str(path))
    assert (code, out) == (2, "")
    assert problems(err) == [
        ("tests.no_expectation", "/cases/0/expect"),
        ("tests.contradiction", "/cases/1/expect/cascade/0"),
        ("tests.duplicate", "/cases/1/expect/cascade/1"),
        ("tests.contradiction", "/cases/1/expect/nothing_admissible"),
        ("tests.bad_pointer", "/cases/1/expect/rejected/0/by"),
        ("tests.bad_pointer", "/cases/1/expect/rejected/1/by"),
        ("tests.bad_pointer", "/cases/1/expect/rejected/2/by"),
        ("tests.missing_field", "/cases/1/expect/rejected/3"),
        ("tests.type", "/cases/1/expect/rejected/4"),
        ("tests.unknown_offering", "/cases/1/expect/winner"),
        ("tests.duplicate", "/cases/1/name"),
        ("request.invalid", "/cases/1/request/messages"),
        ("tests.bad_value", "/cases/2/at"),
        ("tests.contradiction", "/cases/2/expect/winner"),
        ("tests.bad_value", "/cases/2/features/input_tokens"),
        ("tests.bad_value", "/cases/2/features/labels/0"),
        ("tests.bad_value", "/cases/2/features/needs/0"),
        ("tests.unknown_field", "/cases/2/features/tokens"),
        ("tests.unknown_offering", "/cases/2/live/nope~1x"),
        ("tests.bad_value", "/cases/2/live/nope~1x/error_rate"),
        ("tests.bad_value", "/cases/2/live/nope~1x/status"),
        ("tests.conflict", "/cases/3"),
        ("tests.contradiction", "/cases/3/expect/winner"),
        ("tests.bad_catalog", "/cases/4/catalog"),
        ("tests.not_an_object", "/cases/5"),
        ("tests.unknown_field", "/extra"),
        ("tests.schema", "/schema"),
    ]
    body = {(p["code"], p["pointer"]): p for p in json.loads(err)["problems"]}
    assert body[("tests.unknown_offering", "/cases/1/expect/winner")]["hint"] == \
        "did you mean `anthropic/claude-haiku-4-5`?"
    assert body[("tests.bad_pointer", "/cases/1/expect/rejected/0/by")]["hint"] == \
        "its clauses are /2/1 to /2/3"
    assert body[("tests.bad_pointer", "/cases/1/expect/rejected/1/by")]["hint"] == \
        "rejections are reported by the top-level clause: use `/2/2`"
    assert body[("tests.bad_value", "/cases/2/features/needs/0")]["hint"] == \
        "did you mean `vision`?"
    assert body[("tests.bad_value", "/cases/2/live/nope~1x/status")]["hint"] == \
        "did you mean `no_key`?"
    assert all(p["message"].startswith(f"`{path}`: ") for p in json.loads(err)["problems"])


def test_the_policy_and_catalog_it_names_are_checked(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad_policy = [*POLICY[:2], ["filter", [">=", "context", 1]], *POLICY[3:]]
    path = write_suite(tmp_path, [case("a", {"winner": None})], policy=bad_policy)
    code, _, err = run(capsys, str(path))
    assert code == 2
    [p] = json.loads(err)["problems"]
    assert (p["code"], p["pointer"]) == ("tests.bad_policy", "/policy")
    assert "policy.unknown_attribute at /2/1/1: unknown attribute `context`" in p["message"]
    assert p["hint"] == "did you mean `context_window`?"
    (tmp_path / "bad.catalog.json").write_text('{"schema": 1, "offerings": [{"id": "x"}]}')
    path = write_suite(tmp_path, [case("a", {"winner": None})], catalog="bad.catalog.json")
    code, _, err = run(capsys, str(path))
    assert code == 2
    assert {(p["code"], p["pointer"]) for p in json.loads(err)["problems"]} == {
        ("tests.bad_catalog", "/catalog")}


@pytest.mark.parametrize(("text", "code"), [
    ('{"schema": 1, "schema": 1}', "tests.invalid_json"),
    ("[1, NaN]", "tests.invalid_json"),
    ("[" * 80 + "]" * 80, "tests.too_deep"),
    ('["a tests file is an object"]', "tests.not_an_object"),
    ('{"schema": 1, "policy": "p.policy.json", "cases": []}', "tests.no_cases"),
])
def test_unreadable_tests_files(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str,
                                code: str) -> None:
    (tmp_path / "p.policy.json").write_text(json.dumps(POLICY))
    path = tmp_path / "t.tests.json"
    path.write_text(text)
    status, _, err = run(capsys, str(path))
    assert status == 2
    assert [c for c, _ in problems(err)] == [code]


def test_sizes_are_bounded(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_suite(tmp_path, [case(f"c{i}", {"winner": None}) for i in range(1001)])
    code, _, err = run(capsys, str(path))
    assert code == 2
    assert problems(err) == [("tests.too_large", "/cases")]
    code, _, err = run(capsys, str(tmp_path / "missing.tests.json"))
    assert code == 2 and problems(err) == [("tests.unreadable", "")]
