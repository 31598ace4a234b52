"""The Milvus store against Milvus Lite (the C++ engine in a child process): one
Lite database per test run, a collection per test."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from karabakh_qa.service import SearchService
from karabakh_qa.store.milvus import MilvusSettings, MilvusStore, StoreUnavailable

from ..conftest import write

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
