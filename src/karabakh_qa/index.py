"""The on-disk index: versioned generations, atomic switch, incremental builds.

Layout of ``index/``::

    CURRENT                 name of the serving generation (replaced atomically)
    .lock                   flock held by the one build allowed at a time
    gen-000007/             one complete, immutable generation
        manifest.json       schema, model + weights hash, tokenizer, BM25 params,
                            article hashes, counts, build time
        passages.jsonl      one Passage per line, row order = vector order
        embed_keys.json     per row: hash of (model, embedded text), for reuse
        dense.faiss         FAISS IndexFlatIP of normalised embeddings
        bm25.npz            BM25 weights, CSC (numpy arrays only, no pickles)
        bm25_idf.npy, vocab.json

A build writes ``.tmp-*/``, renames it to ``gen-N/``, then replaces
``CURRENT``; older generations are removed afterwards. A reader therefore sees
either the old or the new generation, whole, and a build killed at any moment
leaves the serving one untouched.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .chunk import chunk_article
from .config import Settings
from .dedup import group_passages
from .dense import DenseIndex
from .embed import Embedder
from .errors import Conflict, IndexUnavailable
from .ingest import Skipped, file_hashes, read_articles
from .records import Article, Passage
from .sentences import SentenceIndex, passage_sentences, sentence_embed_text
from .sparse import TOKENIZER_VERSION, BM25Index, tokenize

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
Progress = Callable[[int, int], None]


def embed_text(p: Passage, with_context: bool) -> str:
    """What the model sees for a passage: optionally its title and section first."""
    if not with_context:
        return p.text
    head = " — ".join(x for x in (p.title, p.section) if x)
    return f"{head}\n{p.text}" if head else p.text


def embed_key(model: str, text: str) -> str:
    return hashlib.sha1(f"{model}\x1f{text}".encode()).hexdigest()


def embed_with_reuse(
    texts: list[str],
    embedder: Embedder,
    known: dict[str, np.ndarray],
    batch_size: int = 32,
    progress: Progress | None = None,
) -> tuple[np.ndarray, list[str], int]:
    """Vectors for ``texts``, embedding only those whose key is not in ``known``.

    Returns (vectors, keys, number embedded); ``known`` gains the new vectors.
    """
    keys = [embed_key(embedder.name, t) for t in texts]
    todo = sorted(
        {k: i for i, k in enumerate(keys) if k not in known}.items(), key=lambda kv: kv[1]
    )
    total = len(todo)
    for start in range(0, total, batch_size * 8):
        chunk = todo[start : start + batch_size * 8]
        vectors = embedder.encode([texts[i] for _, i in chunk], batch_size=batch_size)
        for (key, _), vec in zip(chunk, vectors, strict=True):
            known[key] = vec
        if progress:
            progress(min(start + len(chunk), total), total)
    out = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    for i, key in enumerate(keys):
        out[i] = known[key]
    return out, keys, total


@dataclass
class LoadedIndex:
    """One generation in memory, with the lookups search needs."""

    path: Path
    manifest: dict
    passages: list[Passage]
    bm25: BM25Index
    dense: DenseIndex
    embed_keys: list[str]
    sentences: SentenceIndex
    row_of: dict[str, int] = field(init=False)
    groups: dict[str, list[int]] = field(init=False)
    by_source: dict[str, list[int]] = field(init=False)

    def __post_init__(self) -> None:
        self.row_of = {p.id: i for i, p in enumerate(self.passages)}
        self.groups = defaultdict(list)
        self.by_source = defaultdict(list)
        for i, p in enumerate(self.passages):
            self.groups[p.group].append(i)
            self.by_source[p.source].append(i)
        # Per-row dates ("" when unknown; ISO strings compare as dates), for filters.
        self.dates = np.array([p.date or "" for p in self.passages], dtype="U10")

    def rows_where(
        self, sources: tuple[str, ...], since: str | None, until: str | None
    ) -> np.ndarray:
        """Rows from ``sources`` (all if empty) dated within [since, until]; a date
        bound leaves out passages whose date is unknown."""
        if sources:
            picked = [self.by_source.get(s, []) for s in sources]
            rows = np.unique(np.concatenate(picked)).astype(np.int64)
        else:
            rows = np.arange(len(self.passages), dtype=np.int64)
        dates = self.dates[rows]
        keep = np.ones(len(rows), dtype=bool)
        if since or until:
            keep &= dates != ""
        if since:
            keep &= dates >= since
        if until:
            keep &= dates <= until
        return rows[keep]

    @property
    def generation(self) -> int:
        return int(self.manifest["generation"])

    @property
    def articles(self) -> dict[str, dict]:
        return self.manifest["articles"]

    def chunks_of(self, article: Article) -> tuple[Article, list[Passage]] | None:
        """The article's stored passages if its bytes are unchanged (no re-chunking)."""
        meta = self.articles.get(article.source)
        if meta is None or meta["sha256"] != article.sha256:
            return None
        fields = ("title", "date", "date_source", "url", "publisher")
        article = replace(article, **{k: meta.get(k) for k in fields})
        return article, [self.passages[i] for i in self.by_source[article.source]]

    def known_vectors(self) -> dict[str, np.ndarray]:
        vectors = self.dense.vectors
        known = {key: vectors[i] for i, key in enumerate(self.embed_keys)}
        svecs = self.sentences.vectors
        known.update({key: svecs[i] for i, key in enumerate(self.sentences.keys)})
        return known


@dataclass(frozen=True)
class BuildReport:
    generation: int
    articles: int
    passages: int
    skipped: list[Skipped]
    added: list[str]
    changed: list[str]
    removed: list[str]
    unchanged: list[str]
    embedded: int
    reused: int
    seconds: float
    path: Path
    embedded_sentences: int = 0

    def to_dict(self) -> dict:
        return {
            "generation": self.generation,
            "articles": self.articles,
            "passages": self.passages,
            "skipped": [s.to_dict() for s in self.skipped],
            "added": self.added,
            "changed": self.changed,
            "removed": self.removed,
            "unchanged": len(self.unchanged),
            "embedded": self.embedded,
            "embedded_sentences": self.embedded_sentences,
            "reused": self.reused,
            "seconds": round(self.seconds, 3),
        }


# --- reading -----------------------------------------------------------------


def current_generation_path(index_dir: Path) -> Path | None:
    """The serving generation's folder, or None when there is no index."""
    try:
        name = (index_dir / "CURRENT").read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return index_dir / name if name else None


def check_manifest(manifest: dict, settings: Settings) -> None:
    """Refuse an index this code or these settings cannot use, saying what to run."""
    if manifest.get("schema_version") != SCHEMA_VERSION:
        raise IndexUnavailable(
            f"index schema {manifest.get('schema_version')} is not {SCHEMA_VERSION} "
            "(built by another version): run `karabakh-qa index --full`"
        )
    built = manifest["model"]["name"]
    if built != settings.model_name:
        raise IndexUnavailable(
            f"index was built with model {built!r} but settings use {settings.model_name!r}: "
            "run `karabakh-qa index --full`"
        )
    if manifest["tokenizer"] != TOKENIZER_VERSION:
        raise IndexUnavailable(
            f"index tokenizer {manifest['tokenizer']!r} differs from {TOKENIZER_VERSION!r}: "
            "run `karabakh-qa index --full`"
        )


def load_generation(path: Path) -> LoadedIndex:
    manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    with open(path / "passages.jsonl", encoding="utf-8") as fh:
        passages = [Passage.from_dict(json.loads(line)) for line in fh]
    keys = json.loads((path / "embed_keys.json").read_text(encoding="utf-8"))
    return LoadedIndex(
        path,
        manifest,
        passages,
        BM25Index.load(path),
        DenseIndex.load(path / "dense.faiss"),
        keys,
        SentenceIndex.load(path),
    )


def load_index(settings: Settings) -> LoadedIndex:
    """Load the serving generation, validated against ``settings``."""
    for _attempt in range(3):
        path = current_generation_path(settings.index_dir)
        if path is None:
            raise IndexUnavailable(
                f"no index in {settings.index_dir}: run `karabakh-qa index` to build it"
            )
        try:
            loaded = load_generation(path)
        except FileNotFoundError:
            time.sleep(0.05)  # a build switched generations under us: read CURRENT again
            continue
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise IndexUnavailable(
                f"index at {path} is unreadable ({exc}): run `karabakh-qa index --full`"
            ) from exc
        check_manifest(loaded.manifest, settings)
        if len(loaded.passages) != loaded.dense.size:
            raise IndexUnavailable(
                f"index at {path} is inconsistent: run `karabakh-qa index --full`"
            )
        return loaded
    raise IndexUnavailable(f"index in {settings.index_dir} kept changing while loading; try again")


def stale_sources(index: LoadedIndex, articles_dir: Path) -> list[str]:
    """Article files added, changed or removed since ``index`` was built."""
    built = {s: meta["sha256"] for s, meta in index.manifest["articles"].items()}
    built.update({s["source"]: s["sha256"] for s in index.manifest.get("skipped", [])})
    now = file_hashes(articles_dir)
    return sorted(s for s in set(built) | set(now) if built.get(s) != now.get(s))


# --- assembling ---------------------------------------------------------------


@dataclass
class Assembled:
    """Everything a generation holds, built in memory from articles."""

    articles: list[Article]
    passages: list[Passage]
    keys: list[str]
    embedded: int
    dense: DenseIndex
    bm25: BM25Index
    sentences: SentenceIndex
    skipped: list[Skipped]
    embedded_sentences: int = 0

    def loaded(self) -> LoadedIndex:
        """An in-memory LoadedIndex (for evaluation: nothing is written)."""
        manifest = {
            "generation": 0,
            "built_at": "in-memory",
            "model": {"name": "in-memory"},
            "counts": {"articles": len(self.articles), "passages": len(self.passages)},
            "articles": {a.source: {"title": a.title} for a in self.articles},
            "skipped": [],
        }
        return LoadedIndex(
            None, manifest, self.passages, self.bm25, self.dense, self.keys, self.sentences
        )


def assemble(
    articles: list[Article],
    settings: Settings,
    embedder: Embedder,
    known: dict[str, np.ndarray],
    progress: Progress | None = None,
    previous: LoadedIndex | None = None,
) -> Assembled:
    """Chunk, group, embed and fit BM25 over ``articles``.

    Unchanged articles of ``previous`` keep their passages, and any passage whose
    embedded text is in ``known`` keeps its vector.
    """
    chunked: list[Article] = []
    passages: list[Passage] = []
    skipped: list[Skipped] = []
    for article in articles:
        reused = previous.chunks_of(article) if previous else None
        article, parts = reused or chunk_article(
            article, embedder.count_tokens, settings.model_max_tokens
        )
        if not parts:
            reason = "no indexable text after cleaning"
            skipped.append(Skipped(article.source, reason, article.sha256))
            continue
        chunked.append(article)
        passages.extend(parts)
    passages = group_passages(passages, settings.dup_shingle, settings.dup_jaccard)
    texts = [embed_text(p, settings.embed_context) for p in passages]
    vectors, keys, embedded = embed_with_reuse(
        texts, embedder, known, settings.embed_batch_size, progress
    )
    bm25 = BM25Index.fit(
        [tokenize(embed_text(p, settings.bm25_context)) for p in passages],
        settings.bm25_k1,
        settings.bm25_b,
        settings.bm25_epsilon,
    )
    dense = DenseIndex.build(vectors, embedder.dim)
    spans = [passage_sentences(p) for p in passages]
    s_texts = [
        sentence_embed_text(p, span, settings.embed_context)
        for p, pspans in zip(passages, spans, strict=True)
        for span in pspans
    ]

    def then(done: int, total: int) -> None:  # one monotonic count across both phases
        if progress:
            progress(embedded + done, embedded + total)

    s_vectors, s_keys, s_embedded = embed_with_reuse(
        s_texts, embedder, known, settings.embed_batch_size, then
    )
    sents = SentenceIndex.build(passages, spans, s_vectors, s_keys, bm25.term_ids)
    return Assembled(chunked, passages, keys, embedded, dense, bm25, sents, skipped, s_embedded)


# --- writing -----------------------------------------------------------------


@contextlib.contextmanager
def build_lock(index_dir: Path, wait: bool = False) -> Iterator[None]:
    """Hold the index's build lock; refuse (or wait) when another build has it."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / ".lock", "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            raise Conflict(
                f"another build is running on {index_dir} (pid {holder}); "
                "wait for it to finish or pass --wait"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_generation(
    tmp: Path,
    manifest: dict,
    passages: list[Passage],
    keys: list[str],
    dense: DenseIndex,
    bm25: BM25Index,
    sents: SentenceIndex,
) -> None:
    tmp.mkdir(parents=True)
    with open(tmp / "passages.jsonl", "w", encoding="utf-8") as fh:
        for p in passages:
            fh.write(json.dumps(p.to_dict(), ensure_ascii=False) + "\n")
    (tmp / "embed_keys.json").write_text(json.dumps(keys), encoding="utf-8")
    dense.save(tmp / "dense.faiss")
    bm25.save(tmp)
    sents.save(tmp)
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    for f in tmp.iterdir():
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    _fsync_dir(tmp)


def _switch(index_dir: Path, tmp: Path, name: str) -> Path:
    final = index_dir / name
    os.rename(tmp, final)
    pointer = index_dir / f".CURRENT.{uuid.uuid4().hex}"
    pointer.write_text(name + "\n", encoding="utf-8")
    with open(pointer, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(pointer, index_dir / "CURRENT")
    _fsync_dir(index_dir)
    for old in index_dir.glob("gen-*"):
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)
    return final


def _previous(settings: Settings, embedder: Embedder, full: bool) -> LoadedIndex | None:
    """The serving generation, if its vectors can be reused by this build."""
    if full:
        return None
    try:
        prev = load_index(settings)
    except IndexUnavailable as exc:
        log.info("no reusable index (%s); building from scratch", exc.message)
        return None
    model = prev.manifest["model"]
    if (model.get("weights_sha256"), model.get("max_tokens")) != (
        embedder.weights_sha256,
        settings.model_max_tokens,
    ):
        return None
    return prev


def build_index(
    settings: Settings,
    embedder: Embedder,
    full: bool = False,
    wait: bool = False,
    progress: Progress | None = None,
) -> BuildReport:
    """Build a new generation from the articles folder and make it the serving one.

    Unchanged passages reuse their stored vectors unless ``full``; BM25 and
    near-duplicate groups are always recomputed for the whole corpus.
    """
    started = time.perf_counter()
    index_dir = settings.index_dir
    with build_lock(index_dir, wait=wait):
        for stray in index_dir.glob(".tmp-*"):  # left by a killed build
            shutil.rmtree(stray, ignore_errors=True)
        articles, skipped = read_articles(settings.articles_dir)
        prev = _previous(settings, embedder, full)
        before = {s: m["sha256"] for s, m in prev.articles.items()} if prev else {}
        known = prev.known_vectors() if prev else {}

        built = assemble(articles, settings, embedder, known, progress, prev)
        chunked, passages, keys = built.articles, built.passages, built.keys
        embedded, dense, bm25 = built.embedded, built.dense, built.bm25
        skipped.extend(built.skipped)
        now = {a.source: a.sha256 for a in chunked}
        generation = (prev.generation if prev else _last_generation(index_dir)) + 1
        counts = defaultdict(int)
        for p in passages:
            counts[p.source] += 1
        manifest = {
            "schema_version": SCHEMA_VERSION,
            "generation": generation,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "model": {
                "name": embedder.name,
                "weights_sha256": embedder.weights_sha256,
                "dim": embedder.dim,
                "max_tokens": settings.model_max_tokens,
                "embed_context": settings.embed_context,
            },
            "tokenizer": TOKENIZER_VERSION,
            "bm25": {
                "k1": settings.bm25_k1,
                "b": settings.bm25_b,
                "epsilon": settings.bm25_epsilon,
                "context": settings.bm25_context,
            },
            "dedup": {"shingle": settings.dup_shingle, "jaccard": settings.dup_jaccard},
            "articles": {
                a.source: {
                    "sha256": a.sha256,
                    "title": a.title,
                    "date": a.date,
                    "date_source": a.date_source,
                    "url": a.url,
                    "publisher": a.publisher,
                    "passages": counts[a.source],
                }
                for a in chunked
            },
            "skipped": [s.to_dict() for s in skipped],
            "counts": {
                "articles": len(chunked),
                "passages": len(passages),
                "vocab": len(bm25.vocab),
            },
            "build": {"embedded": embedded, "reused": len(passages) - embedded},
        }
        name = f"gen-{generation:06d}"
        tmp = index_dir / f".tmp-{uuid.uuid4().hex}"
        _write_generation(tmp, manifest, passages, keys, dense, bm25, built.sentences)
        path = _switch(index_dir, tmp, name)
    seconds = time.perf_counter() - started
    report = BuildReport(
        generation=generation,
        articles=len(chunked),
        passages=len(passages),
        skipped=skipped,
        added=sorted(set(now) - set(before)),
        changed=sorted(s for s in now if s in before and before[s] != now[s]),
        removed=sorted(set(before) - set(now)),
        unchanged=sorted(s for s in now if before.get(s) == now[s]),
        embedded=embedded,
        reused=len(passages) - embedded,
        seconds=seconds,
        path=path,
        embedded_sentences=built.embedded_sentences,
    )
    log.info("built generation %d: %s", generation, report.to_dict())
    return report


def _last_generation(index_dir: Path) -> int:
    numbers = [int(p.name[4:]) for p in index_dir.glob("gen-*") if p.name[4:].isdigit()]
    current = current_generation_path(index_dir)
    if current is not None and current.name[4:].isdigit():
        numbers.append(int(current.name[4:]))
    return max(numbers, default=0)
