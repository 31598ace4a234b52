"""The evaluation command on a tiny BEIR-layout fixture, metrics computed by hand.

q1 "zebra": only d1 (relevant) shares a word -> rank 1 for every system.
q2 "apple banana": d2 has both words (not relevant), d3 "apple grape" one (relevant)
-> rank 2 for every system: nDCG@10 = 1/log2(3), RR = 1/2, R@1 = 0, R@5 = 1.
Means: nDCG@10 (1 + 0.63093)/2 = 0.81546, Recall@100 1, MRR@10 0.75, R@1 0.5, R@5 1.
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


def test_eval_beir_prints_hand_computed_metrics(tmp_path, cache):
    run = tmp_path / "tiny.run"
    result = CliRunner().invoke(
        main, ["eval", "beir", str(TINY), "--model", "hash-bow-64", "--run-out", str(run)]
    )
    assert result.exit_code == 0, result.output
    rows = {}
    for line in result.output.splitlines():
        parts = line.split()
        if len(parts) > 5 and parts[0] in ("BM25", "dense", "RRF", "BM25+dense", "default"):
            rows[" ".join(parts[:-5])] = parts[-5:]
    assert set(rows) == {
        "BM25",
        "dense",
        "RRF k=60",
        "BM25+dense z-score 0.6/0.4",
        "default (zscore 1,1,2,0.6)",
    }
    for values in rows.values():
        assert values == ["0.8155", "1.0000", "0.7500", "0.5000", "1.0000"]
    lines = [line.split() for line in run.read_text().splitlines()]
    assert lines[0][:4] == ["q1", "Q0", "d1", "1"] and lines[0][5] == "karabakh-qa"
    assert [line[2] for line in lines if line[0] == "q2"][:2] == ["d2", "d3"]
    assert [int(line[3]) for line in lines if line[0] == "q2"] == [1, 2, 3, 4, 5, 6]
    assert len({(line[0], line[2]) for line in lines}) == len(lines)  # each doc once
    assert EmbeddingCache(cache / "embeddings", "hash-bow-64").path.exists()


def test_beir_loader_reads_crlf_qrels_and_drops_unjudged_queries():
    c = load_beir(TINY, "test")
    assert c.qrels == {"q1": {"d1": 1}, "q2": {"d3": 1}}
    assert sorted(c.queries) == ["q1", "q2"] and len(c.docs) == 6


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
