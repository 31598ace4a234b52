"""The news-archive QA evaluation (eval news): gold hits, metrics and abstention."""

import json

import pytest

from karabakh_qa.errors import BadRequest
from karabakh_qa.evaluate_qa import archive_service, is_gold, judge, load_dev

HOUSES = {  # the seeds' houses question, its gold in 001 and in the two copies of it
    "q": "How many houses have been destroyed?",
    "file": "001_8494f7265b4a0e6d.txt",
    "also": ["000_f1506f499b213b55.txt", "003_10ac5b029c183a1d.txt"],
    "gold": "destroyed 1,165 houses",
    "type": "number",
}


def write_dev(tmp_path, questions, unanswerable=()):
    path = tmp_path / "dev.json"
    path.write_text(json.dumps({"questions": questions, "unanswerable": list(unanswerable)}))
    return load_dev(path)


def test_gold_hits_need_the_file_and_the_snippet(seed_service, tmp_path):
    dev = write_dev(
        tmp_path,
        [
            {**HOUSES, "gold": "destroyed 1,165 HOUSES"},
            {**HOUSES, "file": "002_90d5f99ab22388b6.txt", "also": []},
        ],
    )
    hits = seed_service.search(dev.answerable[0].q, 10).hits
    gold = [h.rank for h in hits if is_gold(h, dev.answerable[0])]
    assert gold and all(
        "1165 houses" in h.passage.text.replace(",", "") for h in hits if h.rank in gold
    )
    assert not any(is_gold(h, dev.answerable[1]) for h in hits)  # right words, wrong file


def test_judge_reports_hits_by_type_and_abstention(seed_settings, embedder, tmp_path):
    dev = write_dev(
        tmp_path,
        [
            {**HOUSES, "in_lede": False},
            {
                "q": "Which recipe uses saffron and lobster?",
                "file": "001_8494f7265b4a0e6d.txt",
                "gold": "saffron and lobster",  # in no article
                "type": "reason",
            },
        ],
        [{"q": "Who won the 1998 football world cup final?"}],
    )
    with archive_service(seed_settings, embedder, seed_settings.articles_dir) as service:
        report = judge(service, dev)
    assert report["questions"] == 2 and report["unanswerable"] == 1
    assert report["by"]["number"]["Hit@1"] == 1.0
    assert report["by"]["reason"]["Hit@10"] == 0.0
    assert report["Hit@1"] == 0.5 and report["MRR@10"] == 0.5
    assert report["abstained"] == 1.0
    assert [r["rank"] for r in report["per_question"]] == [1, None, None]


def test_a_malformed_dev_set_is_a_clear_error(tmp_path):
    path = tmp_path / "dev.json"
    path.write_text('{"questions": [{"q": "no file"}]}')
    with pytest.raises(BadRequest, match="dev set .* is unreadable"):
        load_dev(path)
