"""Row filters over Arrow string arrays: token length, keyword blocklist, refusals, language.

Owns: token counting (the selected tokenizer, batched in Rust; without one an estimate of
4 UTF-8 bytes per token, the usual English ratio), the refusal phrase list, the keyword matcher
(whole words, case-insensitive, RE2 through pyarrow) and language identification (py3langid,
an offline numpy port of langid.py, ~0.1 ms per row, so only run when languages are asked for).
Does not decide what is removed (clean.py); PII lives in pii.py.
"""

from __future__ import annotations

import functools
import re

import numpy as np

BYTES_PER_TOKEN = 4  # rough English average for BPE tokenizers, used when no tokenizer is given
REFUSALS = (
    "as an ai language model", "as a language model", "as an ai assistant, i cannot",
    "as an ai, i cannot", "as an ai, i can't", "as an ai, i do not", "i'm sorry, but i cannot",
    "i'm sorry, but i can't", "i am sorry, but i cannot", "i cannot fulfill that request",
    "i cannot fulfill this request", "i can't assist with that", "i cannot assist with that",
    "i'm unable to assist with", "i am unable to assist with", "i'm not able to provide",
    "i cannot provide assistance", "it is not appropriate for me to", "openai's use case policy",
    "my programming prohibits", "i don't have personal opinions",
)
_RE2_SPECIAL = re.compile(r"([\\.^$|?*+()\[\]{}])")


def _re2_escape(s: str) -> str:
    return _RE2_SPECIAL.sub(r"\\\1", s)


def _lower(texts):
    import pyarrow.compute as pc

    return pc.utf8_lower(pc.fill_null(texts, ""))


def _to_bool(arr) -> np.ndarray:
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=bool)


def keyword_mask(texts, words) -> np.ndarray:
    """Rows containing any blocklisted word or phrase (whole words, case-insensitive)."""
    import pyarrow.compute as pc

    words = [w.strip().lower() for w in words or [] if w.strip()]
    if not words:
        return np.zeros(len(texts), dtype=bool)
    pattern = r"(?:^|[^\p{L}\p{N}_])(?:" + "|".join(_re2_escape(w) for w in words) + \
        r")(?:$|[^\p{L}\p{N}_])"
    return _to_bool(pc.match_substring_regex(_lower(texts), pattern))


def refusal_mask(answers, phrases=REFUSALS) -> np.ndarray:
    """Rows whose trained-on answer contains a refusal / 'as an AI' phrase."""
    import pyarrow.compute as pc

    low = pc.replace_substring(_lower(answers), "\u2019", "'")  # curly apostrophes
    pattern = "|".join(_re2_escape(p) for p in phrases)
    return _to_bool(pc.match_substring_regex(low, pattern))


def empty_mask(texts) -> np.ndarray:
    """Rows with no text at all (an empty answer is caught by validation's empty_content)."""
    import pyarrow.compute as pc

    trimmed = pc.utf8_trim_whitespace(pc.fill_null(texts, ""))
    return _to_bool(pc.equal(pc.utf8_length(trimmed), 0))


class TokenCounter:
    """Counts tokens of row texts; with a tokenizer adds its chat template's per-message cost."""

    def __init__(self, tokenizer=None):
        self.tokenizer = tokenizer
        self.per_message = 0
        if tokenizer is not None and getattr(tokenizer, "chat_template", None):
            msgs = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
            try:
                ids = tokenizer.apply_chat_template(msgs, tokenize=True, return_dict=False)
                plain = sum(len(tokenizer(m["content"], add_special_tokens=False)["input_ids"])
                            for m in msgs)
                self.per_message = max(0, (len(ids) - plain) // len(msgs))
            except Exception:  # a template that can't render 2 turns: count content only
                self.per_message = 0

    @property
    def exact(self) -> bool:
        return self.tokenizer is not None

    def count(self, texts, turns: np.ndarray) -> np.ndarray:
        import pyarrow.compute as pc

        if self.tokenizer is None:
            nbytes = np.asarray(pc.binary_length(pc.fill_null(texts, "")).to_numpy(
                zero_copy_only=False), dtype=np.int64)
            return -(-nbytes // BYTES_PER_TOKEN)
        enc = self.tokenizer(texts.to_pylist(), add_special_tokens=False,
                             return_attention_mask=False, return_token_type_ids=False)
        lengths = np.fromiter((len(x) for x in enc["input_ids"]), dtype=np.int64,
                              count=len(texts))
        return lengths + self.per_message * turns


@functools.lru_cache(maxsize=1)
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE)  # ~2 s once (xz-compressed model)


MIN_LETTERS = 20  # below this langid guesses (e.g. "spammer here" -> Danish): call it unknown


def detect_languages(texts, max_chars: int = 600) -> list[str]:
    """ISO 639-1 code per row; '' when the row has too few letters to tell."""
    ident = _identifier()
    out = []
    for t in texts.to_pylist():
        t = (t or "")[:max_chars]
        letters = sum(c.isalpha() for c in t)
        out.append(ident.classify(t)[0] if letters >= MIN_LETTERS else "")
    return out
