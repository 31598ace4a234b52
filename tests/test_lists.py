"""Issue 14: lists with handles (total, pages, sorts, facets, undated results)."""

Q = "ceasefire"


def ask(client, **params):
    r = client.get("/api/ask", query_string={"q": Q, **params})
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def ids(data):
    return [h["id"] for h in data["results"]]


def every(client, **params) -> list[dict]:
    """All results, page by page (50 is the largest page)."""
    out, offset = [], 0
    while True:
        data = ask(client, k=50, offset=offset, **params)
        out += data["results"]
        offset += 50
        if offset >= data["total"]:
            return out


def test_pages_are_slices_of_one_ranking(client):
    whole = ask(client, k=9)
    assert whole["total"] >= 9 and (whole["offset"], whole["k"], whole["sort"]) == (
        0,
        9,
        "relevance",
    )
    page2 = ask(client, k=3, offset=3)
    assert ids(page2) == ids(whole)[3:6] == ids(ask(client, limit=3, offset=3))
    assert [h["rank"] for h in page2["results"]] == [4, 5, 6]
    assert page2["answer_found"] == whole["answer_found"]  # judged on the top 3 always
    last = ask(client, k=5, offset=whole["total"])
    assert last["results"] == [] and last["total"] == whole["total"]


def test_sort_by_date_newest_first_undated_last(client):
    by_date = every(client, sort="date")
    dates = [h["date"] or "" for h in by_date]
    assert dates == sorted(dates, reverse=True) and dates[0] == "2020-10-11" and dates[-1] == ""
    relevance = every(client)
    assert sorted(h["id"] for h in by_date) == sorted(h["id"] for h in relevance)
    first = every(client, sort="first_seen")
    assert sorted(h["id"] for h in first) == sorted(h["id"] for h in relevance)
    sureness = {"metadata": 0, "header": 1, "text": 2}
    for hit in first:
        copies = [hit, *hit["also_in"]]
        known = sorted(
            (c["date"], sureness[c["date_source"]], c["file"]) for c in copies if c["date"]
        )  # the earliest date; on one day, the surest
        assert hit["first_seen"] == ({"file": known[0][2], "date": known[0][0]} if known else None)


def test_facets_count_every_result(client):
    data = ask(client, k=2, facets="true")
    for name in ("outlet", "year", "month"):
        assert sum(f["count"] for f in data["facets"][name]) == data["total"], name
    assert data["facets"]["year"][0] == {
        "value": "2020",
        "count": data["facets"]["year"][0]["count"],
    }
    assert data["facets"]["year"][-1]["value"] == "unknown"
    assert "facets" not in ask(client)


def test_a_date_filter_says_how_many_undated_results_it_hid(client):
    undated = sum(1 for h in every(client) if not h["date"])
    dated = ask(client, k=50, since="2020-01-01")
    assert dated["hidden_undated"] == undated > 0
    assert all(h["date"] for h in dated["results"])
    both = ask(client, k=50, since="2020-01-01", include_undated="1")
    assert both["hidden_undated"] == 0 and both["total"] == dated["total"] + undated
    assert ask(client, k=50)["hidden_undated"] == 0


def test_one_vocabulary_for_get_and_post(client):
    get = client.get(
        "/api/ask", query_string={"question": Q, "sources": "003_10ac5b029c183a1d.txt"}
    )
    post = client.post("/api/ask", json={"q": Q, "source": ["003_10ac5b029c183a1d.txt"]})
    assert get.status_code == post.status_code == 200
    assert ids(get.get_json()) == ids(post.get_json())
    assert {h["file"] for h in get.get_json()["results"]} == {"003_10ac5b029c183a1d.txt"}
    both = client.post("/api/ask", json={"q": Q, "question": Q})
    assert both.status_code == 400 and "give question or q, not both" in both.get_json()["error"]
    for params, message in [
        ({"offset": "-1"}, "offset must be a whole number from 0 to 1000"),
        ({"sort": "newest"}, "sort must be one of relevance, date, first_seen"),
        ({"facets": "maybe"}, "facets must be true or false"),
    ]:
        r = client.get("/api/ask", query_string={"q": Q, **params})
        assert r.status_code == 400 and message in r.get_json()["error"]


def test_the_results_page_has_the_same_handles(client):
    page = client.get(f"/?q={Q}&k=3&since=&until=").get_data(as_text=True)
    total = ask(client)["total"]
    assert f"Results 1–3 of {total} for" in page
    assert f'href="/?q={Q}&amp;k=3&amp;offset=3"' in page and 'rel="prev"' not in page
    assert "since=&" not in page and "until=&" not in page  # links carry no empty fields
    assert "Years:" in page and "Outlets:" in page
    second = client.get(f"/?q={Q}&k=3&offset=3").get_data(as_text=True)
    assert (
        f"Results 4–6 of {total}" in second and 'rel="prev" href="/?q=ceasefire&amp;k=3"' in second
    )
    dated = client.get(f"/?q={Q}&since=2020-01-01").get_data(as_text=True)
    hidden = ask(client, since="2020-01-01")["hidden_undated"]
    assert f"{hidden} undated results hidden by the date range." in dated
    assert "include_undated=1" in dated
    wrong = client.get(f"/?q={Q}&k=77")
    assert wrong.status_code == 400
    assert "Passages must be a whole number from 1 to 50, got &#39;77&#39;" in wrong.get_data(
        as_text=True
    )


def test_the_article_list_in_html_and_json(client):
    data = client.get("/api/articles").get_json()
    assert data["total"] == 5 and [a["date"] for a in data["articles"]][:2] == ["2020-10-11"] * 2
    assert all(a["file"] == a["source"] for a in data["articles"])
    dated = client.get("/api/articles?since=2020-10-01").get_json()
    assert sorted(a["file"] for a in dated["articles"]) == [
        "001_8494f7265b4a0e6d.txt",
        "003_10ac5b029c183a1d.txt",
    ]
    page = client.get("/articles?since=2020-10-01").get_data(as_text=True)
    assert "2 articles (undated articles are left out" in page
    assert page.count('<a href="/articles/0') == 2
    assert client.get("/articles?since=2020-13-01").status_code == 400
    assert "5 articles" in client.get("/articles").get_data(as_text=True)


def test_the_form_names_every_wrong_field(client):
    page = client.get("/?q=ceasefire&k=77&since=2020-1-1&sort=newest")
    assert page.status_code == 400
    text = page.get_data(as_text=True)
    for message in (
        "Passages must be a whole number from 1 to 50, got &#39;77&#39;",
        "From date must be a date as YYYY-MM-DD, got &#39;2020-1-1&#39;",
        "Order must be one of relevance, date, first_seen",
    ):
        assert message in text, message
