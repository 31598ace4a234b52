"""BM25 over segments equals rank-bm25's BM25Okapi over the live passages."""

import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from karabakh_qa.service import SearchService
from karabakh_qa.sparse import tokenize
from karabakh_qa.store.embedded import bm25
from karabakh_qa.store.embedded.bm25 import segment_df
from karabakh_qa.store.embedded.rows import embed_text

from ..conftest import make_settings, write

WORDS = [
    "".join(chr(97 + (i * 7 + k * 3) % 26) for k in range(3 + i % 4)) + "x" for i in range(300)
]


def article(rng: np.random.Generator) -> str:
    weights = 1.0 / np.arange(1, len(WORDS) + 1)  # Zipf-like: some terms get the idf floor
    words = rng.choice(WORDS, size=int(rng.integers(3, 40)), p=weights / weights.sum())
    return " ".join(words) + ".\n"


def assert_parity(service: SearchService, queries: list[str]) -> int:
    snap = service.index()
    rows = np.flatnonzero(snap.live_mask)
    docs = [tokenize(embed_text(snap.passage(int(r)), True)) for r in rows]
    s = service.settings
    ref = BM25Okapi(docs, k1=s.bm25_k1, b=s.bm25_b, epsilon=s.bm25_epsilon)
    worst = 0.0
    for q in queries:
        terms = tokenize(q)
        ours = snap.bm25.scores(snap.bm25.query(terms))
        worst = max(worst, float(np.abs(ours[rows] - ref.get_scores(terms)).max()))
        assert not ours[~snap.live_mask].any()  # deleted rows never score
    assert worst < 1e-6
    return len(snap.segments)


@pytest.fixture
def grown(tmp_path, embedder):
    """Four batches of articles, with changes and removals between them."""
    rng = np.random.default_rng(7)
    settings = make_settings(tmp_path)
    service = SearchService(settings, embedder)
    folder = settings.articles_dir
    for batch in range(4):
        for i in range(60):
            write(folder, f"b{batch}-{i:03d}.txt", article(rng))
        for i in range(0, 60, 7):  # change some of the previous batch, remove others
            if batch:
                write(folder, f"b{batch - 1}-{i:03d}.txt", article(rng))
                (folder / f"b{batch - 1}-{i + 1:03d}.txt").unlink()
        service.build()
    return service


def test_scores_equal_bm25okapi_across_segments_with_deletions(grown):
    rng = np.random.default_rng(8)
    queries = [" ".join(rng.choice(WORDS, size=int(rng.integers(1, 6)))) for _ in range(40)]
    queries += [WORDS[0], f"{WORDS[0]} {WORDS[0]} {WORDS[1]}", "unknownword"]
    segments = grown.index().segments
    assert len(segments) >= 3 and any(live is not None for live in grown.index().live)
    assert assert_parity(grown, queries) >= 3
    grown.build(optimize=True)  # merged into one segment: still exact
    assert assert_parity(grown, queries) == 1


def test_parity_on_the_seeds(seed_service):
    queries = [
        "How many houses have been destroyed?",
        "ceasefire Moscow talks",
        "Su-25 jet shot down",
        "bread recipe",
        "Ganja Ganja attack",  # repeated term counts twice, as in rank-bm25
    ]
    assert_parity(seed_service, queries)


def test_every_live_passage_of_every_segment_is_a_verbatim_span(grown):
    snap = grown.index()
    folder = grown.settings.articles_dir
    checked = 0
    for pos, seg in enumerate(snap.segments):
        for local in range(seg.rows):
            row = int(snap.bases[pos]) + local
            if not snap.live_mask[row]:
                continue
            p = snap.passage(row)
            text = (folder / p.source).read_bytes().decode("utf-8")
            assert text[p.start : p.end] == p.text
            checked += 1
    assert checked == snap.bm25.n and len(snap.segments) >= 3


def test_document_frequency_by_searching_the_few_deleted_rows(grown, monkeypatch):
    """A common term's live df, found by looking its postings up for the deleted
    rows, equals the count over the live mask and the brute-force count."""
    monkeypatch.setattr(bm25, "SEARCH_DELETED_BELOW", 2)  # this corpus is small
    snap = grown.index()
    (pos,) = [i for i, live in enumerate(snap.live) if live is not None][:1]
    seg, live, gone = snap.segments[pos], snap.live[pos], snap.bm25.deleted[pos]
    terms = seg.vocabulary()
    ptr = np.asarray(seg.a["postings_ptr"])
    assert (np.diff(ptr) > 2 * len(gone)).any()  # the search-the-deletions path is taken
    fast = segment_df(seg, live, terms, gone)
    assert (fast == segment_df(seg, live, terms)).all()
    docs = np.asarray(seg.a["postings_docs"])
    brute = [int(live[docs[ptr[i] : ptr[i + 1]]].sum()) for i in range(len(terms))]
    assert fast.tolist() == brute
    monkeypatch.setattr(bm25, "GATHER_POSTINGS", 5)  # live bits gathered a few terms at a time
    monkeypatch.setattr(bm25, "SEARCH_PAIRS", 3 * len(gone))  # three terms searched a pass
    assert segment_df(seg, live, terms).tolist() == brute
    assert segment_df(seg, live, terms, gone).tolist() == brute


def test_saturation_cache_gives_the_same_scores_and_stays_bounded(grown, monkeypatch):
    """Kept saturations (forced for every term here) score bit for bit as computed
    ones, from the first query to the ones served from the cache after evictions."""
    rng = np.random.default_rng(11)
    queries = [" ".join(rng.choice(WORDS, size=int(rng.integers(1, 6)))) for _ in range(30)]
    view = grown.index().bm25
    want = [view.scores(view.query(tokenize(q))) for q in queries]
    assert view._cached_bytes == 0  # no postings list of this corpus is that long
    monkeypatch.setattr(bm25, "SATURATION_CACHE_MIN", 1)
    monkeypatch.setattr(bm25, "SATURATION_CACHE_BYTES", 4096)
    for _ in range(2):
        for q, expected in zip(queries, want, strict=True):
            assert np.array_equal(view.scores(view.query(tokenize(q))), expected)
            assert 0 < view._cached_bytes <= 4096
    assert view._cache  # served from the cache on the second round


def test_the_refresher_warms_a_new_generations_saturations(grown, monkeypatch):
    """Before a switch the new view recomputes, for its own avgdl, the saturations the
    serving view kept; its scores are those of a cold view, bit for bit."""
    from karabakh_qa.store.embedded.manifest import current_name

    monkeypatch.setattr(bm25, "SATURATION_CACHE_MIN", 1)
    rng = np.random.default_rng(5)
    queries = [" ".join(rng.choice(WORDS, size=3)) for _ in range(10)]
    serving = grown.index()
    for q in queries:
        serving.bm25.scores(serving.bm25.query(tokenize(q)))
    kept = set(serving.bm25._cache)
    assert kept
    write(grown.settings.articles_dir, "late.txt", article(rng))
    grown.build(only=["late.txt"])  # installs the new generation (not warmed: no refresher)
    name = current_name(grown.settings.index_dir)
    grown._index = serving  # as if the refresher had not switched yet
    warmed = grown._open(name, ready=True).bm25
    cold = grown._open(name).bm25
    assert warmed.avgdl != serving.bm25.avgdl  # the saturations had to be recomputed
    positions = {id(s): p for p, s in enumerate(warmed.segments)}
    assert set(warmed._cache) == {(positions[id(serving.bm25.segments[p])], t) for p, t in kept}
    assert not cold._cache
    for q in queries:
        terms = tokenize(q)
        assert np.array_equal(warmed.scores(warmed.query(terms)), cold.scores(cold.query(terms)))


def test_values_found_in_sorted_ranges_match_a_brute_count(monkeypatch):
    rng = np.random.default_rng(11)
    docs = np.concatenate(
        [np.sort(rng.choice(60, int(n), replace=False)) for n in (0, 1, 7, 40, 3)]
    )
    bounds = np.cumsum([0, 0, 1, 7, 40, 3])
    starts, ends = bounds[:-1], bounds[1:]
    values = np.array([0, 5, 17, 33, 59, 61])
    brute = [int(np.isin(values, docs[a:b]).sum()) for a, b in zip(starts, ends, strict=True)]
    for pairs in (1, 6, 13, 1 << 20):  # a range a pass, or several
        monkeypatch.setattr(bm25, "SEARCH_PAIRS", pairs)
        assert bm25._found_in_ranges(docs, starts, ends, values).tolist() == brute
    assert bm25._found_in_ranges(docs, starts, ends, values[:0]).tolist() == [0] * 5
