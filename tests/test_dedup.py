import numpy as np
import pytest

from karabakh_qa.dedup import (
    band_hashes,
    band_index,
    is_copy,
    minhash_signatures,
    pairs_across,
    pairs_within,
    shingles,
)


@pytest.fixture
def seed_passages(seed_service):
    snap = seed_service.index()
    return [snap.passage(r) for r in np.flatnonzero(snap.live_mask).tolist()]


def test_article_000_is_wholly_contained_in_001(seed_passages):
    ps = seed_passages
    by_id = {p.id: p for p in ps}
    groups = {}
    for p in ps:
        groups.setdefault(p.group, []).append(p)
    for p in (p for p in ps if p.source.startswith("000")):
        sources = {q.source[:3] for q in groups[p.group]}
        assert "001" in sources, p.text
        assert by_id[p.group].source[:3] in {"001", "003"}  # dated copies represent


def test_003_copies_with_dashes_and_changed_article_group_with_001(seed_passages):
    ps = seed_passages
    houses = [p for p in ps if "1,165 houses" in p.text]
    assert sorted(p.source[:3] for p in houses) == ["000", "001", "003"]
    assert len({p.group for p in houses}) == 1
    rep = next(p for p in ps if p.id == houses[0].group)
    assert rep.source.startswith("003")  # header date beats a date inferred from text
    missile = [p for p in ps if "missile attack on Azerbaijan's Ganja city came" in p.text]
    assert len(missile) == 3 and len({p.group for p in missile}) == 1  # "An" vs "The"


def test_distinct_paragraphs_stay_apart(seed_passages):
    ps = seed_passages
    assert len({p.group for p in ps}) == 86 - 11 - 3  # 000 repeats 11 of 001, 003 repeats 3
    only_002 = [p for p in ps if p.source.startswith("002")]
    assert all(p.group == p.id for p in only_002)


def test_exact_rule_and_lsh_candidates():
    a = "Armenian attacks have so far destroyed 1,165 houses, 57 buildings and 146 public buildings."
    b = a.replace("146 public", "146 state")  # Jaccard 10/14 = 0.714
    c = "A completely different sentence about a ceasefire agreed in Moscow on Saturday."
    assert is_copy(a, a.upper(), 3, 0.6)  # case and punctuation fold
    assert is_copy(a, b, 3, 0.6) and not is_copy(a, b, 3, 0.8)
    assert not is_copy(a, c, 3, 0.6)
    bands = band_hashes([a, a.upper(), c], 3, 16, 2)
    assert bands.shape == (3, 16) and bands.dtype == np.uint32
    assert (bands[0] == bands[1]).all()  # equal after normalising: every band equal
    assert pairs_within(*band_index(bands)).tolist() == [[0, 1]]
    assert pairs_across(*band_index(bands[:1]), bands[1:]).tolist() == [[0, 0]]
    assert (band_hashes([a], 3, 16, 2) == bands[:1]).all()  # stable across calls


def test_minhash_agreement_estimates_jaccard():
    """The share of equal MinHash values tracks the Jaccard of the shingle sets:
    about J for overlapping texts, about 1/256 for texts sharing a single shingle."""
    rng = np.random.default_rng(7)
    vocab = [f"w{i}" for i in range(5000)]
    base, half, one = [], [], []
    for _ in range(40):
        words = list(rng.choice(vocab, 120))
        base.append(" ".join(words))
        half.append(" ".join(words[:80] + list(rng.choice(vocab, 40))))  # J about 0.5
        one.append(" ".join(words[:3] + list(rng.choice(vocab, 117))))  # one shingle shared
    _, m_base = minhash_signatures(base, 3, 16, 2)
    _, m_half = minhash_signatures(half, 3, 16, 2)
    _, m_one = minhash_signatures(one, 3, 16, 2)
    jac = np.array([len(shingles(a) & shingles(b)) / len(shingles(a) | shingles(b))
                    for a, b in zip(base, half, strict=True)])  # fmt: skip
    agree_half = (m_base == m_half).mean(axis=1)
    agree_one = (m_base == m_one).mean(axis=1)
    assert abs(float((agree_half - jac).mean())) < 0.03
    assert float(agree_one.max()) < 0.15 and float(agree_one.mean()) < 0.03


def test_candidate_pairs_from_the_band_index_equal_brute_force():
    rng = np.random.default_rng(3)
    old = rng.integers(0, 40, (300, 16)).astype(np.uint32)  # many shared band values
    new = rng.integers(0, 40, (7, 16)).astype(np.uint32)
    within = {(i, j) for i in range(300) for j in range(i + 1, 300) if (old[i] == old[j]).any()}
    across = {(r, i) for r in range(300) for i in range(7) if (old[r] == new[i]).any()}
    assert [tuple(p) for p in pairs_within(*band_index(old)).tolist()] == sorted(within)
    assert [tuple(p) for p in pairs_across(*band_index(old), new).tolist()] == sorted(across)
    assert pairs_across(*band_index(old[:0]), new).shape == (0, 2)
