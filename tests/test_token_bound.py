"""The token estimate is an upper bound of OpenAI's tokenizers on a multilingual corpus.

`tests/data/token_corpus.json` holds each sample's text and its `o200k_base` and `cl100k_base`
counts, measured once with tiktoken (the file says how), so this suite needs no tokenizer.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from router.request.features import parse_request
from router.request.tokens import ESTIMATOR, estimate_tokens

CORPUS = Path(__file__).parent / "data" / "token_corpus.json"
TIGHT = 1.6
ENCODINGS = ("o200k_base", "cl100k_base")


def load() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(CORPUS.read_text(encoding="utf-8"))
    return data


SAMPLES: list[dict[str, Any]] = load()["samples"]
TIGHT_SAMPLES = [s for s in SAMPLES if s["category"] in load()["tight_categories"]]


def test_corpus_covers_the_required_languages_long_and_short() -> None:
    categories = {s["category"] for s in SAMPLES}
    assert {"english", "code", "json", "chinese", "japanese", "korean", "russian", "arabic",
            "hindi", "emoji", "mixed"} <= categories
    lengths = [len(s["text"]) for s in SAMPLES]
    assert min(lengths) <= 10 and max(lengths) >= 40_000
    for s in SAMPLES:  # the stored counts belong to the stored text
        assert s["utf8_bytes"] == len(s["text"].encode("utf-8"))
        assert 0 < s["o200k_base"] <= s["utf8_bytes"] and 0 < s["cl100k_base"] <= s["utf8_bytes"]


@pytest.mark.parametrize("sample", [s for s in SAMPLES if s["bounded"]], ids=lambda s: s["id"])
def test_estimate_is_at_least_both_counts(sample: dict[str, Any]) -> None:
    estimate = estimate_tokens(sample["text"])
    for encoding in ENCODINGS:
        assert estimate >= sample[encoding], (sample["id"], encoding, estimate, sample[encoding])
    assert estimate <= sample["utf8_bytes"]


@pytest.mark.parametrize("sample", TIGHT_SAMPLES, ids=lambda s: s["id"])
def test_estimate_is_within_1_6x_on_english_prose_and_code(sample: dict[str, Any]) -> None:
    estimate = estimate_tokens(sample["text"])
    for encoding in ENCODINGS:
        assert estimate <= TIGHT * sample[encoding], (sample["id"], encoding, estimate)


def test_text_built_to_defeat_the_weights_is_bounded_by_its_bytes_only() -> None:
    """The samples the estimator does not claim: the byte count still bounds them, the
    estimate never exceeds it, and each is undercounted (else it should be claimed)."""
    outside = [s for s in SAMPLES if not s["bounded"]]
    assert {s["id"] for s in outside} == {"ascii-random-words", "ascii-camel", "zh-rare",
                                          "cjk-random", "hangul-random"}
    for s in outside:
        estimate = estimate_tokens(s["text"])
        assert estimate <= s["utf8_bytes"]
        assert max(s[e] for e in ENCODINGS) <= s["utf8_bytes"]
        assert estimate < max(s[e] for e in ENCODINGS)


def test_ratio_table(capsys: pytest.CaptureFixture[str]) -> None:
    """Prints estimate / count per category (min-max over samples); `-s` shows it."""
    ratios: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for s in SAMPLES:
        if s["bounded"]:
            estimate = estimate_tokens(s["text"])
            ratios[s["category"]].append((estimate / s["o200k_base"], estimate / s["cl100k_base"]))
    with capsys.disabled():
        print(f"\n{ESTIMATOR}: estimate / real count, min-max over samples")
        print(f"{'category':22} {'n':>3}  {'o200k_base':>11}  {'cl100k_base':>11}")
        for category, values in sorted(ratios.items()):
            o = [v[0] for v in values]
            c = [v[1] for v in values]
            print(f"{category:22} {len(values):3}  {min(o):4.2f}-{max(o):<6.2f} "
                  f"{min(c):4.2f}-{max(c):.2f}")
    assert all(min(min(v) for v in values) >= 1.0 for values in ratios.values())


def test_edge_cases() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("a") == 1  # never above the byte count
    assert estimate_tokens("\x00\x01\x02") == 3
    assert estimate_tokens("\ud800") == 3  # a lone surrogate is counted, not an error
    assert estimate_tokens("你" * 1000) >= 1000
    assert estimate_tokens("🙂" * 10) <= 40


def test_parse_request_uses_the_bound() -> None:
    """`input_tokens` is the sum of the text estimates plus the message overheads: Chinese
    text is no longer counted at a quarter token per character."""
    text = next(s for s in SAMPLES if s["id"] == "zh-long")
    body = {"messages": [{"role": "user", "content": text["text"]}]}
    tokens = parse_request(body).features.input_tokens
    assert tokens >= max(text[e] for e in ENCODINGS)
    assert tokens > math.ceil(len(text["text"]) / 4) * 3
    tools = [{"type": "function", "function": {"name": "查询", "description": "查询订单" * 50}}]
    with_tools = parse_request({"messages": [{"role": "user", "content": "hi"}], "tools": tools})
    assert with_tools.features.input_tokens >= 200 * 1.8  # the tool text is read unescaped
