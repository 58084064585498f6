"""explain: rejected (every failed clause, facts, smallest verified change), admitted, outranked."""

from __future__ import annotations

import json
from typing import Any

import networkx as nx

from router.catalog.offerings import Catalog
from router.cli.main import main
from router.config import RouterConfig
from router.explain.proof import check_proof, to_dot, to_node_link
from router.facade import Router
from tests.conftest import AT, FIXTURES

AT_CONFIG = RouterConfig(clock=lambda: AT)

POLICY: list[Any] = [
    "policy", ["ev_zero"],
    ["filter", [">=", "context_window", 200000], ["when", ["req", "pii"], ["in", "region", ["eu"]]],
     ["<=", "output_price", 5.2]],
    ["rank", ["asc", "est_cost"]], ["select", ["first"], ["cascade", 1]], ["mutate"], ["fallback"]]
REQ = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 100, "labels": ["pii"]}


def test_rejected_with_smallest_change(fixture_catalog: Catalog) -> None:
    router = Router(fixture_catalog, config=AT_CONFIG)
    [e] = router.explain(POLICY, "openai/gpt-4o", REQ)
    assert e.verdict == "rejected"
    assert [(f.pointer, f.reason) for f in e.failed] == [
        ("/2/1", "context_window 128000 < 200000"),
        ("/2/2", "when request label `pii` present: region `global` not in [eu]"),
        ("/2/3", "output_price 10.0 > 5.2"),
    ]
    assert e.changes == (
        "lower the `context_window` floor at /2/1 from 200000 to 128000",
        "add `global` to the `region` list at /2/2/2",
        "raise the `output_price` ceiling at /2/3 from 5.2 to 10.0",
    )
    assert e.change_note is None  # verified: the changed policy admits it
    offering = fixture_catalog.get("openai/gpt-4o")
    assert offering is not None
    for f in e.failed:
        assert check_proof(f.proof, offering, router.derivation(POLICY).policy) == []


def test_failed_clause_path_points_into_when(fixture_catalog: Catalog) -> None:
    [e] = Router(fixture_catalog, config=AT_CONFIG).explain(POLICY, "bedrock/eu/claude-haiku-4-5",
                                                        REQ)
    assert e.verdict == "rejected"
    assert [f.reason for f in e.failed] == ["output_price 5.5 > 5.2"]
    assert e.changes == ("raise the `output_price` ceiling at /2/3 from 5.2 to 5.5",)


def test_selected_and_outranked(fixture_catalog: Catalog) -> None:
    pol = [*POLICY[:2], ["filter"], *POLICY[3:]]
    router = Router(fixture_catalog, config=AT_CONFIG)
    [winner] = router.explain(pol, "anthropic/claude-haiku-4-5", REQ)
    assert winner.verdict == "selected" and winner.rank_position == 1
    [late] = router.explain(pol, "azure/eu/gpt-4o", REQ)
    assert late.verdict == "outranked"
    assert late.winner == "anthropic/claude-haiku-4-5"
    assert late.keys["asc est_cost"] > late.winner_keys["asc est_cost"]


def test_model_name_matches_every_offering(fixture_catalog: Catalog) -> None:
    found = Router(fixture_catalog, config=AT_CONFIG).explain(POLICY, "gpt-4o", REQ)
    assert sorted(e.offering for e in found) == ["azure/eu/gpt-4o", "openai/gpt-4o"]


def test_builtin_failure_has_no_policy_fix(fixture_catalog: Catalog) -> None:
    big = {"messages": [{"role": "user", "content": "x" * 900_000}], "max_tokens": 10}
    pol = [*POLICY[:2], ["filter"], *POLICY[3:]]
    [e] = Router(fixture_catalog, config=AT_CONFIG).explain(pol, "openai/gpt-4o", big)
    assert e.failed[0].pointer == "builtin:context_fits_input"
    assert e.changes == () and e.change_note is not None and "built-in" in e.change_note


def test_proof_exports(fixture_catalog: Catalog) -> None:
    [e] = Router(fixture_catalog, config=AT_CONFIG).explain(POLICY, "openai/gpt-4o", REQ)
    proof = e.failed[1].proof  # the `when` clause: a tree
    data = to_node_link(proof)
    graph = nx.node_link_graph(data, edges="links")
    assert graph.number_of_nodes() >= 5 and nx.is_directed_acyclic_graph(graph)
    dot = to_dot(proof)
    assert dot.startswith("digraph proof {") and "->" in dot and 'a_region' in dot
    text = proof.text()
    assert "/2/2 = F" in text and "/2/2/2 = F" in text


def test_cli_explain_formats(tmp_path: Any, capsys: Any) -> None:
    pol = tmp_path / "p.json"
    pol.write_text(json.dumps(POLICY))
    req = tmp_path / "r.json"
    req.write_text(json.dumps(REQ))
    cat = str(FIXTURES / "catalog.json")
    base = ["explain", "--policy", str(pol), "--request", str(req), "--catalog", cat,
            "--model", "openai/gpt-4o"]
    assert main(base) == 0
    out = capsys.readouterr().out
    assert "REJECTED" in out and "raise the `output_price` ceiling at /2/3" in out
    assert main([*base, "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data[0]["failed"][2]["pointer"] == "/2/3"
    assert main([*base, "--format", "dot"]) == 0
    assert capsys.readouterr().out.count("digraph proof") == 3
