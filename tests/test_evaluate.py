"""The evaluation command on a tiny BEIR-layout fixture, metrics computed by hand.

q1 "zebra": only d1 (relevant) shares a word -> rank 1 for every system.
q2 "apple banana": d2 has both words (not relevant), d3 "apple grape" one (relevant)
-> rank 2 for every system: nDCG@10 = 1/log2(3), RR = 1/2, R@1 = 0, R@5 = 1.
q4 "apple zebra", d3 relevant: the systems part. BM25 weighs the rarer "zebra"
(1 document of 6, "apple" 2) and ranks d1 first, d3 second; the dense hashed
bag of words has cosine 1/2 with the two-word d3 and less with the longer d1 and
d2, so d3 first; the fusions follow the dense order here.
Means over q1, q2, q4: BM25 nDCG@10 (1 + 0.63093 + 0.63093)/3 = 0.75395, MRR
(1 + 1/2 + 1/2)/3 = 0.66667, R@1 1/3; dense and the fusions nDCG@10
(1 + 0.63093 + 1)/3 = 0.87698, MRR 0.83333, R@1 2/3; Recall@100 and R@5 1.
"""

from pathlib import Path

import pytest
from click.testing import CliRunner

from karabakh_qa.cli import main
from karabakh_qa.evaluate import EmbeddingCache, load_beir, load_squad

TINY = Path(__file__).parent / "data" / "tiny_beir"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KARABAKH_QA_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.parametrize("store", ["embedded", "milvus"])
def test_eval_beir_prints_hand_computed_metrics(tmp_path, cache, store):
    """The same figures when the questions go through a Milvus Lite collection: its
    BM25 (Lucene's) orders these three questions as rank-bm25 does."""
    run = tmp_path / "tiny.run"
    where = ["--store", store, "--milvus-uri", str(tmp_path / "eval.db")]
    result = CliRunner().invoke(
        main,
        ["eval", "beir", str(TINY), "--model", "hash-bow-64", "--run-out", str(run), *where],
    )
    assert result.exit_code == 0, result.output
    rows = {}
    for line in result.output.splitlines():
        parts = line.split()
        if len(parts) > 5 and parts[0] in (
            "BM25",
            "dense",
            "RRF",
            "BM25+dense",
            "default",
            "learned",
        ):
            rows[" ".join(parts[:-5])] = parts[-5:]
    fused = ["0.8770", "1.0000", "0.8333", "0.6667", "1.0000"]
    assert rows == {
        "BM25": ["0.7540", "1.0000", "0.6667", "0.3333", "1.0000"],
        "dense": fused,
        "RRF k=60": fused,
        "BM25+dense z-score 0.6/0.4": fused,
        "default (zscore 1,1,2,0.6)": fused,
        "learned second phase": fused,
    }
    lines = [line.split() for line in run.read_text().splitlines()]
    assert lines[0][:4] == ["q1", "Q0", "d1", "1"] and lines[0][5] == "karabakh-qa"
    assert [line[2] for line in lines if line[0] == "q2"][:2] == ["d2", "d3"]
    assert [line[2] for line in lines if line[0] == "q4"][:2] == ["d3", "d2"]
    assert [int(line[3]) for line in lines if line[0] == "q2"] == [1, 2, 3, 4, 5, 6]
    assert len({(line[0], line[2]) for line in lines}) == len(lines)  # each doc once
    assert EmbeddingCache(cache / "embeddings", "hash-bow-64").path.exists()
    assert (tmp_path / "eval.db").exists() == (store == "milvus")  # the questions went there


def test_beir_loader_reads_crlf_qrels_and_drops_unjudged_queries():
    c = load_beir(TINY, "test")
    assert c.qrels == {"q1": {"d1": 1}, "q2": {"d3": 1}, "q4": {"d3": 1}}
    assert sorted(c.queries) == ["q1", "q2", "q4"] and len(c.docs) == 6  # q3 unjudged


def test_missing_split_is_a_user_error():
    result = CliRunner().invoke(
        main, ["eval", "beir", str(TINY), "--split", "train", "--model", "hash-bow-64"]
    )
    assert result.exit_code == 1 and "qrels/train.tsv is missing" in result.output


def test_squad_ids_and_split(tmp_path):
    path = tmp_path / "squad.json"
    path.write_text(
        '{"data": [{"title": "A_b", "paragraphs": [{"context": "One.", "qas": [{"id": "x1", '
        '"question": "q?"}]}, {"context": "Two.", "qas": [{"id": "x2", "question": "r?"}]}]},'
        '{"title": "C", "paragraphs": [{"context": "Three.", "qas": [{"id": "y", "question": "s?"}]}]}]}'
    )
    tune, report = load_squad(path, "tune"), load_squad(path, "report")
    assert tune.qrels == {"x1": {"A_b#0": 1}, "x2": {"A_b#1": 1}}
    assert report.qrels == {"y": {"C#0": 1}}
    assert [d.source for d in report.docs] == ["A_b#0", "A_b#1", "C#0"]
    assert report.docs[0].title == "A b"


def test_token_f1_is_squads():
    from karabakh_qa.evaluate import token_f1

    assert token_f1("the Denver Broncos", "Denver Broncos") == 1.0
    assert token_f1("Broncos", "Denver Broncos") == pytest.approx(2 / 3)
    assert token_f1("Carolina", "Denver Broncos") == 0.0
    assert token_f1("", "Denver") == 0.0
