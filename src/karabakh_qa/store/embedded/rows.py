"""Articles to segment columns: chunk, tokenise and sign them (in worker
processes for a large batch), embed what is not known yet, and lay out the
columns a segment is written from."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from bisect import bisect_left
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from ...chunk import chunk_article
from ...config import Settings
from ...dedup import ESTIMATE_VALUES, minhash_signatures
from ...embed import Embedder
from ...records import Article, Passage
from ...sentences import passage_sentences, sentence_embed_text
from ...sparse import tokenize, tokenize_spans
from .bm25 import postings
from .diff import FileStat
from .manifest import SkippedFile, VectorCodec
from .search import Snapshot
from .segment import SegmentColumns, pack
from .vectors import DEFAULT_CODEC, SENTENCE_CODEC, decode, encode, pack_codes, unpack_codes

Progress = Callable[[int, int], None]
DEDUP_BANDS, DEDUP_ROWS = 16, 2
PARALLEL_MIN_ARTICLES = 200  # below this, worker start-up costs more than it saves


def embed_text(p: Passage, with_context: bool) -> str:
    """What the model (or BM25) sees for a passage: optionally its title and section first."""
    if not with_context:
        return p.text
    head = " — ".join(x for x in (p.title, p.section) if x)
    return f"{head}\n{p.text}" if head else p.text


def embed_key(model: str, text: str) -> str:
    return hashlib.sha1(f"{model}\x1f{text}".encode()).hexdigest()


@dataclass
class NewRows:
    columns: SegmentColumns
    tokens: list[list[str]]
    embedded: int
    embedded_sentences: int
    skipped: list[SkippedFile]


def old_vectors(
    snap: Snapshot | None, names: list[str], settings: Settings, model: str
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Decoded passage and sentence codes of changed articles, by embed key, kept
    apart because their codecs differ: re-encoding a decoded code with its own
    codec gives the same code back, so reuse is exact."""
    passages: dict[str, np.ndarray] = {}
    sentences: dict[str, np.ndarray] = {}
    for name in names if snap else []:
        found = snap.article(name)
        if found is None:
            continue
        for row in found[1]:
            seg, local = snap.locate(row)
            p = seg.passage(local)
            key = embed_key(model, embed_text(p, settings.embed_context))
            passages[key] = decode(seg.vectors.codes[local : local + 1], seg.codec)[0]
            lo, hi = (int(x) for x in seg.a["sent_bounds"][local : local + 2])
            codec = seg.sentence_codec
            s_vecs = decode(unpack_codes(seg.a["sent_codes"][lo:hi], codec), codec)
            for j, span in enumerate(seg.a["sent_spans"][lo:hi].tolist()):
                text = sentence_embed_text(p, tuple(span), settings.embed_context)
                sentences[embed_key(model, text)] = s_vecs[j]
    return passages, sentences


def _codes(
    texts: list[str],
    embedder: Embedder,
    known: dict[str, np.ndarray],
    settings: Settings,
    progress: Progress | None,
    offset: int,
    total: int,
    codec: VectorCodec,
    reuse: dict[str, np.ndarray] | None = None,
) -> tuple[np.ndarray, int]:
    """Codes of ``texts``, embedding only those whose key is in neither ``reuse``
    (decoded codes of this codec) nor ``known`` (float16 vectors; gains the new ones)."""
    reuse = reuse or {}
    keys = [embed_key(embedder.name, t) for t in texts]
    todo = {k: i for i, k in enumerate(keys) if k not in known and k not in reuse}
    todo = sorted(todo.items(), key=lambda x: x[1])
    batch = settings.embed_batch_size * 8
    for start in range(0, len(todo), batch):
        chunk = todo[start : start + batch]
        vecs = embedder.encode([texts[i] for _, i in chunk], batch_size=settings.embed_batch_size)
        for (key, _), vec in zip(chunk, vecs.astype(np.float16), strict=True):
            known[key] = vec
        if progress:
            progress(offset + start + len(chunk), total)
    out = np.empty((len(texts), embedder.dim), dtype=np.uint8)
    for lo in range(0, len(keys), 8192):  # bounded temporaries
        part = keys[lo : lo + 8192]
        vecs = np.stack([reuse[k] if k in reuse else known[k] for k in part])
        out[lo : lo + len(part)] = encode(vecs, codec)
    return out, len(todo)


@dataclass
class Prepared:
    """Articles chunked, tokenised and signed (no embedding): the part of a build
    that runs in worker processes, article by article."""

    articles: list[Article] = field(default_factory=list)
    stats: list[tuple[int, int]] = field(default_factory=list)  # (size, mtime_ns)
    passages: list[Passage] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)  # passages per article
    spans: list[list[tuple[int, int]]] = field(default_factory=list)
    tokens: list[list[str]] = field(default_factory=list)
    s_counts: list[int] = field(default_factory=list)  # distinct terms per sentence
    s_terms: list[str] = field(default_factory=list)
    bands: list[np.ndarray] = field(default_factory=list)
    minhash: list[np.ndarray] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)

    def extend(self, other: Prepared) -> None:
        for name in self.__dataclass_fields__:
            getattr(self, name).extend(getattr(other, name))


def prepare(
    fresh: list[tuple[Article, int, int]], settings: Settings, count_tokens: Callable[[str], int]
) -> Prepared:
    """Chunk, tokenise and sign ``fresh`` articles (pure: runs in a worker process)."""
    out = Prepared()
    for article, size, mtime in fresh:
        article, parts = chunk_article(article, count_tokens, settings.model_max_tokens)
        if not parts:
            reason = "no indexable text after cleaning"
            out.skipped.append(SkippedFile(article.source, reason, article.sha256, size, mtime))
            continue
        out.articles.append(article)
        out.stats.append((size, mtime))
        out.passages.extend(parts)
        out.counts.append(len(parts))
    out.spans = [passage_sentences(p) for p in out.passages]
    out.tokens, s_ptr, out.s_terms = passage_terms(out.passages, out.spans, settings.bm25_context)
    out.s_counts = np.diff(s_ptr).tolist()
    bands, minhash = minhash_signatures(
        [p.text for p in out.passages], settings.dup_shingle, DEDUP_BANDS, DEDUP_ROWS
    )
    out.bands, out.minhash = list(bands), list(minhash)
    return out


def prepare_all(
    fresh: list[tuple[Article, os.stat_result | FileStat]],
    settings: Settings,
    embedder: Embedder,
) -> Prepared:
    """:func:`prepare` over every core for a large batch, in article order."""
    items = [(a, int(st.st_size), int(st.st_mtime_ns)) for a, st in fresh]
    workers = min(os.cpu_count() or 1, settings.build_workers)
    if workers < 2 or len(items) < PARALLEL_MIN_ARTICLES:
        return prepare(items, settings, embedder.token_counter)
    size = -(-len(items) // (workers * 4))
    chunks = [items[i : i + size] for i in range(0, len(items), size)]
    out = Prepared()
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        counter = embedder.token_counter
        for part in pool.map(prepare, chunks, [settings] * len(chunks), [counter] * len(chunks)):
            out.extend(part)
    return out


def new_rows(
    fresh: list[tuple[Article, os.stat_result | FileStat]],
    settings: Settings,
    embedder: Embedder,
    known: dict[str, np.ndarray],
    progress: Progress | None = None,
    reuse: tuple[dict[str, np.ndarray], dict[str, np.ndarray]] = ({}, {}),
) -> NewRows:
    """Chunk, embed and tokenise the fresh articles into segment columns."""
    prep = prepare_all(fresh, settings, embedder)
    articles, passages, spans = prep.articles, prep.passages, prep.spans
    bounds = np.zeros(len(articles) + 1, np.int64)
    np.cumsum(prep.counts, out=bounds[1:])
    p_texts = [embed_text(p, settings.embed_context) for p in passages]
    s_texts = [
        sentence_embed_text(p, span, settings.embed_context)
        for p, pspans in zip(passages, spans, strict=True)
        for span in pspans
    ]
    total = len(p_texts) + len(s_texts)
    codes, embedded = _codes(
        p_texts, embedder, known, settings, progress, 0, total, DEFAULT_CODEC, reuse[0]
    )
    s_codes, s_embedded = _codes(
        s_texts, embedder, known, settings, progress, len(p_texts), total, SENTENCE_CODEC, reuse[1]
    )
    terms, ptr, docs, tf = postings(prep.tokens)
    s_ids = (
        np.searchsorted(terms, np.asarray(prep.s_terms, dtype=terms.dtype))
        if prep.s_terms
        else np.zeros(0, np.int64)
    )
    s_ptr = np.zeros(len(prep.s_counts) + 1, np.int64)
    np.cumsum(prep.s_counts, out=s_ptr[1:])
    flat_spans = [span for pspans in spans for span in pspans]
    s_bounds = np.zeros(len(passages) + 1, np.int64)
    np.cumsum([len(s) for s in spans], out=s_bounds[1:])
    columns = SegmentColumns(
        article_names=np.array([a.source for a in articles], dtype=str),
        article_sha=np.array([a.sha256 for a in articles], dtype="S64"),
        article_size=np.array([st[0] for st in prep.stats], dtype=np.int64),
        article_mtime=np.array([st[1] for st in prep.stats], dtype=np.int64),
        article_rows=bounds,
        article_blobs=[
            pack(article_record(a, n)) for a, n in zip(articles, prep.counts, strict=True)
        ],
        passage_blobs=[pack(passage_record(p)) for p in passages],
        ids=np.array([p.id for p in passages], dtype="S16"),
        lengths=np.array([len(t) for t in prep.tokens], dtype=np.int32),
        terms=terms,
        postings_ptr=ptr,
        postings_docs=docs,
        postings_tf=tf,
        codes=codes,
        sent_bounds=s_bounds,
        sent_spans=np.array(flat_spans, dtype=np.int64).reshape(-1, 2),
        sent_codes=pack_codes(s_codes, SENTENCE_CODEC),
        sent_term_ptr=s_ptr,
        sent_term_ids=s_ids.astype(np.int32),
        bands=np.array(prep.bands, dtype=np.uint32).reshape(-1, DEDUP_BANDS),
        minhash=np.array(prep.minhash, dtype=np.uint8).reshape(-1, ESTIMATE_VALUES),
    )
    return NewRows(columns, prep.tokens, embedded, s_embedded, prep.skipped)


def passage_terms(
    passages: list[Passage], spans: list[list[tuple[int, int]]], context: bool
) -> tuple[list[list[str]], list[int], list[str]]:
    """BM25 tokens of each passage (title and section first when ``context``), and
    the distinct terms of each sentence as a flat list with pointers. Each text is
    tokenised once: a sentence's terms are the passage's tokens inside its span."""
    heads: dict[str, list[str]] = {}
    tokens, s_ptr, s_terms = [], [0], []
    for p, pspans in zip(passages, spans, strict=True):
        found = tokenize_spans(p.text)
        head = " — ".join(x for x in (p.title, p.section) if x) if context else ""
        if head not in heads:
            heads[head] = tokenize(head)
        tokens.append(heads[head] + [t for t, _, _ in found])
        starts = [st for _, st, _ in found]
        for s, e in pspans:
            lo, hi = bisect_left(starts, s), bisect_left(starts, e)
            s_terms.extend(sorted({t for t, _, _ in found[lo:hi]}))
            s_ptr.append(len(s_terms))
    return tokens, s_ptr, s_terms


def article_record(a: Article, passages: int) -> dict:
    return {
        "source": a.source,
        "sha256": a.sha256,
        "title": a.title,
        "date": a.date,
        "date_source": a.date_source,
        "url": a.url,
        "publisher": a.publisher,
        "passages": passages,
    }


def passage_record(p: Passage) -> dict:
    keys = ("paragraph", "part", "section", "start", "end", "text")  # the id is in ids.npy
    return {k: getattr(p, k) for k in keys}
