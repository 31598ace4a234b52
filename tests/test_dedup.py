from karabakh_qa.chunk import chunk_article
from karabakh_qa.dedup import group_passages
from karabakh_qa.ingest import read_articles

from .conftest import SEEDS


def seed_passages():
    articles, _ = read_articles(SEEDS)
    return group_passages([p for a in articles for p in chunk_article(a)[1]])


def test_article_000_is_wholly_contained_in_001():
    ps = seed_passages()
    by_id = {p.id: p for p in ps}
    groups = {}
    for p in ps:
        groups.setdefault(p.group, []).append(p)
    for p in (p for p in ps if p.source.startswith("000")):
        sources = {q.source[:3] for q in groups[p.group]}
        assert "001" in sources, p.text
        assert by_id[p.group].source[:3] in {"001", "003"}  # dated copies represent


def test_003_copies_with_dashes_and_changed_article_group_with_001():
    ps = seed_passages()
    houses = [p for p in ps if "1,165 houses" in p.text]
    assert sorted(p.source[:3] for p in houses) == ["000", "001", "003"]
    assert len({p.group for p in houses}) == 1
    rep = next(p for p in ps if p.id == houses[0].group)
    assert rep.source.startswith("003")  # header date beats a date inferred from text
    missile = [p for p in ps if "missile attack on Azerbaijan's Ganja city came" in p.text]
    assert len(missile) == 3 and len({p.group for p in missile}) == 1  # "An" vs "The"


def test_distinct_paragraphs_stay_apart():
    ps = seed_passages()
    assert len({p.group for p in ps}) == 86 - 11 - 3  # 000 repeats 11 of 001, 003 repeats 3
    only_002 = [p for p in ps if p.source.startswith("002")]
    assert all(p.group == p.id for p in only_002)
