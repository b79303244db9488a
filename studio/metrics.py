"""Text metrics for comparing a model's answers with reference answers: small and dependency-free.

Owns: the word tokenizer the metrics share, exact match, ROUGE-L (F1 over the longest common
subsequence of words), corpus BLEU-4 (with add-one smoothing for 2..4-grams, so that short answers
do not all score 0) and perplexity from summed log-likelihoods. All scores are in [0, 1]
(BLEU is not x100). It does not run models (studio.evaluate does).
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter

_WORD = re.compile(r"\w+|[^\w\s]", re.UNICODE)
_PUNCT = str.maketrans("", "", string.punctuation)


def words(text: str) -> list[str]:
    """Lower-cased words and single punctuation marks: 'Ahoy, matey!' -> ['ahoy', ',', 'matey', '!']."""
    return _WORD.findall(text.lower())


def normalize(text: str) -> str:
    """For exact match: lower case, no punctuation, single spaces."""
    return " ".join(text.lower().translate(_PUNCT).split())


def exact_match(prediction: str, reference: str) -> float:
    return float(normalize(prediction) == normalize(reference))


def lcs_length(a: list[str], b: list[str]) -> int:
    """Longest common subsequence length, O(len(a) * len(b)) time, O(len(b)) memory."""
    if not a or not b:
        return 0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F1: harmonic mean of LCS precision (over the prediction) and recall (over the reference)."""
    p, r = words(prediction), words(reference)
    lcs = lcs_length(p, r)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(p), lcs / len(r)
    return 2 * precision * recall / (precision + recall)


def _ngrams(tokens: list[str], n: int) -> Counter:
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def bleu(predictions: list[str], references: list[str], max_n: int = 4, smooth: bool = True) -> float:
    """Corpus BLEU: clipped n-gram matches and lengths summed over all pairs, then combined.

    smooth=True adds one to the matches and totals of n >= 2 (Lin & Och 2004), so a corpus of short
    answers without any 4-gram match still gets a score that ranks models sensibly.
    """
    if len(predictions) != len(references):
        raise ValueError("bleu needs one reference per prediction")
    matches, totals = [0] * max_n, [0] * max_n
    pred_len = ref_len = 0
    for pred, ref in zip(predictions, references):
        p, r = words(pred), words(ref)
        pred_len += len(p)
        ref_len += len(r)
        for n in range(1, max_n + 1):
            pc, rc = _ngrams(p, n), _ngrams(r, n)
            matches[n - 1] += sum(min(c, rc[g]) for g, c in pc.items())
            totals[n - 1] += max(len(p) - n + 1, 0)
    if pred_len == 0 or matches[0] == 0:
        return 0.0
    log_sum = 0.0
    for n in range(max_n):
        m, t = matches[n], totals[n]
        if smooth and n > 0:
            m, t = m + 1, t + 1
        if m == 0 or t == 0:
            return 0.0
        log_sum += math.log(m / t)
    brevity = 1.0 if pred_len > ref_len else math.exp(1 - ref_len / pred_len)
    return brevity * math.exp(log_sum / max_n)


def perplexity(nll_sum: float, n_tokens: int) -> float | None:
    """exp(mean negative log-likelihood per token, in nats); None when nothing was scored."""
    if n_tokens <= 0:
        return None
    return math.exp(min(nll_sum / n_tokens, 700.0))  # cap: exp(>709) overflows a float


def summarize(predictions: list[str], references: list[str],
              nll: list[tuple[float, int]] | None = None) -> dict[str, float | int | None]:
    """The metrics of one model over a split: perplexity, rougeL, bleu, exact_match and n."""
    n = len(predictions)
    out: dict[str, float | int | None] = {
        "perplexity": None,
        "rougeL": sum(rouge_l(p, r) for p, r in zip(predictions, references)) / n if n else 0.0,
        "bleu": bleu(predictions, references) if n else 0.0,
        "exact_match": sum(exact_match(p, r) for p, r in zip(predictions, references)) / n if n else 0.0,
        "n": n,
    }
    if nll:
        out["perplexity"] = perplexity(sum(x for x, _ in nll), sum(c for _, c in nll))
    return out
