import jsonschema
import pytest
from openapi_spec_validator import validate

from karabakh_qa.service import SearchService
from karabakh_qa.web import create_app

from .conftest import make_settings, write


def openapi_doc(client):
    return client.get("/api/openapi.json").get_json()


def schema_validate(client, data, name):
    """Validate ``data`` against a schema of the served OpenAPI document."""
    components = openapi_doc(client)["components"]
    schema = {"$ref": f"#/components/schemas/{name}", "components": components}
    jsonschema.Draft202012Validator(schema).validate(data)


def test_openapi_document_is_valid_3_1(client):
    doc = openapi_doc(client)
    assert doc["openapi"] == "3.1.0"
    validate(doc)
    assert set(doc["paths"]) == {
        "/api/ask",
        "/api/health",
        "/api/openapi.json",
        "/api/articles",
        "/api/articles/{source}",
        "/api/reindex",
        "/api/jobs/{job_id}",
        "/api/passages/{pid}",
        "/api/passages/{pid}/cite",
    }


def test_get_ask_shape_matches_openapi(client):
    r = client.get("/api/ask?q=How+many+houses+have+been+destroyed%3F&k=3")
    assert r.status_code == 200
    data = r.get_json()
    schema_validate(client, data, "AskResponse")
    assert data["index"]["generation"] == 1 and data["index"]["passages"] == 86
    assert len(data["results"]) == 3 and "1,165 houses" in data["results"][0]["text"]


def test_post_ask_with_filters(client):
    r = client.post(
        "/api/ask",
        json={"question": "houses destroyed", "k": 2, "sources": ["000_f1506f499b213b55.txt"]},
    )
    data = r.get_json()
    assert r.status_code == 200 and {h["source"] for h in data["results"]} == {
        "000_f1506f499b213b55.txt"
    }
    schema_validate(client, data, "AskResponse")


def test_health(client):
    data = client.get("/api/health").get_json()
    schema_validate(client, data, "Health")
    assert (data["generation"], data["articles"], data["passages"], data["model"]) == (
        1,
        5,
        86,
        "hash-bow-64",
    )


@pytest.mark.parametrize(
    "method,url,kwargs,status,message",
    [
        ("get", "/api/ask", {}, 400, "question is required"),
        ("get", "/api/ask?q=", {}, 400, "question is required"),
        ("get", "/api/ask?q=" + "x" * 1001, {}, 400, "at most 1000"),
        ("get", "/api/ask?q=hi&k=0", {}, 400, "k must be a whole number from 1 to 50"),
        ("get", "/api/ask?q=hi&k=1000000", {}, 400, "k must be"),
        ("get", "/api/ask?q=hi&k=2.5", {}, 400, "k must be"),
        ("get", "/api/ask?q=hi&since=2020-1-1", {}, 400, "since must be a date as YYYY-MM-DD"),
        ("get", "/api/ask?q=hi&source=../../etc/passwd", {}, 400, "unknown source"),
        (
            "post",
            "/api/ask",
            {"data": "{not json", "content_type": "application/json"},
            400,
            "malformed JSON",
        ),
        (
            "post",
            "/api/ask",
            {"data": "[1,2]", "content_type": "application/json"},
            400,
            "must be an object",
        ),
        ("post", "/api/ask", {"data": "question=x"}, 400, "Content-Type: application/json"),
        ("post", "/api/ask", {"json": {"question": "x", "kk": 1}}, 400, "unknown field 'kk'"),
        ("post", "/api/ask", {"json": {"question": 5}}, 400, "question is required"),
        ("post", "/api/ask", {"json": {"question": "x", "k": "5"}}, 200, None),
        (
            "post",
            "/api/ask",
            {"json": {"question": "x", "sources": "nope.txt"}},
            400,
            "unknown source",
        ),
        (
            "post",
            "/api/ask",
            {"data": "x" * 2_000_000, "content_type": "application/json"},
            413,
            "too large",
        ),
        ("get", "/api/nothing", {}, 404, "no such page"),
        ("delete", "/api/ask", {}, 405, "method DELETE is not allowed"),
        ("put", "/api/health", {}, 405, "not allowed"),
        ("post", "/api/reindex", {}, 403, "admin endpoints are disabled"),
    ],
)
def test_api_errors_have_one_shape(client, method, url, kwargs, status, message):
    r = getattr(client, method)(url, **kwargs)
    assert r.status_code == status
    data = r.get_json()
    if message is None:  # the one accepted case: k given as the string "5"
        assert (data["ok"], data["k"], len(data["results"])) == (True, 5, 5)
        return
    assert set(data) == {"ok", "error", "status"}
    assert data["ok"] is False and data["status"] == status and message in data["error"]
    schema_validate(client, data, "Error")


@pytest.mark.parametrize(
    "url,status",
    [
        ("/nope", 404),
        ("/articles/nope.txt", 404),
        ("/articles/../pyproject.toml", 404),
        ("/articles/%2e%2e/%2e%2e/etc/passwd", 404),
        ("/?q=", 400),
        ("/?q=hi&k=77", 400),
    ],
)
def test_html_errors_are_pages(client, url, status):
    r = client.get(url)
    assert r.status_code == status
    assert r.mimetype == "text/html"
    assert b"<h1>" in r.data


def test_form_and_results_page(client):
    page = client.get("/").data.decode()
    assert page.count("<h1") == 1 and 'label for="q"' in page and "<main" in page
    page = client.get("/?q=How+many+houses+have+been+destroyed%3F").data.decode()
    assert "<mark>" in page and 'class="term"' in page
    assert "003_10ac5b029c183a1d.txt, paragraph 3" in page
    assert "/articles/003_10ac5b029c183a1d.txt?p=3#p3" in page
    assert "Also reported in" in page and "000_f1506f499b213b55.txt ¶10" in page
    assert "date unknown" in page
    assert "http://" not in page.replace("http://www.w3.org", "") and "https://" not in page


def test_no_confident_answer_notice(client):
    page = client.get("/?q=How+do+I+bake+sourdough+bread%3F").data.decode()
    assert "No confident answer" in page and 'class="hit"' in page


def test_article_view_highlights_cited_paragraph(client):
    r = client.get("/articles/001_8494f7265b4a0e6d.txt?p=12")
    page = r.data.decode()
    assert r.status_code == 200
    assert 'id="p12" class="para cited"' in page and "1,165 houses" in page
    assert "2020-10-11, inferred from the text" in page
    assert "Loading..." not in page and "READ MORE" not in page


def test_security_headers(client):
    r = client.get("/")
    assert "default-src 'none'" in r.headers["Content-Security-Policy"]
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert client.application.debug is False


def test_hostile_article_text_is_escaped(tmp_path, embedder):
    folder = tmp_path / "articles"
    write(
        folder,
        "evil.txt",
        "Attackers wrote <script>alert(1)</script> in the report.\n\n"
        'Another line <img src=x onerror="alert(2)"> about the ceasefire report.\n',
    )
    settings = make_settings(tmp_path)
    svc = SearchService(settings, embedder)
    svc.build()
    client = create_app(settings, service=svc).test_client()
    for url in ("/?q=report+ceasefire", "/articles/evil.txt"):
        page = client.get(url).data.decode()
        assert "<script>" not in page and "<img" not in page
        assert "&lt;script&gt;" in page and "&lt;img" in page
    data = client.get("/api/ask?q=report").get_json()
    assert any("<script>" in h["text"] for h in data["results"])  # JSON keeps the verbatim text


def test_app_switches_generation_without_restart(client, seed_settings, seed_service):
    write(seed_settings.articles_dir, "zz.txt", "Volcanic ash closed the airport in Reykjavik.\n")
    SearchService(seed_settings, seed_service.embedder).build()
    data = client.get("/api/ask?q=Reykjavik+airport&k=1").get_json()
    assert data["index"]["generation"] == 2 and data["results"][0]["source"] == "zz.txt"


def test_no_index_is_503(tmp_path, embedder):
    client = create_app(
        make_settings(tmp_path), service=SearchService(make_settings(tmp_path), embedder)
    ).test_client()
    r = client.get("/api/health")
    assert r.status_code == 503 and "run `karabakh-qa index --articles" in r.get_json()["error"]


def test_article_list_and_article_json(client, seed_settings):
    data = client.get("/api/articles").get_json()
    schema_validate(client, data, "ArticleList")
    # newest first, undated last (by file name)
    assert [a["source"][:3] for a in data["articles"]] == ["001", "003", "000", "002", "004"]
    first = data["articles"][0]
    assert (first["title"], first["date"], first["date_source"], first["passages"]) == (
        "Azerbaijan: Armenia continues to attack civilian areas",
        "2020-10-11",
        "text",
        20,
    )
    art = client.get("/api/articles/003_10ac5b029c183a1d.txt").get_json()
    schema_validate(client, art, "Article")
    raw = (seed_settings.articles_dir / "003_10ac5b029c183a1d.txt").read_text()
    assert all(raw[p["start"] : p["end"]] == p["text"] for p in art["passages"])
    r = client.get("/api/articles/../../etc/passwd")
    assert r.status_code == 404 and r.get_json()["ok"] is False


def test_the_answer_span_is_underlined_and_missing_terms_are_named(client):
    page = client.get("/?q=How+many+houses+have+been+destroyed%3F").data.decode()
    import re

    answers = re.findall(r'<b class="answer"[^>]*>(.*?)</b>', page)
    # inside the marked sentence of the hit that holds it: the count alone ("houses"
    # is the question's word, marked as a term beside it)
    assert "1,165" in answers
    page = client.get("/?q=How+many+houses+did+the+Zorblax+storm+destroy+in+2031%3F").data.decode()
    assert "No confident answer" in page
    assert 'The archive never mentions: <span class="missing">Zorblax, 2031</span>' in page
