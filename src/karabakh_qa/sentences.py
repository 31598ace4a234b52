"""Sentences inside passages: the spans whose vectors and terms are stored.

A question usually paraphrases one sentence of the passage that answers it, so
two features re-score the fused candidates: the best sentence's cosine with the
question, and the share of the question's idf mass that the best-covering
sentence contains (computed in :mod:`store.embedded.search`, only for the
candidates); the same best sentence is what the page marks.
"""

from __future__ import annotations

from .chunk import sentences
from .records import Passage


def passage_sentences(p: Passage) -> list[tuple[int, int]]:
    """Sentence spans within ``p.text`` (one span for a one-sentence passage)."""
    return sentences(p.text) or [(0, len(p.text))]


def sentence_embed_text(p: Passage, span: tuple[int, int], with_context: bool) -> str:
    text = p.text[span[0] : span[1]]
    return f"{p.title}\n{text}" if with_context and p.title else text
