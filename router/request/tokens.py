"""An upper bound of a text's token count, without a tokenizer (estimator `utf8-class-bound/1`).

The router admits an offering only if its `context_window` holds the request's `input_tokens`,
so that number must never be below what the provider's tokenizer counts. `estimate_tokens` is
measured to be at or above the count of OpenAI's `o200k_base` and `cl100k_base` on every sample
of `tests/data/token_corpus.json` (English prose, source code, JSON, Chinese, Cantonese, classical
Chinese, Japanese, Korean, Russian, Arabic, Hindi, Hebrew, Greek, Thai, Tamil, Telugu, Georgian,
Amharic, emoji sequences, mixed chat, base64, hex, UUIDs, numbers, logs, URLs; 1 character to
46,000), and within 1.6x of them on English prose and code.

How it counts. The text is encoded as UTF-8 and each byte mapped to a class with
`bytes.translate` (continuation bytes dropped, so each non-ASCII character leaves one class
symbol); the features are then counted with `bytes.count`. No Python loop runs over characters.

- A byte-level BPE token is at least one byte long, so the UTF-8 byte count bounds every such
  tokenizer (both measured ones, and the Llama 3, Qwen and GPT-2 families). The result is never
  above it: `min(estimate, bytes)`.
- ASCII text follows the tokenizers' pre-tokenisation: a word (a run of letters, with the space
  before it) is at least one token, digits go in groups of up to three (and a space before a
  number is a token of its own), punctuation runs and line breaks are tokens. So the estimate
  charges per letter run (1.05), per 4 and per 12 letters of a run (0.32 and 1.55: long and
  rare words split), per uppercase letter (0.11) and lower-to-upper change (0.5: `o200k_base`
  splits camelCase, capitals merge less), per digit run (2.55) and digit (0.17), per
  punctuation run (0.78) and character (0.07), per line-break run (1.5), per run of two or
  more spaces (0.67), per whitespace character (0.03) and per control character (1: never
  merged). Measured on the corpus (estimate / count): English prose 1.17-1.56 for both
  encodings, code 1.11-1.58 (`o200k_base`) and 1.12-1.60 (`cl100k_base`), JSON 1.10-1.68.
  On 693 further samples not used for the corpus (this repository's code and docs, 80 modules
  of the standard library, Debian licence and README files) the estimate stayed at or above both
  counts, at 0.73-1.60 for code, except for `this.py`, which is ROT13 (random-letter) text.
- Other characters are charged per character by script, from the UTF-8 lead byte: the smallest
  weight that covers every corpus sample of the script with a 10 % margin, capped at the
  character's byte count. Cyrillic 1.05, Arabic 1.05, Greek 1.15, Hebrew/Armenian 1.3, other
  Latin letters 1.2, Devanagari 1.45, other Indic scripts and Thai 2.25, CJK ideographs 1.8,
  kana and CJK punctuation 1.8, Hangul 2.05, general punctuation and symbols (U+2000-U+2FFF)
  2.3; at the byte count (never tighter): Latin-1 symbols and C1 controls 2, combining marks
  2, U+1000-U+1FFF (Georgian, Ethiopic, Khmer, Vietnamese letters...) 3, private use and
  fullwidth forms 3, and everything outside the Basic Multilingual Plane (emoji) 4.

Measured on the corpus for other scripts (estimate / count, `o200k_base` and `cl100k_base`):
Chinese 1.49-3.25 and 1.10-2.25, Japanese 1.61-2.92 and 1.15-1.91, Korean 1.48-3.45 and
1.11-1.82, Russian 2.33-4.57 and 1.32-2.22, Arabic 1.63-3.33 and 1.13-1.28, Hindi 3.16-4.14
and 1.13-1.20, emoji 1.69-4.00 and 1.28-2.00, mixed 1.48-3.82 and 1.20-1.90. The bound must
hold for both encodings, so it follows `cl100k_base`, which needs 1.5-6x the tokens of
`o200k_base` outside English.

What it does not bound. The weights are set from natural text. Text built to defeat them can
be counted higher: random lowercase letters (`xqzvbk…`, 2.3x the estimate), alternating case
(`XyXy…`, 1.5x), random code points of a whole script block (random CJK ideographs 1.3x, random
Hangul syllables 1.3x, a list of rare ideographs 1.2x). For such text only the byte count,
which `estimate_tokens` caps at, is a bound. The weights were checked against two OpenAI
tokenizers only; other providers' tokenizers (Anthropic, Google, Mistral) were not measured.

Cost: 15-24 µs per 1,000 characters (English 15, code 24, Chinese 20, emoji 14, mixed 22: the
minimum of `benchmarks/test_token_estimate.py` on the 2-core machine, under load), against
0.05 µs for the `len()` it replaces; a little over a tokenizer's budget for code.
"""

from __future__ import annotations

import math
import string
from typing import Final

ESTIMATOR: Final = "utf8-class-bound/1"


def _table(mapping: dict[int, int], default: int) -> bytes:
    return bytes(mapping.get(i, default) for i in range(256))


def _ascii_class(i: int) -> bytes:
    c = chr(i)
    if c in string.ascii_lowercase:
        return b"a"
    if c in string.ascii_uppercase:
        return b"A"
    if c in string.digits:
        return b"0"
    if c in " \t":
        return b" "
    if c in "\n\r":
        return b"\n"
    if i < 32 or i == 127:
        return b"c"
    return b"."


# Non-ASCII classes by UTF-8 lead byte: (first lead, last lead, tokens per character).
_SCRIPTS: Final = (
    (0xC2, 0xC2, 2.0),   # U+0080-00BF: C1 controls, Latin-1 symbols (byte count)
    (0xC3, 0xCB, 1.2),   # U+00C0-02FF: accented Latin letters, IPA, modifier letters
    (0xCC, 0xCD, 2.0),   # U+0300-037F: combining marks (byte count)
    (0xCE, 0xCF, 1.15),  # Greek, Coptic
    (0xD0, 0xD4, 1.05),  # Cyrillic
    (0xD5, 0xD7, 1.3),   # Armenian, Hebrew
    (0xD8, 0xDF, 1.05),  # Arabic, Syriac, Thaana, N'Ko
    (0xE0, 0xE0, 2.25),  # U+0800-0FFF: Indic scripts, Thai, Lao, Tibetan (Devanagari: below)
    (0xE1, 0xE1, 3.0),   # U+1000-1FFF: Myanmar, Georgian, Ethiopic, Khmer, Latin extended (bytes)
    (0xE2, 0xE2, 2.3),   # U+2000-2FFF: general punctuation, symbols, arrows, box drawing
    (0xE3, 0xE3, 1.8),   # U+3000-3FFF: CJK punctuation, kana
    (0xE4, 0xE9, 1.8),   # U+4000-9FFF: CJK ideographs
    (0xEA, 0xED, 2.05),  # U+A000-DFFF: Hangul syllables
    (0xEE, 0xEF, 3.0),   # U+E000-FFFF: private use, compatibility and fullwidth forms (bytes)
    (0xF0, 0xF4, 4.0),   # outside the BMP: emoji, rare ideographs (byte count)
)
_DEVANAGARI_EXTRA: Final = 1.45 - 2.25  # Devanagari (U+0900-097F) is cheaper than U+0800-0FFF
# Scripts of the same weight share one class symbol (fewer counts): 0x80 + index of the weight.
_SCRIPT_WEIGHTS: Final = tuple(sorted({weight for _, _, weight in _SCRIPTS}))
_SCRIPT_SYMBOLS: Final = tuple(bytes([0x80 + k]) for k in range(len(_SCRIPT_WEIGHTS)))

_ascii = {i: _ascii_class(i)[0] for i in range(128)}
_classes = dict(_ascii)
for _first, _last, _weight in _SCRIPTS:
    _classes.update({b: 0x80 + _SCRIPT_WEIGHTS.index(_weight) for b in range(_first, _last + 1)})
_CLASS: Final = _table(_classes, 0xFF)  # 0xC0, 0xC1, 0xF5-0xFF never start a UTF-8 character
_CONTINUATION: Final = bytes(range(0x80, 0xC0))
# Views of the class string (one symbol per character) for counting runs: the class of
# interest is kept, every other symbol becomes `_`.
_LETTER: Final = _table({ord("a"): ord("a"), ord("A"): ord("a")}, ord("_"))
_DIGIT: Final = _table({ord("0"): ord("0")}, ord("_"))
_PUNCT: Final = _table({ord("."): ord(".")}, ord("_"))
_NEWLINE: Final = _table({ord("\n"): ord("\n")}, ord("_"))
_SPACE: Final = _table({ord(" "): ord(" ")}, ord("_"))

# ASCII weights (tokens per occurrence; see the module docstring).
_WORD, _LETTERS_4, _LETTERS_12, _UPPER, _CAMEL = 1.05, 0.32, 1.55, 0.11, 0.5
_DIGIT_RUN, _DIGITS = 2.55, 0.17
_PUNCT_RUN, _PUNCTS = 0.78, 0.07
_LINE_BREAK_RUN, _SPACE_RUN, _WHITESPACE, _CONTROL = 1.5, 0.67, 0.03, 1.0


def _runs(classes: bytes, view: bytes, end: bytes) -> int:
    """How many runs the class string holds of the symbol that `end` (that symbol, or two of
    it, then `_`) closes. Counting run ends rather than starts is about twice as fast: the
    search skips ahead on the frequent `_`."""
    mapped = classes.translate(view)
    return mapped.count(end) + mapped.endswith(end[:-1])


def estimate_tokens(text: str) -> int:
    """An upper bound of the tokens `text` costs (see the module docstring for how far it holds);
    never above its UTF-8 byte count."""
    if not text:
        return 0
    data = text.encode("utf-8", "surrogatepass")
    classes = data.translate(_CLASS, _CONTINUATION)  # one symbol per character
    letters = classes.translate(_LETTER)
    digits = classes.count(b"0")
    puncts = classes.count(b".")
    newlines = classes.count(b"\n")
    spaces = classes.count(b" ")
    estimate = (
        _WORD * (letters.count(b"a_") + letters.endswith(b"a"))
        + _LETTERS_4 * letters.count(b"aaaa")
        + _LETTERS_12 * letters.count(b"aaaaaaaaaaaa")
        + _DIGITS * digits
        + _PUNCTS * puncts
        + _WHITESPACE * (spaces + newlines)
        + _CONTROL * classes.count(b"c")
    )
    uppers = classes.count(b"A")
    if uppers:
        estimate += _UPPER * uppers + _CAMEL * classes.count(b"aA")
    if digits:
        estimate += _DIGIT_RUN * _runs(classes, _DIGIT, b"0_")
    if puncts:
        estimate += _PUNCT_RUN * _runs(classes, _PUNCT, b"._")
    if newlines:
        estimate += _LINE_BREAK_RUN * _runs(classes, _NEWLINE, b"\n_")
    if spaces > 1 and b"  " in classes:
        estimate += _SPACE_RUN * _runs(classes, _SPACE, b"  _")
    if len(data) != len(text):  # some characters are not ASCII
        for symbol, weight in zip(_SCRIPT_SYMBOLS, _SCRIPT_WEIGHTS, strict=True):
            estimate += weight * classes.count(symbol)
        if b"\xe0" in data:
            estimate += _DEVANAGARI_EXTRA * (data.count(b"\xe0\xa4") + data.count(b"\xe0\xa5"))
    return min(math.ceil(estimate), len(data))
