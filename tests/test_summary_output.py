"""The default human output: a summary that fits a screen (golden), `--all` for every line,
colours only on a terminal and never with NO_COLOR."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from router import Router, RouterConfig, build_catalog
from router.cli.main import main
from router.cli.style import Style, style_for
from router.cli.summary import decision_summary

GOLDEN = Path(__file__).parent / "data" / "summary.golden.txt"

# Providers this router has adapters for, so that dry runs admit them (uncallable ones are
# rejected as `unsupported`).
PROVIDERS = {"alpha": "mistral", "beta": "deepseek", "gamma": "groq"}


def offering(oid: str, region: str, ctx: int | None, out_price: float, **extra: Any
             ) -> dict[str, Any]:
    provider = PROVIDERS.get(oid.split("/")[0], "openai")
    o = {"id": oid, "model": oid.split("/")[-1], "provider": provider,
         "region": region, "max_output_tokens": 4096, "input_price": out_price / 4,
         "output_price": out_price, "capabilities": ["tools"], **extra}
    if ctx is not None:
        o["context_window"] = ctx
    return o


OFFERINGS = [
    offering("alpha/eu/big", "eu", 400_000, 8.0),
    offering("alpha/eu/small", "eu", 100_000, 1.0),
    offering("alpha/us/big", "us", 400_000, 6.0),
    offering("beta/eu/pricey", "eu", 300_000, 30.0),
    offering("beta/eu/mid", "eu", 250_000, 4.0),
    offering("beta/eu/cheap", "eu", 250_000, 2.0),
    offering("gamma/eu/nowindow", "eu", None, 0.5),
    offering("gamma/us/tiny", "us", 8_000, 0.2),
]
POLICY = ["policy", ["ev_zero"],
          ["filter", [">=", "context_window", 200000],
           ["when", ["req", "pii"], ["in", "region", ["eu"]]],
           ["<=", "output_price", 10.0]],
          ["rank", ["asc", "output_price"]], ["select", ["first"], ["cascade", 1]],
          ["mutate"], ["fallback"]]
REQUEST = {"messages": [{"role": "user", "content": "hello"}], "labels": ["pii"]}


@pytest.fixture()
def files(tmp_path: Path) -> list[str]:
    cat = tmp_path / "catalog.json"
    cat.write_text(json.dumps({"schema": 1, "source": "summary test", "offerings": OFFERINGS}))
    pol = tmp_path / "policy.json"
    pol.write_text(json.dumps(POLICY))
    req = tmp_path / "request.json"
    req.write_text(json.dumps(REQUEST))
    return ["--policy", str(pol), "--request", str(req), "--catalog", str(cat), "--no-record"]


def test_route_prints_the_golden_summary(files: list[str],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["route", *files]) == 0
    out = capsys.readouterr().out
    assert "\033[" not in out  # not a terminal: plain text
    assert out.replace(files[5], "CATALOG") == GOLDEN.read_text("utf-8")


def test_all_prints_every_offering(files: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["route", *files, "--all"]) == 0
    out = capsys.readouterr().out
    for o in OFFERINGS:
        assert o["id"] in out
    assert "REJECTED (5)" in out


def test_colours_only_on_a_terminal_without_no_color(files: list[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert style_for(Tty()).color and not style_for(io.StringIO()).color
    monkeypatch.setenv("NO_COLOR", "1")
    assert not style_for(Tty()).color
    catalog = build_catalog({"schema": 1, "source": "t", "offerings": OFFERINGS})
    with Router(catalog, config=RouterConfig(records=None)) as router:
        result = router.route(POLICY, REQUEST)
    coloured = decision_summary(result, "t", Style(color=True, width=60))
    assert "\033[1;32mWINNER\033[0m" in coloured
    visible = [re.sub(r"\033\[[0-9;]*m", "", line) for line in coloured.splitlines()]
    assert max(len(line) for line in visible) == 60  # long lines clipped to the width


def test_an_unknown_context_window_is_named_unknown(files: list[str],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["route", *files, "--all"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if "gamma/eu/nowindow" in x)
    assert "context_window unknown" in line and "``" not in line


def test_explain_of_many_offerings_lists_them_then_details_three(
        files: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    many = [offering(f"p{i}/eu/same", "eu", 100_000, 1.0) | {"model": "same"} for i in range(6)]
    cat = tmp_path / "many.json"
    cat.write_text(json.dumps({"schema": 1, "source": "t", "offerings": many}))
    args = ["explain", "--policy", files[1], "--model", "same", "--catalog", str(cat)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "6 offerings of `same`:" in out and "--all for every one" in out
    assert out.count(": REJECTED") == 3
    assert main([*args, "--all"]) == 0
    assert capsys.readouterr().out.count(": REJECTED") == 6
