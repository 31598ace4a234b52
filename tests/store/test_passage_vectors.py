"""Passage vectors made from their sentences' vectors (Settings.passage_vectors)."""

import numpy as np
import pytest

from karabakh_qa.config import Settings
from karabakh_qa.errors import BadRequest
from karabakh_qa.sentences import passage_sentences, sentence_embed_text
from karabakh_qa.service import SearchService
from karabakh_qa.store.embedded.build import build_index
from karabakh_qa.store.embedded.rows import embed_text, sentence_means
from karabakh_qa.store.embedded.vectors import DEFAULT_CODEC, encode

from ..conftest import make_settings, write

STORM = (
    "Storm hits the coast\n\n"
    "The storm hit the coast on Monday night. Officials said 12 people were killed.\n\n"
    "Power was cut to 30,000 homes.\n\n"
    "Schools will stay closed until Thursday. The mayor asked residents to stay indoors."
    " Rescue teams from three towns joined the search.\n"
)
BANK = "Rates held\n\nThe central bank held rates at 4.75%. The pound fell against the dollar.\n"


class Recording:
    """An embedder that remembers every text it was asked to embed."""

    def __init__(self, base):
        self.base, self.texts = base, []

    def __getattr__(self, name):
        return getattr(self.base, name)

    def encode(self, texts, batch_size=32):
        self.texts += list(texts)
        return self.base.encode(texts, batch_size)


def test_the_mean_is_weighted_by_length_and_a_unit_vector():
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], np.float16)
    got = sentence_means(vectors, np.array([30, 10, 7]), np.array([2, 1]))
    assert got[0] == pytest.approx(np.array([3.0, 1.0]) / np.sqrt(10.0))
    assert got[1] == pytest.approx([0.6, 0.8], abs=1e-3)  # float16 in


def test_unknown_passage_vectors_setting_is_a_bad_request():
    with pytest.raises(BadRequest, match="passage_vectors must be one of sentences, model"):
        Settings(passage_vectors="average")


def test_passages_are_never_embedded_whole_and_hold_their_sentences_mean(tmp_path, embedder):
    settings = make_settings(tmp_path, passage_vectors="sentences")
    write(settings.articles_dir, "storm.txt", STORM)
    write(settings.articles_dir, "bank.txt", BANK)
    recording = Recording(embedder)
    report = build_index(settings, recording)
    snap = SearchService(settings, embedder).index()
    assert snap.manifest.model.passage_vectors == "sentences"
    (seg,) = snap.segments
    passages = [seg.passage(r) for r in range(seg.rows)]
    multi = [p for p in passages if len(passage_sentences(p)) > 1]
    assert len(multi) == 3 and report.embedded == len(passages) == 4
    asked = set(recording.texts)
    for r, p in enumerate(passages):
        texts = [sentence_embed_text(p, s, True) for s in passage_sentences(p)]
        assert set(texts) <= asked
        if p in multi:
            assert embed_text(p, True) not in asked
        vecs = embedder.encode(texts).astype(np.float16)  # as a build keeps them
        lengths = np.array([len(t) for t in texts])
        want = sentence_means(vecs, lengths, np.array([len(texts)]))[0].astype(np.float16)
        assert np.array_equal(seg.vectors.codes[r], encode(want[None, :], DEFAULT_CODEC)[0])


def test_a_changed_article_keeps_the_codes_a_full_build_writes(tmp_path, embedder):
    settings = make_settings(tmp_path, passage_vectors="sentences")
    write(settings.articles_dir, "storm.txt", STORM)
    write(settings.articles_dir, "bank.txt", BANK)
    build_index(settings, embedder)
    write(settings.articles_dir, "storm.txt", STORM + "\nA second storm is expected on Friday.\n")
    build_index(settings, embedder)

    def codes(snap):
        out = {}
        for r in np.flatnonzero(snap.live_mask):
            seg, local = snap.locate(int(r))
            out[seg.passage(local).text] = seg.vectors.codes[local].tobytes()
        return out

    service = SearchService(settings, embedder)
    incremental = codes(service.index())
    build_index(settings, embedder, full=True)
    assert codes(SearchService(settings, embedder).index()) == incremental
    assert len(incremental) == 5


def test_changing_the_setting_rebuilds_the_index(tmp_path, embedder):
    settings = make_settings(tmp_path)
    write(settings.articles_dir, "storm.txt", STORM)
    build_index(settings, embedder)
    again = build_index(settings.replace(passage_vectors="sentences"), embedder)
    assert again.embedded == 3 and again.segments == 1
    model = SearchService(settings, embedder).index().manifest.model
    assert model.passage_vectors == "sentences"
