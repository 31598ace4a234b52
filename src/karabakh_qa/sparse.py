"""Sparse retrieval: one tokenizer, and BM25 as a precomputed weight matrix.

rank-bm25's ``BM25Okapi`` is fitted for its statistics (idf with the epsilon
floor, document lengths, average length); its per-(passage, term) weights are
then stored in a CSC matrix, so a query costs one sparse column slice and a
mat-vec instead of a Python loop over every document. Scores equal
``BM25Okapi.get_scores`` (tests/test_sparse.py proves it).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from functools import lru_cache
from pathlib import Path

import numpy as np
import Stemmer
from rank_bm25 import BM25Okapi
from scipy import sparse

TOKENIZER_VERSION = "snowball-english-stop-v1"

# NLTK's English stopword list (public domain word list), plus the possessive "s".
STOPWORDS = frozenset(
    """
    i me my myself we our ours ourselves you your yours yourself yourselves he him his
    himself she her hers herself it its itself they them their theirs themselves what
    which who whom this that these those am is are was were be been being have has had
    having do does did doing a an the and but if or because as until while of at by for
    with about against between into through during before after above below to from up
    down in out on off over under again further then once here there when where why how
    all any both each few more most other some such no nor not only own same so than too
    very s t can will just don should now d ll m o re ve y ain aren couldn didn doesn
    hadn hasn haven isn ma mightn mustn needn shan shouldn wasn weren won wouldn
    """.split()
)

_TOKEN = re.compile(r"\d+(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|[^\W\d_]+", re.U)
_stemmer = Stemmer.Stemmer("english")


@lru_cache(maxsize=200_000)
def _stem(word: str) -> str:
    return _stemmer.stemWord(word)


def tokenize_spans(text: str) -> list[tuple[str, int, int]]:
    """(term, start, end) for every indexed token of ``text``: lowercased,
    stopwords dropped, Snowball-stemmed, thousands separators removed."""
    out = []
    for match in _TOKEN.finditer(text):
        word = match.group().lower()
        if word in STOPWORDS:
            continue
        term = word.replace(",", "") if word[0].isdigit() else _stem(word)
        out.append((term, match.start(), match.end()))
    return out


def tokenize(text: str) -> list[str]:
    """The terms of ``text``; the same function serves passages and queries."""
    return [term for term, _, _ in tokenize_spans(text)]


class BM25Index:
    """BM25Okapi weights as a (passages x terms) CSC matrix plus the vocabulary."""

    def __init__(self, matrix: sparse.csc_matrix, vocab: list[str], idf: np.ndarray) -> None:
        self.matrix = matrix
        self.vocab = vocab
        self.term_ids = {term: i for i, term in enumerate(vocab)}
        self.idf = idf

    @classmethod
    def fit(
        cls, docs: list[list[str]], k1: float = 1.2, b: float = 0.75, epsilon: float = 0.25
    ) -> BM25Index:
        """Fit rank-bm25 on tokenised ``docs`` and precompute every weight."""
        n = len(docs)
        if n == 0 or not any(docs):
            return cls(sparse.csc_matrix((n, 0), dtype=np.float32), [], np.zeros(0, np.float32))
        bm25 = BM25Okapi(docs, k1=k1, b=b, epsilon=epsilon)
        vocab = sorted(bm25.idf)
        term_ids = {t: i for i, t in enumerate(vocab)}
        idf = np.array([bm25.idf[t] for t in vocab], dtype=np.float64)
        doc_len = np.asarray(bm25.doc_len, dtype=np.float64)
        norm = k1 * (1 - b + b * doc_len / bm25.avgdl)
        rows, cols, tfs = [], [], []
        for d, freqs in enumerate(bm25.doc_freqs):
            for term, tf in freqs.items():
                rows.append(d)
                cols.append(term_ids[term])
                tfs.append(tf)
        rows_a, cols_a = np.asarray(rows), np.asarray(cols)
        tf_a = np.asarray(tfs, dtype=np.float64)
        weights = idf[cols_a] * tf_a * (k1 + 1) / (tf_a + norm[rows_a])
        matrix = sparse.csc_matrix((weights, (rows_a, cols_a)), shape=(n, len(vocab)))
        return cls(matrix.astype(np.float64), vocab, idf)

    def query_vector(self, terms: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Column ids and counts of the query's known terms (repeats count, as in rank-bm25)."""
        counts = Counter(t for t in terms if t in self.term_ids)
        cols = np.fromiter((self.term_ids[t] for t in counts), dtype=np.int64, count=len(counts))
        return cols, np.fromiter(counts.values(), dtype=np.float64, count=len(counts))

    def scores(self, terms: list[str]) -> np.ndarray:
        """BM25 score of every passage for the query ``terms``."""
        return self.scores_of(*self.query_vector(terms))

    def scores_of(self, cols: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """BM25 score of every passage for a query vector from :meth:`query_vector`."""
        if len(cols) == 0:
            return np.zeros(self.matrix.shape[0], dtype=np.float64)
        return np.asarray(self.matrix[:, cols] @ counts).ravel()

    def save(self, folder: Path) -> None:
        sparse.save_npz(folder / "bm25.npz", self.matrix.tocsc(), compressed=False)
        np.save(folder / "bm25_idf.npy", self.idf, allow_pickle=False)
        (folder / "vocab.json").write_text(json.dumps(self.vocab), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> BM25Index:
        matrix = sparse.load_npz(folder / "bm25.npz").tocsc()
        idf = np.load(folder / "bm25_idf.npy", allow_pickle=False)
        vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
        return cls(matrix, vocab, idf)
