"""The relation table: computed at build time, updated incrementally, kept by merges."""

import shutil

import numpy as np
import pytest

from karabakh_qa.service import SearchService
from karabakh_qa.web import create_app

from ..conftest import make_settings

V000, V001, Q003 = (
    "000_f1506f499b213b55.txt",
    "001_8494f7265b4a0e6d.txt",
    "003_10ac5b029c183a1d.txt",
)


def table(service: SearchService) -> list[tuple]:
    return sorted(r[:3] for r in service.index().relation_rows)


def test_seed_relations_and_the_hit_shows_what_changed(seed_service):
    assert table(seed_service) == [
        ("corroborates", V000, Q003), ("corroborates", V001, Q003), ("version", V000, V001),
    ]  # fmt: skip
    (v,) = [r for r in seed_service.index().relations_of(V000) if r["kind"] == "version"]
    assert (v["file"], v["shared"], v["sentences"], v["other_sentences"]) == (V001, 14, 14, 25)
    hit = next(h for h in seed_service.search("Ganja", 20).hits if h.passage.source == V001)
    (version,) = hit.versions  # V000 is V001 without its last 11 sentences
    assert (version["file"], version["relation"]) == (V000, "version")
    assert (version["shared"], version["added"], version["removed"]) == (14, 0, 11)
    raw = (seed_service.settings.articles_dir / V001).read_text()
    first = version["changes"][0]["before"]
    assert raw[first["start"] : first["end"]] == first["text"]


def test_incremental_builds_keep_the_table_a_full_build_computes(seed_service, tmp_path, embedder):
    s = seed_service.settings
    removed = (s.articles_dir / V001).read_bytes()
    (s.articles_dir / V001).unlink()
    seed_service.build()
    assert table(seed_service) == [("corroborates", V000, Q003)]
    (s.articles_dir / "copy.txt").write_bytes(removed)
    seed_service.build()
    incremental = table(seed_service)
    assert ("version", V000, "copy.txt") in incremental
    seed_service.build(optimize=True)  # a merge keeps it as it is
    assert table(seed_service) == incremental
    other = make_settings(tmp_path / "full", s.articles_dir)
    full = SearchService(other, embedder)
    full.build()
    assert table(full) == incremental
    shutil.rmtree(tmp_path / "full")


PARAS = [
    "The regional council approved the new bridge over the river on Tuesday evening.",
    "Construction will start in March and should take about two years to finish.",
    "Local traders said the closure of the old crossing had cost them customers.",
    "The project is funded by the national transport ministry and the council.",
]


MORE = [
    "Opposition members walked out of the chamber before the final count was read.",
    "A spokesman for the ministry declined to say when the tender would be published.",
]


def test_a_reparagraphed_version_shares_no_paragraph_yet_is_found(tmp_path, embedder):
    """No paragraph of b is a near-copy of one of a (each joins two of a's), so the
    group overlay does not pair them; the articles' shingle bands do."""
    s = make_settings(tmp_path)
    s.articles_dir.mkdir(parents=True)
    (s.articles_dir / "a.txt").write_text("\n\n".join(PARAS) + "\n")
    service = SearchService(s, embedder)
    service.build()
    b = [PARAS[0] + " " + PARAS[1], PARAS[2] + " " + PARAS[3], "Work was delayed by a week."]
    (s.articles_dir / "b.txt").write_text("\n\n".join(b) + "\n")
    service.build()
    index = service.index()
    assert all(len(index.groups.members(r)) == 1 for r in range(index.total_rows))
    assert table(service) == [("version", "a.txt", "b.txt")]


@pytest.mark.parametrize(
    "b_paragraphs, kind",
    [
        (PARAS, "version"),  # the update: the same paragraphs, the last rewritten
        (PARAS[:2] + MORE, "corroborates"),  # a report that shares two paragraphs
    ],
)
def test_two_reports_giving_one_names_figure_differently_differ_on_it(
    tmp_path, embedder, b_paragraphs, kind
):
    """The sentences with the figure are no rewording of each other (not a changed
    pair), yet both give Harbour Works' rise: the table says the reports differ on
    a figure, and the hit lists the other report with both values."""
    s = make_settings(tmp_path)
    s.articles_dir.mkdir(parents=True)

    def write(name: str, paras: list[str]) -> None:
        (s.articles_dir / name).write_text("\n\n".join(paras) + "\n")

    write("a.txt", [*PARAS, "Traders said Harbour Works rose 5% after the vote."])
    write("b.txt", [*b_paragraphs, "The vote sent shares of Harbour Works up 7.5% by noon."])
    service = SearchService(s, embedder)
    service.build()
    assert table(service) == sorted(
        [(kind, "a.txt", "b.txt"), ("differs-on-figure", "a.txt", "b.txt")]
    )
    hits = service.search("Harbour Works shares rose", 10).hits
    hit = next(h for h in hits if h.passage.source == "a.txt")
    (other,) = hit.versions
    assert (other["file"], other["relation"]) == ("b.txt", kind)
    (figure,) = other["figures"]
    assert (figure["measure"], figure["before"]["value"], figure["after"]["value"]) == (
        "percent", 5, 7.5,
    )  # fmt: skip
    raw = (s.articles_dir / "b.txt").read_text()
    assert raw[figure["after"]["start"] : figure["after"]["end"]] == "7.5"
    page = create_app(s, service=service).test_client().get("/?q=Harbour+Works+shares+rose")
    label = {"version": "Another version of this article", "corroborates": "A report sharing"}
    text = page.data.decode()
    assert label[kind] in text and "figures differ" in text


def test_new_relations_are_merged_into_the_sorted_table_as_a_full_sort_would():
    from karabakh_qa.store.embedded.relations import _dtype, _sorted, merge_sorted

    rng = np.random.default_rng(7)
    names = [f"a{i:02d}.txt".encode() for i in range(12)]

    def rows(n: int) -> np.ndarray:
        out = np.zeros(n, _dtype(7))
        out["kind"] = rng.integers(0, 3, n)
        out["a"], out["b"] = rng.choice(names, n), rng.choice(names, n)
        out["shared"] = np.arange(n)  # tells equal keys apart: kept's rows come first
        return _sorted(out)

    for n_kept, n_new in [(200, 5), (200, 0), (0, 4), (30, 30), (1, 1)]:
        kept, new = rows(n_kept), rows(n_new)
        new["shared"] += 1000
        expected = _sorted(np.concatenate([kept, new]))
        assert merge_sorted(kept, new).tolist() == expected.tolist()


def test_the_collector_is_paused_for_the_comparisons_and_restored_after():
    import gc

    from karabakh_qa.store.embedded.relations import collector_paused

    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()  # a caller's choice is kept
    finally:
        gc.enable()


def test_a_hits_versions_are_worked_out_once_a_generation_and_follow_a_rebuild(tmp_path, embedder):
    """The versions a hit lists are the generation's (kept by the view for the next
    question), so a build that removes the other version removes them from the hit."""
    s = make_settings(tmp_path)
    s.articles_dir.mkdir(parents=True)
    (s.articles_dir / "a.txt").write_text("\n\n".join(PARAS) + "\n")
    (s.articles_dir / "b.txt").write_text("\n\n".join([*PARAS[:3], "Work was delayed."]) + "\n")
    service = SearchService(s, embedder)
    service.build()

    def versions() -> list[str]:
        hits = service.search("new bridge over the river", 10).hits
        hit = next(h for h in hits if h.passage.source == "a.txt")
        return [v["file"] for v in hit.versions]

    assert versions() == ["b.txt"]
    index = service.index()
    assert index.memo("versions", "a.txt", lambda: pytest.fail("worked out again")) is not None
    assert versions() == ["b.txt"]
    (s.articles_dir / "b.txt").unlink()
    service.build()
    assert service.index() is not index and versions() == []


def test_a_memo_works_a_result_out_once_and_starts_again_when_full(monkeypatch):
    from karabakh_qa.store import protocol

    monkeypatch.setattr(protocol, "MEMO_SIZE", 2)
    memo, made = protocol.Memo(), []

    def make(key: str):
        return lambda: made.append(key) or key.upper()

    assert [memo.memo("k", x, make(x)) for x in ("a", "b", "a")] == ["A", "B", "A"]
    assert made == ["a", "b"]
    assert memo.memo("k", "c", make("c")) == "C"  # full: starts again
    assert memo.memo("k", "a", make("a")) == "A" and made == ["a", "b", "c", "a"]
