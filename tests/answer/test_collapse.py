"""Stage 3: a group of copies is one result, shown by its representative when the
filters allow it; undated results a date filter leaves out are counted."""

import numpy as np

from karabakh_qa.answer.collapse import collapse, in_order
from karabakh_qa.answer.query import Query
from karabakh_qa.answer.retrieve import Candidates


def cands(rows, reps):
    n = len(rows)
    zeros = np.zeros(n, np.int64)
    ids = np.array([f"id{r:02d}".encode() for r in rows], "S16")
    return Candidates(np.array(rows), np.array(reps), ids, np.zeros((4, n)), zeros, zeros, zeros)


# rows 10 and 11 are copies (representative 10); 12 and 13 stand alone
C = cands([10, 11, 12, 13], [10, 10, 12, 13])
DATES = np.array(["2020-01-02", "2020-03-04", "", "2019-05-06"])


def test_copies_collapse_to_the_representative_in_ranked_order():
    ordered = np.array([1, 3, 0, 2])  # the copy 11 ranks first
    results, hidden = collapse(C, ordered, None, DATES, Query("q", 5))
    assert results == [(1, 0), (3, 3), (2, 2)] and hidden == 0


def test_a_filtered_out_representative_shows_the_allowed_copy():
    ordered = np.array([1, 0, 2, 3])
    results, _ = collapse(C, ordered, np.array([11, 12, 13]), DATES, Query("q", 5))
    assert results == [(1, 1), (2, 2), (3, 3)]


def test_a_date_filter_counts_the_undated_it_hides_or_keeps_them_when_asked():
    ordered = np.array([2, 0, 3])
    dated = Query("q", 5, since="2019-01-01")
    assert collapse(C, ordered, None, DATES, dated) == ([(0, 0), (3, 3)], 1)
    kept = Query("q", 5, since="2019-01-01", include_undated=True)
    assert collapse(C, ordered, None, DATES, kept) == ([(2, 2), (0, 0), (3, 3)], 0)


def test_date_order_is_newest_first_with_the_undated_last():
    results = [(2, 2), (3, 3), (0, 0)]
    assert in_order(results, "relevance", DATES, None, C) == results
    assert in_order(results, "date", DATES, None, C) == [(0, 0), (3, 3), (2, 2)]
