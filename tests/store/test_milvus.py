"""The Milvus store against Milvus Lite (the C++ engine in a child process): one
Lite database per test run, a collection per test."""

from __future__ import annotations

import itertools
import json
import shutil
from dataclasses import replace

import numpy as np
import pytest

from karabakh_qa.config import PROJECT_ROOT
from karabakh_qa.embed import HashEmbedder
from karabakh_qa.errors import NotFound
from karabakh_qa.service import SearchService
from karabakh_qa.store.milvus import Found, MilvusSettings, MilvusStore, StoreUnavailable
from karabakh_qa.web import create_app

from ..conftest import make_settings, write

SEED_DEV = PROJECT_ROOT / "tests" / "data" / "seed_dev.json"

_names = itertools.count()


@pytest.fixture(scope="module")
def lite(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("milvus") / "lite.db")


@pytest.fixture
def store(lite: str, embedder) -> MilvusStore:
    s = MilvusStore(MilvusSettings(uri=lite, collection=f"t{next(_names)}"), embedder.dim)
    yield s
    s.close()


def verbatim(service: SearchService, found) -> bool:
    text = (service.settings.articles_dir / found.passage.source).read_text("utf-8")
    return text[found.passage.start : found.passage.end] == found.passage.text


def test_the_seeds_answer_verbatim_with_the_embedded_vectors(seed_service, store, embedder):
    snap = seed_service.index()
    live = snap.manifest.live_passages
    assert store.sync(snap) == {"added": 5, "changed": 0, "removed": 0, "rows": live}
    assert store.health() == {"status": "ok", "store": "milvus", "generation": 1, "passages": live}
    hits = store.lexical("How many people were killed in the missile attack on Ganja?", 10)
    assert len(hits) == 10 and all(verbatim(seed_service, h) for h in hits)
    assert all("Ganja" in h.passage.text or "killed" in h.passage.text for h in hits[:3])
    # The dense side: Milvus's inner product over the decoded codes is the embedded
    # store's cosine, so the top list is the same.
    q = embedder.encode(["missile strike on Ganja"])[0]
    mine = store.dense(q, 5)
    rows = snap.dense_top(q, 5)
    assert [h.passage.id for h in mine] == [snap.passage(int(r)).id for r in rows]
    want = snap.dense_scores(q, np.asarray(rows, np.int64))
    assert np.allclose([h.score for h in mine], want, atol=1e-5)
    assert store.sync(snap) == {"added": 0, "changed": 0, "removed": 0, "rows": 0}


def test_an_article_is_added_changed_and_removed_by_file(seed_service, store):
    store.sync(seed_service.index())
    folder = seed_service.settings.articles_dir
    write(folder, "new.txt", "Zyxwv harbour reopened on Tuesday.\n\nShips queued for a day.\n")
    seed_service.build()
    assert store.sync(seed_service.index())["added"] == 1
    (found,) = store.lexical("Zyxwv harbour", 1)
    assert found.passage.source == "new.txt" and verbatim(seed_service, found)
    terms = ["zyxwv", "harbour", "ganja", "nosuchterm"]
    assert store.df(terms).tolist() == seed_service.index().bm25.df(terms).tolist() == [1, 1, 14, 0]
    old_id = found.passage.id
    write(folder, "new.txt", "Zyxwv harbour stayed shut on Tuesday.\n\nShips queued for a week.\n")
    seed_service.build()
    assert store.sync(seed_service.index()) == {"added": 0, "changed": 1, "removed": 0, "rows": 2}
    assert store.records([old_id]) == {}  # the old version is gone, not hidden
    texts = {
        h.passage.text for h in store.lexical("Zyxwv harbour", 5) if h.passage.source == "new.txt"
    }
    assert texts == {"Zyxwv harbour stayed shut on Tuesday."}
    (folder / "new.txt").unlink()
    seed_service.build()
    assert store.sync(seed_service.index()) == {"added": 0, "changed": 0, "removed": 1, "rows": 0}
    assert not [h for h in store.lexical("Zyxwv harbour", 5) if h.passage.source == "new.txt"]
    assert store.df(["zyxwv", "harbour"]).tolist() == [0, 0]
    assert store.state().passages == seed_service.index().bm25.n


def test_groups_get_their_new_representative_when_it_leaves(seed_service, store):
    snap = seed_service.index()
    store.sync(snap)
    stored = {r["id"]: r["group"] for r in store.query("born >= 0", ("group",))}
    reps = {group for pid, group in stored.items() if group != pid}
    rep_files = {r["file"] for r in store.query(f"id in {json.dumps(sorted(reps))}", ("file",))}
    assert rep_files  # the seeds have copies: 000 and 001 repeat 003
    gone = sorted(rep_files)[0]
    (seed_service.settings.articles_dir / gone).unlink()
    seed_service.build()
    snap = seed_service.index()
    assert store.sync(snap)["removed"] == 1
    now = {r["id"]: r["group"] for r in store.query("born >= 0", ("group",))}
    want = {}
    for name in snap.article_names():
        for row in snap.article(name)[1]:
            want[snap.passage(row).id] = snap.passage(row).group
    assert now == want  # every row names a live representative, as the embedded index


def test_relations_follow_an_article_that_is_removed(seed_service, store):
    snap = seed_service.index()
    store.sync(snap)
    names = snap.article_names()
    assert {n: store.relations_of(n) for n in names} == {n: snap.relations_of(n) for n in names}
    linked = next(n for n in names if snap.relations_of(n))
    (seed_service.settings.articles_dir / linked).unlink()
    seed_service.build()
    snap = seed_service.index()
    store.sync(snap)
    after = snap.article_names()
    assert {n: store.relations_of(n) for n in after} == {n: snap.relations_of(n) for n in after}
    assert store.relations_of(linked) == []


def extras(store: MilvusStore) -> list:
    return [h for h in store.lexical("Qwerty report", 10) if h.passage.source.startswith("extra")]


def test_a_sync_that_stops_half_way_is_invisible_and_rolled_back(seed_service, store, monkeypatch):
    store.sync(seed_service.index())
    before = store.health()["passages"]
    folder = seed_service.settings.articles_dir
    for i in range(3):
        write(folder, f"extra-{i}.txt", f"Qwerty report number {i} about the port.\n")
    seed_service.build()
    inserts = 0
    real = store.client.insert

    def insert_once(*args, **kwargs):  # the first batch lands, then the store fails
        nonlocal inserts
        inserts += 1
        if inserts > 1:
            raise ConnectionError("connection reset")
        return real(*args, **kwargs)

    monkeypatch.setattr("karabakh_qa.store.milvus.INSERT_BATCH", 1)
    monkeypatch.setattr(store.client, "insert", insert_once)
    with pytest.raises(StoreUnavailable, match="connection reset"):
        store.sync(seed_service.index())
    assert store.state().pending == 2
    assert store.health() == {
        "status": "ok",
        "store": "milvus",
        "generation": 1,
        "passages": before,
    }
    assert not extras(store)  # the row that landed is invisible
    monkeypatch.setattr(store.client, "insert", real)
    assert store.sync(seed_service.index())["added"] == 3
    assert store.health()["passages"] == before + 3
    assert len(extras(store)) == 3


def test_a_reopened_store_keeps_its_data(seed_service, lite, embedder):
    name = f"t{next(_names)}"
    first = MilvusStore(MilvusSettings(uri=lite, collection=name), embedder.dim)
    first.sync(seed_service.index())
    health = first.health()
    first.close()
    again = MilvusStore(MilvusSettings(uri=lite, collection=name), embedder.dim)
    assert again.health() == health and health["generation"] == 1
    assert again.sync(seed_service.index())["rows"] == 0
    again.close()


def test_an_unreachable_store_is_one_clean_error(embedder):
    with pytest.raises(StoreUnavailable) as caught:
        MilvusStore(MilvusSettings(uri="http://127.0.0.1:9", timeout=1.0), embedder.dim)
    error = caught.value.to_dict()
    assert error["status"] == 503 and error["ok"] is False
    assert error["error"].startswith("cannot reach the Milvus store at http://127.0.0.1:9: ")
    assert "\n" not in error["error"]


def test_a_store_of_an_older_layout_is_refused_to_readers_and_rewritten_by_a_sync(
    seed_service, store
):
    snap = seed_service.index()
    store.sync(snap)
    old = json.loads(store.state().to_json())
    del old["layout"]  # as written before the layout was recorded
    row = {"key": "state", "value": json.dumps(old), "v": [0.0, 0.0]}
    store.client.upsert(store.meta, [row])
    with pytest.raises(
        StoreUnavailable, match=r"layout 1, this one reads 2\): run `karabakh-qa index --full`"
    ):
        store.articles()
    counts = store.sync(snap)
    assert counts["added"] == 5 and store.stats()["articles"] == 5


# --- the service on a Milvus store -------------------------------------------------


@pytest.fixture(scope="module")
def milvus_service(tmp_path_factory, lite: str, seed_template) -> SearchService:
    """The seeds, indexed once into a Milvus collection (hash embedder)."""
    root = tmp_path_factory.mktemp("milvus-service")
    shutil.copytree(seed_template.articles_dir, root / "articles")
    settings = make_settings(root, store="milvus", milvus_uri=lite, milvus_collection="seeds")
    service = SearchService(settings, HashEmbedder(64))
    service.build()
    return service


def test_the_seed_questions_get_the_embedded_stores_first_file(milvus_service, seed_service):
    questions = [q["q"] for q in json.loads(SEED_DEV.read_text("utf-8"))["questions"]]
    same = with_versions = 0
    for question in questions:
        mine, theirs = milvus_service.search(question, k=3), seed_service.search(question, k=3)
        for hit in mine.hits:
            assert verbatim(milvus_service, Found(hit.passage, 0.0))
        same += mine.hits[0].passage.source == theirs.hits[0].passage.source
        # what a hit says across sources is the same from either store
        for mine_hit, their_hit in zip(mine.hits, theirs.hits, strict=False):
            if mine_hit.passage.id == their_hit.passage.id:
                with_versions += bool(mine_hit.versions)
                assert mine_hit.versions == their_hit.versions
                assert mine_hit.corroboration == their_hit.corroboration
    assert same == len(questions) == 32  # the target: at least 90 %
    assert with_versions > 0  # the seeds' copies and versions were compared
    assert milvus_service.health()["store"]["passages"] == seed_service.index().bm25.n


def test_figures_and_copies_come_through_the_milvus_store(milvus_service):
    result = milvus_service.search("How many people were killed in the missile attack on Ganja?")
    (figures,) = result.figures
    assert [(v["value"], v["file"][:3]) for v in figures["values"]] == [
        (9, "003"),
        (13, "002"),
        (5, "004"),
    ]
    top = result.hits[0]
    assert top.passage.source.startswith("003")
    # a paragraph of 003 that 000 and 001 copy: its copies come through as "also in"
    copied = milvus_service.search("Armenian missile attack on Ganja killing nine people")
    hit = next(h for h in copied.hits if h.passage.source.startswith("003") and h.also_in)
    assert sorted(c["source"][:3] for c in hit.also_in) == ["000", "001"]


def test_filters_apply_in_milvus_as_in_the_embedded_store(milvus_service, seed_service):
    dated = "003_10ac5b029c183a1d.txt"  # the one article with a date line (2020-10-11)
    for since, until in (("2020-10-11", "2020-10-11"), ("2030-01-01", None)):
        mine = milvus_service.search("Ganja", sources=[dated], since=since, until=until)
        theirs = seed_service.search("Ganja", sources=[dated], since=since, until=until)
        assert [h.passage.id for h in mine.hits] == [h.passage.id for h in theirs.hits]
    assert not mine.hits  # nothing matches: no "in []" reaches Milvus


def test_both_stores_implement_the_store_seam_and_their_views_the_view_seam(
    milvus_service, seed_service, embedder
):
    from karabakh_qa.store.embedded.store import EmbeddedStore
    from karabakh_qa.store.milvus import MilvusStore
    from karabakh_qa.store.protocol import Filters, Store, StoreView

    q = embedder.encode(["Ganja"])[0]
    stores = (milvus_service.store(), seed_service.store())
    assert [type(s) for s in stores] == [MilvusStore, EmbeddedStore]
    for store in stores:
        view = store.view("Ganja", lambda: q, 10, Filters())
        assert isinstance(store, Store) and isinstance(view, StoreView)
        assert view.total_rows >= 10


def test_articles_passages_and_statistics_read_from_milvus_equal_the_embedded_ones(
    milvus_service, seed_service
):
    mine, theirs = milvus_service.store(), seed_service.store()
    assert mine.articles() == theirs.articles()  # metadata: title, date, sha256, passages
    assert mine.article_names() == theirs.article_names()
    for name in theirs.article_names():
        assert mine.article(name) == theirs.article(name)  # the passages, in text order
    meta, passages = theirs.article("003_10ac5b029c183a1d.txt")
    assert mine.passage(passages[2].id) == passages[2]
    assert mine.passage("0000000000000000") is None and mine.article("nope.txt") is None
    assert {k: v for k, v in mine.stats().items() if k != "generation"} == {
        "articles": 5,
        "passages": theirs.stats()["passages"],
    }


def test_the_article_and_passage_pages_read_the_milvus_store(milvus_service, seed_service):
    store = milvus_service.store()
    meta, passages = milvus_service.article("003_10ac5b029c183a1d.txt")
    assert meta["date"] == "2020-10-11" and passages == store.article(meta["source"])[1]
    p, found = milvus_service.passage(passages[0].id)
    assert (p, found) == (passages[0], meta)
    with pytest.raises(NotFound):
        milvus_service.passage("not-an-id")
    client = create_app(milvus_service.settings, service=milvus_service).test_client()
    page = client.get(f"/api/articles/{meta['source']}").get_json()
    assert [x["id"] for x in page["passages"]] == [x.id for x in passages]
    assert client.get(f"/api/passages/{p.id}").get_json()["passage"]["text"] == p.text
    listed = client.get("/api/articles?since=2020-10-11").get_json()["articles"]
    assert meta["source"] in [a["file"] for a in listed]
    theirs = seed_service.article_list(since="2020-10-11")
    assert [a["file"] for a in listed] == [a["file"] for a in theirs]
    assert "Ganja" in client.get(f"/articles/{meta['source']}").get_data(as_text=True)


def test_the_manifest_records_the_store_and_ask_follows_it(milvus_service, embedder):
    settings = milvus_service.settings
    plain = SearchService(replace(settings, store="", milvus_uri=""), embedder)
    assert plain.index().manifest.extra["store"]["kind"] == "milvus"
    assert plain.health()["store"]["status"] == "ok"


def test_an_unreachable_milvus_is_a_503_and_a_degraded_health(tmp_path, seed_template, embedder):
    shutil.copytree(seed_template.articles_dir, tmp_path / "articles")
    shutil.copytree(seed_template.index_dir, tmp_path / "index")
    settings = make_settings(
        tmp_path, store="milvus", milvus_uri="http://127.0.0.1:9", milvus_timeout=0.5
    )
    client = create_app(settings, service=SearchService(settings, embedder)).test_client()
    answer = client.get("/api/ask?q=Ganja")
    assert answer.status_code == 503
    body = answer.get_json()
    assert body["ok"] is False and body["status"] == 503
    assert body["error"].startswith("cannot reach the Milvus store at http://127.0.0.1:9")
    health = client.get("/api/health").get_json()
    assert health["status"] == "degraded" and health["store"]["store"] == "milvus"
    assert "cannot reach the Milvus store" in health["reason"]


def test_a_build_syncs_its_diff_and_catches_up_after_a_failed_sync(
    tmp_path, seed_template, lite, embedder, monkeypatch
):
    shutil.copytree(seed_template.articles_dir, tmp_path / "articles")
    settings = make_settings(tmp_path, store="milvus", milvus_uri=lite, milvus_collection="diffs")
    service = SearchService(settings, embedder)
    service.build()
    compared = []
    real = MilvusStore.stored_files

    def spy(self, state=None, names=None):
        compared.append(names)
        return real(self, state, names)

    monkeypatch.setattr(MilvusStore, "stored_files", spy)
    write(settings.articles_dir, "a.txt", "Zyxwv harbour reopened on Tuesday.\n")
    service.build()
    assert compared[-1] == ["a.txt"]  # only the build's diff was compared
    with monkeypatch.context() as m:  # Milvus fails during the next build's sync
        m.setattr(MilvusStore, "_apply", lambda *a: (_ for _ in ()).throw(StoreUnavailable("x")))
        write(settings.articles_dir, "b.txt", "Qwerty harbour shut on Wednesday.\n")
        with pytest.raises(StoreUnavailable):
            service.build()
    write(settings.articles_dir, "c.txt", "Asdfg harbour opened on Thursday.\n")
    service.build()
    assert compared[-1] is None  # a generation behind: every file compared
    found = {h.passage.source for h in service.search("harbour", k=10).hits}
    assert {"a.txt", "b.txt", "c.txt"} <= found
