"""Sentence-level evidence inside passages: vectors and terms of every sentence.

A question usually paraphrases one sentence of the passage that answers it, so
two features re-score the fused candidates: the best sentence's cosine with the
question, and the share of the question's idf mass that the best-covering
sentence contains. Both are computed only for the candidates (a few hundred
sentences per query); the same best sentence is what the page marks.

Vectors are stored as float16 (half the memory; cosines change by < 1e-3).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import sparse

from .chunk import sentences
from .records import Passage
from .sparse import tokenize_spans


def passage_sentences(p: Passage) -> list[tuple[int, int]]:
    """Sentence spans within ``p.text`` (one span for a one-sentence passage)."""
    return sentences(p.text) or [(0, len(p.text))]


def sentence_embed_text(p: Passage, span: tuple[int, int], with_context: bool) -> str:
    text = p.text[span[0] : span[1]]
    return f"{p.title}\n{text}" if with_context and p.title else text


@dataclass
class SentenceIndex:
    vectors: np.ndarray  # (m, dim) float16, L2-normalised
    bounds: np.ndarray  # (n + 1,) passage i owns sentences bounds[i]:bounds[i+1]
    spans: np.ndarray  # (m, 2) int32 offsets within the passage text
    terms: sparse.csr_matrix  # (m, vocab) 1 where the sentence contains the term
    keys: list[str]

    @classmethod
    def build(
        cls,
        passages: list[Passage],
        spans: list[list[tuple[int, int]]],
        vectors: np.ndarray,
        keys: list[str],
        term_ids: dict[str, int],
    ) -> SentenceIndex:
        bounds = np.zeros(len(passages) + 1, dtype=np.int64)
        np.cumsum([len(s) for s in spans], out=bounds[1:])
        rows, cols = [], []
        flat = []
        for p, pspans in zip(passages, spans, strict=True):
            for s, e in pspans:
                ids = {term_ids[t] for t, _, _ in tokenize_spans(p.text[s:e]) if t in term_ids}
                rows.extend([len(flat)] * len(ids))
                cols.extend(ids)
                flat.append((s, e))
        m = len(flat)
        terms = sparse.csr_matrix(
            (np.ones(len(rows), np.float32), (rows, cols)), shape=(m, len(term_ids))
        )
        return cls(
            vectors.astype(np.float16),
            bounds,
            np.asarray(flat, dtype=np.int32).reshape(m, 2),
            terms,
            keys,
        )

    def features(
        self,
        rows: np.ndarray,
        qvec: np.ndarray,
        qcols: np.ndarray,
        qidf: np.ndarray,
        total: float,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For each passage row: best sentence cosine, best idf coverage (of
        ``total``, the question's whole idf mass), and the index within the
        passage of the sentence a reader should see first."""
        starts, ends = self.bounds[rows], self.bounds[rows + 1]
        counts = ends - starts
        flat = np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
        cos = self.vectors[flat].astype(np.float32) @ qvec.astype(np.float32)
        if len(qcols) and total > 0:
            cover = np.asarray(self.terms[flat][:, qcols] @ qidf).ravel() / total
        else:
            cover = np.zeros(len(flat), dtype=np.float64)
        owner = np.repeat(np.arange(len(rows)), counts)
        best_cos = np.full(len(rows), -1.0)
        best_cover = np.zeros(len(rows))
        np.maximum.at(best_cos, owner, cos)
        np.maximum.at(best_cover, owner, cover)
        # The sentence to show: best by meaning plus coverage, first in the passage on ties.
        order = np.lexsort((flat, -(cos + cover), owner))
        firsts = order[np.cumsum(counts) - counts]
        best = flat[firsts] - starts
        return best_cos, best_cover, best

    def span(self, row: int, which: int) -> list[int]:
        s, e = self.spans[self.bounds[row] + which]
        return [int(s), int(e)]

    def save(self, folder: Path) -> None:
        np.save(folder / "sentence_vectors.npy", self.vectors, allow_pickle=False)
        np.save(folder / "sentence_bounds.npy", self.bounds, allow_pickle=False)
        np.save(folder / "sentence_spans.npy", self.spans, allow_pickle=False)
        sparse.save_npz(folder / "sentence_terms.npz", self.terms.tocsr(), compressed=False)
        (folder / "sentence_keys.json").write_text(json.dumps(self.keys), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> SentenceIndex:
        return cls(
            np.load(folder / "sentence_vectors.npy", allow_pickle=False),
            np.load(folder / "sentence_bounds.npy", allow_pickle=False),
            np.load(folder / "sentence_spans.npy", allow_pickle=False),
            sparse.load_npz(folder / "sentence_terms.npz").tocsr(),
            json.loads((folder / "sentence_keys.json").read_text(encoding="utf-8")),
        )
