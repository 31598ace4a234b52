import mmap
import os
from pathlib import Path

import faiss
import numpy as np
import pytest

from karabakh_qa.store.embedded import vectors
from karabakh_qa.store.embedded.files import whole_pages
from karabakh_qa.store.embedded.segment import COLD_COLUMNS


def test_six_bit_sentence_codes_pack_four_to_three_bytes_and_round_trip():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 384)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    codec = vectors.SENTENCE_CODEC
    codes = vectors.encode(x, codec)
    assert codes.max() <= 63
    packed = vectors.pack_codes(codes, codec)
    assert packed.shape == (5, 288)
    assert (vectors.unpack_codes(packed, codec) == codes).all()
    decoded = vectors.decode(codes, codec)
    inside = np.abs(x) < 0.25
    assert np.abs(decoded - x)[inside].max() <= 0.25 / 63 + 1e-6  # half a 6-bit step
    assert (vectors.encode(decoded, codec) == codes).all()  # re-encoding is exact
    q = x[0]
    assert np.allclose(vectors.cosines(packed, q, codec), decoded @ q, atol=1e-5)
    empty = vectors.pack_codes(np.zeros((0, 384), np.uint8), codec)
    assert empty.shape == (0, 288)


def mapped_rss_kb(folder) -> int:
    """Resident kB of this process's maps of files under ``folder`` (Linux smaps)."""
    total, inside = 0, False
    with open("/proc/self/smaps") as fh:
        for line in fh:
            first = line.split()[0]
            if "-" in first and not first.endswith(":"):
                inside = str(folder) in line
            elif inside and first == "Rss:":
                total += int(line.split()[1])
    return total


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="needs Linux smaps")
def test_release_unmaps_the_cold_columns_and_answers_stay(tmp_path, embedder):
    from karabakh_qa.service import SearchService

    from ..conftest import make_settings, write

    service = SearchService(make_settings(tmp_path), embedder)
    rng = np.random.default_rng(3)
    words = [f"w{i}x" for i in range(400)]
    for i in range(150):
        paras = [" ".join(rng.choice(words, 12)) + "." for _ in range(8)]
        write(service.settings.articles_dir, f"a{i:03d}.txt", "\n\n".join(paras) + "\n")
    service.build()
    index = service.index()
    question = " ".join(words[:4])
    answer = [h.passage.id for h in service.search(question, 5).hits]
    cold = 0
    for seg in index.segments:
        for key in COLD_COLUMNS:
            cold += seg.a[key].nbytes
            int(np.asarray(seg.a[key]).view(np.uint8).sum())  # every page resident
    before = mapped_rss_kb(service.settings.index_dir)
    index.release()
    after = mapped_rss_kb(service.settings.index_dir)
    slack = 2 * len(COLD_COLUMNS) * len(index.segments) * mmap.PAGESIZE  # partial end pages
    assert (before - after) * 1024 >= cold - slack > 0
    assert [h.passage.id for h in service.search(question, 5).hits] == answer


class Unread:
    """Stands in for a mapped column that no question may read through the map."""

    def __init__(self, key: str) -> None:
        self.key = key

    def __getitem__(self, _: object) -> None:
        raise AssertionError(f"column {self.key} read through the map")

    __getattr__ = __getitem__


def test_questions_read_sentences_and_records_without_mapping_them(tmp_path, embedder, monkeypatch):
    from karabakh_qa.service import SearchService

    from ..conftest import make_settings, write

    service = SearchService(make_settings(tmp_path), embedder)
    rng = np.random.default_rng(5)
    words = [f"w{i}x" for i in range(300)]
    for i in range(120):
        paras = [
            " ".join(" ".join(rng.choice(words, 9)) + "." for _ in range(int(rng.integers(1, 6))))
            for _ in range(6)
        ]
        write(service.settings.articles_dir, f"a{i:03d}.txt", "\n\n".join(paras) + "\n")
    service.build()
    index = service.index()
    seg = index.segments[0]
    bounds, ptr = seg.a["sent_bounds"], seg.a["sent_term_ptr"]
    local = np.array([seg.rows - 1, 0, 37, 38, 5])
    got = seg.sentences_of(local)
    codes = [seg.a["sent_codes"][bounds[r] : bounds[r + 1]] for r in local]
    assert got.bounds.tolist() == np.cumsum([0, *(len(c) for c in codes)]).tolist()
    assert (got.codes == np.concatenate(codes)).all()
    sentences = [s for r in local for s in range(bounds[r], bounds[r + 1])]
    for n, s in enumerate(sentences):  # each sentence's term ids, rebased
        mine = got.term_ids[got.term_ptr[n] : got.term_ptr[n + 1]]
        assert mine.tolist() == seg.a["sent_term_ids"][ptr[s] : ptr[s + 1]].tolist()
    monkeypatch.delattr(os, "preadv", raising=False)  # macOS has pread alone
    again = seg.sentences_of(local)
    assert (again.codes == got.codes).all() and (again.term_ids == got.term_ids).all()
    monkeypatch.undo()
    empty = seg.sentences_of(np.zeros(0, np.int64))
    assert empty.bounds.tolist() == [0] and empty.codes.shape == (0, seg.a["sent_codes"].shape[1])

    questions = [" ".join(rng.choice(words, 3)) for _ in range(10)]
    answers = [service.search(q, 5).to_dict()["results"] for q in questions]
    assert all(answers)
    # Read with pread (segment.ColdReads): through the map, the pages of the rows a
    # question reads, and the whole page-cache folios around them, would stay resident.
    for key in ("sent_codes", "sent_term_ids", "passages_blob", "articles_blob"):
        seg.a[key] = Unread(key)
    seg._article_cache.clear()
    index._passages.clear()
    assert [service.search(q, 5).to_dict()["results"] for q in questions] == answers


def test_pages_of_codes_faiss_owns_are_never_dropped(tmp_path):
    from karabakh_qa.store.embedded.vectors import _file_range

    owned = faiss.IndexScalarQuantizer(8, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_L2)
    owned.train(np.random.default_rng(0).random((600, 8), dtype=np.float32))
    owned.add(np.random.default_rng(1).random((600, 8), dtype=np.float32))
    path = tmp_path / "v.faiss"
    faiss.write_index(owned, str(path))
    assert _file_range(owned.codes, path) is None  # in memory: not a map of the file
    mapped = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC)
    found = _file_range(mapped.codes, path)
    assert found is None or found[1] % mmap.PAGESIZE == 0  # whole pages of the file only


def test_whole_pages_stay_inside_the_range():
    page = mmap.PAGESIZE
    assert whole_pages(page, 3 * page) == (page, 3 * page)
    assert whole_pages(page + 1, 3 * page) == (2 * page, 2 * page)  # both ends rounded in
    assert whole_pages(10, page) == (page, 0)  # no whole page inside
