"""The token bound's cost, µs per 1,000 characters, for English, code, Chinese, emoji and mixed
text (corpus samples cut to 1,000 characters), against the `len()` of the old estimate; and
`parse_request` on a 20,000-character mixed-language request.

Run: python -m pytest benchmarks/test_token_estimate.py --benchmark-only -s
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from router.request.features import parse_request
from router.request.tokens import estimate_tokens

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "data" / "token_corpus.json"
TEXTS = {"english": "en-long", "code": "code-py-test_admission", "chinese": "zh-long",
         "emoji": "emoji-long", "mixed": "mixed-long"}


def sample(sample_id: str) -> dict[str, Any]:
    samples: list[dict[str, Any]] = json.loads(CORPUS.read_text(encoding="utf-8"))["samples"]
    return next(s for s in samples if s["id"] == sample_id)


@pytest.mark.parametrize("kind", sorted(TEXTS))
def test_estimate_per_1000_characters(benchmark: Any, kind: str) -> None:
    text = sample(TEXTS[kind])["text"][:1000]
    assert len(text) == 1000
    tokens = benchmark(estimate_tokens, text)
    assert 0 < tokens <= len(text.encode("utf-8"))


def test_old_estimate_len_per_1000_characters(benchmark: Any) -> None:
    text = sample("en-long")["text"][:1000]
    assert benchmark(len, text) == 1000


def test_parse_request_20000_characters(benchmark: Any) -> None:
    s = sample("mixed-long")
    body = {"messages": [{"role": "system", "content": "Answer in the user's language."},
                         {"role": "user", "content": s["text"]}]}
    features = benchmark(lambda: parse_request(body).features)
    assert features.input_tokens >= max(s["o200k_base"], s["cl100k_base"])
