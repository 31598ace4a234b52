"""Articles to segment columns: chunk, tokenise and sign them (in worker
processes for a large batch), embed what is not known yet, and lay out the
columns a segment is written from."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from bisect import bisect_left
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...chunk import chunk_article, normalise
from ...config import Settings
from ...dedup import ESTIMATE_VALUES, minhash_signatures, range_positions
from ...embed import Embedder
from ...records import Article, Passage
from ...relations.versions import ARTICLE_BANDS, article_signatures
from ...sentences import passage_sentences, sentence_embed_text
from ...sparse import tokenize, tokenize_spans
from .bm25 import postings
from .diff import FileStat
from .manifest import SkippedFile, VectorCodec
from .search import Snapshot
from .segment import SegmentColumns, pack
from .vectors import DEFAULT_CODEC, SENTENCE_CODEC, decode, encode, pack_codes, unpack_codes

# (articles done, articles in all, passages done): a bar's position and its rate
Progress = Callable[[int, int, int], None]
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


def passage_key(model: str, p: Passage, settings: Settings, sentences: int) -> str:
    """The embed key of passage ``p``'s vector: its text's, or, when the vector is the
    mean of its ``sentences`` sentences' vectors (Settings.passage_vectors), a key no
    model vector has (an embedding cache holds both kinds side by side)."""
    text = embed_text(p, settings.embed_context)
    if settings.passage_vectors == "sentences" and sentences:
        return embed_key(model, f"sentence-mean\x1e{text}")
    return embed_key(model, text)


def sentence_means(vectors: np.ndarray, lengths: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Passages' vectors from their sentences' (unit) vectors, ``counts[i]`` (>= 1)
    sentences for passage i, in order: their mean weighted by each sentence's length
    in characters, as unit vectors. On SciFact and SQuAD it ranks as the passage
    embedded whole does (README "Indexing throughput"), and costs no model call:
    sentences are embedded anyway, to mark the answer."""
    weighted = vectors.astype(np.float32) * np.asarray(lengths, np.float32)[:, None]
    starts = np.zeros(len(counts), np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    sums = np.add.reduceat(weighted, starts, axis=0)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    out: np.ndarray = sums / np.where(norms > 0, norms, 1.0)
    return out


@dataclass
class NewRows:
    columns: SegmentColumns
    tokens: list[list[str]]
    embedded: int
    embedded_sentences: int
    skipped: list[SkippedFile]
    normalised: list[str]  # each passage's near-duplicate key, for the group update


def old_vectors(
    snap: Snapshot | None, names: list[str], settings: Settings, model: str
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Decoded passage and sentence codes of changed articles, by embed key, kept
    apart because their codecs differ: re-encoding a decoded code with its own
    codec gives the same code back, so reuse is exact."""
    passages: dict[str, np.ndarray] = {}
    sentences: dict[str, np.ndarray] = {}
    if snap is None:
        return passages, sentences
    for name in names:
        found = snap.article(name)
        if found is None:
            continue
        for row in found[1]:
            seg, local = snap.locate(row)
            p = seg.passage(local)
            lo, hi = (int(x) for x in seg.a["sent_bounds"][local : local + 2])
            key = passage_key(model, p, settings, hi - lo)
            passages[key] = decode(seg.vectors.codes[local : local + 1], seg.codec)[0]
            codec = seg.sentence_codec
            s_vecs = decode(unpack_codes(seg.a["sent_codes"][lo:hi], codec), codec)
            for j, span in enumerate(seg.a["sent_spans"][lo:hi].tolist()):
                text = sentence_embed_text(p, tuple(span), settings.embed_context)
                sentences[embed_key(model, text)] = s_vecs[j]
    return passages, sentences


def embed_pending(
    keyed: list[tuple[str, str]],
    embedder: Embedder,
    known: dict[str, np.ndarray],
    settings: Settings,
    progress: Callable[[float], None] | None = None,
) -> set[str]:
    """Embed the distinct texts of ``keyed`` (embed key, text) whose key is not in
    ``known``, into ``known`` (float16 vectors), longest first: a batch then holds
    texts of about one length, so little of it is padding (batches of 32 in article
    order ran at 34 passages/s here, sorted 60). ``progress`` gets the share done;
    returns the keys embedded."""
    pending: dict[str, str] = {}
    for key, text in keyed:
        if key not in known and key not in pending:
            pending[key] = text
    todo = sorted(pending.items(), key=lambda kv: -len(kv[1]))
    # The model sorts and batches inside a call too; a remote pool (embed/distributed.py)
    # wants every text in one call.
    step = max(settings.embed_batch_size * 8, getattr(embedder, "texts_per_call", 0))
    for start in range(0, len(todo), step):
        chunk = todo[start : start + step]
        vecs = embedder.encode([t for _, t in chunk], batch_size=settings.embed_batch_size)
        for (key, _), vec in zip(chunk, vecs.astype(np.float16), strict=True):
            known[key] = vec
        if progress:
            progress((start + len(chunk)) / len(todo))
    return set(pending)


def _codes(
    keys: list[str],
    dim: int,
    known: dict[str, np.ndarray],
    codec: VectorCodec,
    reuse: dict[str, np.ndarray],
) -> np.ndarray:
    """Codes of the texts with embed ``keys`` from ``reuse`` (decoded codes of this
    codec) or ``known`` (float16 vectors, every text embedded by :func:`embed_pending`)."""
    out = np.empty((len(keys), dim), dtype=np.uint8)
    for lo in range(0, len(keys), 8192):  # bounded temporaries
        part = keys[lo : lo + 8192]
        vecs = np.stack([reuse[k] if k in reuse else known[k] for k in part])
        out[lo : lo + len(part)] = encode(vecs, codec)
    return pack_codes(out, codec)


@dataclass
class Prepared:
    """Articles chunked, tokenised, signed and packed (no embedding): the part of
    a build that runs in worker processes, article by article."""

    articles: list[Article] = field(default_factory=list)
    stats: list[tuple[int, int]] = field(default_factory=list)  # (size, mtime_ns)
    passages: list[Passage] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)  # passages per article
    spans: list[list[tuple[int, int]]] = field(default_factory=list)
    tokens: list[list[str]] = field(default_factory=list)
    s_counts: list[int] = field(default_factory=list)  # distinct terms per sentence
    s_terms: list[str] = field(default_factory=list)
    normalised: list[str] = field(default_factory=list)
    bands: list[np.ndarray] = field(default_factory=list)  # one array per part
    minhash: list[np.ndarray] = field(default_factory=list)
    article_bands: list[np.ndarray] = field(default_factory=list)  # one array per part
    article_minhash: list[np.ndarray] = field(default_factory=list)
    article_blobs: list[bytes] = field(default_factory=list)
    passage_blobs: list[bytes] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    codes: list[np.ndarray] = field(default_factory=list)  # filled in by the main process
    sent_codes: list[np.ndarray] = field(default_factory=list)

    def extend(self, other: Prepared) -> None:
        for name in self.__dataclass_fields__:
            getattr(self, name).extend(getattr(other, name))


def prepare(
    fresh: list[tuple[Article, int, int]], settings: Settings, count_tokens: Callable[[str], int]
) -> Prepared:
    """Chunk, tokenise, sign and pack ``fresh`` articles (pure: runs in a worker process)."""
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
    out.normalised = [normalise(p.text) for p in out.passages]
    bands, minhash = minhash_signatures(
        out.normalised, settings.dup_shingle, DEDUP_BANDS, DEDUP_ROWS
    )
    out.bands, out.minhash = [bands], [minhash]
    a_bands, a_minhash = article_signatures(out.normalised, out.counts)
    out.article_bands, out.article_minhash = [a_bands], [a_minhash]
    out.article_blobs = [
        pack(article_record(a, n)) for a, n in zip(out.articles, out.counts, strict=True)
    ]
    out.passage_blobs = [pack(passage_record(p)) for p in out.passages]
    return out


def prepared_parts(
    fresh: list[tuple[Article, os.stat_result | FileStat]],
    settings: Settings,
    embedder: Embedder,
) -> Iterator[tuple[int, Prepared]]:
    """:func:`prepare` over every core for a large batch: (articles, part) in
    article order, each part as soon as it is ready, so that the caller embeds
    one part while the workers prepare the next."""
    items = [(a, int(st.st_size), int(st.st_mtime_ns)) for a, st in fresh]
    workers = min(os.cpu_count() or 1, settings.build_workers)
    if workers < 2 or len(items) < PARALLEL_MIN_ARTICLES:
        yield len(items), prepare(items, settings, embedder.token_counter)
        return
    size = max(PARALLEL_MIN_ARTICLES // 4, -(-len(items) // (workers * 16)))
    chunks = [items[i : i + size] for i in range(0, len(items), size)]
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        counter = embedder.token_counter
        parts = pool.map(prepare, chunks, [settings] * len(chunks), [counter] * len(chunks))
        for chunk, part in zip(chunks, parts, strict=True):
            yield len(chunk), part


def new_rows(
    fresh: list[tuple[Article, os.stat_result | FileStat]],
    settings: Settings,
    embedder: Embedder,
    known: dict[str, np.ndarray],
    progress: Progress | None = None,
    reuse: tuple[dict[str, np.ndarray], dict[str, np.ndarray]] = ({}, {}),
) -> NewRows:
    """Chunk, embed and tokenise the fresh articles into segment columns
    (progress is counted in articles, with the passages embedded so far)."""
    prep = Prepared()
    embedded = s_embedded = done = 0
    stream = prepared_parts(fresh, settings, embedder)
    if getattr(embedder, "texts_per_call", 0):  # a remote pool: one call for all the parts
        whole = Prepared()
        for _, part in stream:
            whole.extend(part)
        stream = iter([(len(fresh), whole)])
    for count, part in stream:
        base, rows, size = done, len(prep.passages), len(part.passages)

        def report(share: float, base: int = base, count: int = count, rows: int = rows,
                   size: int = size) -> None:  # fmt: skip
            if progress:
                share = min(1.0, share)
                progress(base + int(count * share), len(fresh), rows + int(size * share))

        n, s_n = _embed_part(part, settings, embedder, known, reuse, report)
        embedded, s_embedded, done = embedded + n, s_embedded + s_n, done + count
        report(1.0)
        prep.extend(part)
    cols = columns(prep, embedder.dim)
    return NewRows(cols, prep.tokens, embedded, s_embedded, prep.skipped, prep.normalised)


def _embed_part(
    part: Prepared,
    settings: Settings,
    embedder: Embedder,
    known: dict[str, np.ndarray],
    reuse: tuple[dict[str, np.ndarray], dict[str, np.ndarray]],
    report: Callable[[float], None],
) -> tuple[int, int]:
    """Fill in ``part``'s passage and sentence codes; (passages, sentences) embedded
    (a sentence equal to a passage counts as a passage; a passage made from its
    sentences' vectors counts as one, its sentences as sentences)."""
    s_texts = [
        sentence_embed_text(p, span, settings.embed_context)
        for p, pspans in zip(part.passages, part.spans, strict=True)
        for span in pspans
    ]
    p_reuse, s_reuse = reuse
    p_keys = [
        passage_key(embedder.name, p, settings, len(pspans))
        for p, pspans in zip(part.passages, part.spans, strict=True)
    ]
    s_keys = [embed_key(embedder.name, t) for t in s_texts]
    bounds = np.zeros(len(part.passages) + 1, np.int64)
    np.cumsum([len(pspans) for pspans in part.spans], out=bounds[1:])
    from_sentences = settings.passage_vectors == "sentences"
    # A passage made from its sentences needs their vectors, reused codes or not
    # (a code is not the vector it came from).
    mean_of = [
        i
        for i, k in enumerate(p_keys)
        if from_sentences and bounds[i + 1] > bounds[i] and k not in p_reuse
    ]
    made = sum(p_keys[i] not in known for i in mean_of)
    at = np.array(mean_of, np.int64)
    needed = set(range_positions(bounds[at], bounds[at + 1] - bounds[at]).tolist())
    skip = set(mean_of)
    whole = [i for i, k in enumerate(p_keys) if k not in p_reuse and i not in skip]
    # Passages and sentences in one length-sorted stream: a sentence equal to a
    # passage (a one-sentence paragraph) is embedded once.
    keyed = [
        *((p_keys[i], embed_text(part.passages[i], settings.embed_context)) for i in whole),
        *(
            (k, t)
            for j, (k, t) in enumerate(zip(s_keys, s_texts, strict=True))
            if k not in s_reuse or j in needed
        ),
    ]
    done = embed_pending(keyed, embedder, known, settings, report)
    lengths = np.fromiter((len(t) for t in s_texts), np.int64, len(s_texts))
    for lo in range(0, len(at), 4096):  # bounded temporaries
        rows = at[lo : lo + 4096]
        counts = bounds[rows + 1] - bounds[rows]
        sents = range_positions(bounds[rows], counts)
        vecs = np.stack([known[s_keys[j]] for j in sents.tolist()])
        means = sentence_means(vecs, lengths[sents], counts).astype(np.float16)
        for i, vec in zip(rows.tolist(), means, strict=True):
            known[p_keys[i]] = vec
    part.codes = [_codes(p_keys, embedder.dim, known, DEFAULT_CODEC, p_reuse)]
    part.sent_codes = [_codes(s_keys, embedder.dim, known, SENTENCE_CODEC, s_reuse)]
    passages = done.intersection(p_keys)
    return len(passages) + made, len(done) - len(passages)


def columns(prep: Prepared, dim: int) -> SegmentColumns:
    """The segment columns of prepared and embedded articles."""
    articles, passages, spans = prep.articles, prep.passages, prep.spans
    bounds = np.zeros(len(articles) + 1, np.int64)
    np.cumsum(prep.counts, out=bounds[1:])
    terms, ptr, docs, tf = postings(prep.tokens)
    term_id = {t: i for i, t in enumerate(terms.tolist())}
    s_ids = np.fromiter((term_id[t] for t in prep.s_terms), np.int32, len(prep.s_terms))
    s_ptr = np.zeros(len(prep.s_counts) + 1, np.int64)
    np.cumsum(prep.s_counts, out=s_ptr[1:])
    flat_spans = [span for pspans in spans for span in pspans]
    s_bounds = np.zeros(len(passages) + 1, np.int64)
    np.cumsum([len(s) for s in spans], out=s_bounds[1:])
    return SegmentColumns(
        article_names=np.array([a.source for a in articles], dtype=str),
        article_size=np.array([st[0] for st in prep.stats], dtype=np.int64),
        article_mtime=np.array([st[1] for st in prep.stats], dtype=np.int64),
        article_rows=bounds,
        article_blobs=prep.article_blobs,
        passage_blobs=prep.passage_blobs,
        ids=np.array([p.id for p in passages], dtype="S16"),
        lengths=np.array([len(t) for t in prep.tokens], dtype=np.int32),
        terms=terms,
        postings_ptr=ptr,
        postings_docs=docs,
        postings_tf=tf,
        codes=np.concatenate([np.zeros((0, dim), np.uint8), *prep.codes]),
        sent_bounds=s_bounds,
        sent_spans=np.array(flat_spans, dtype=np.int64).reshape(-1, 2),
        sent_codes=np.concatenate([np.zeros((0, dim // 4 * 3), np.uint8), *prep.sent_codes]),
        sent_term_ptr=s_ptr,
        sent_term_ids=s_ids,
        bands=np.concatenate([np.zeros((0, DEDUP_BANDS), np.uint32), *prep.bands]),
        minhash=np.concatenate([np.zeros((0, ESTIMATE_VALUES), np.uint8), *prep.minhash]),
        article_bands=np.concatenate(
            [np.zeros((0, ARTICLE_BANDS), np.uint32), *prep.article_bands]
        ),
        article_minhash=np.concatenate(
            [np.zeros((0, ESTIMATE_VALUES), np.uint8), *prep.article_minhash]
        ),
    )


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


def article_record(a: Article, passages: int) -> dict[str, Any]:
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


def passage_record(p: Passage) -> dict[str, Any]:
    keys = ("paragraph", "part", "section", "start", "end", "text")  # the id is in ids.npy
    return {k: getattr(p, k) for k in keys}
