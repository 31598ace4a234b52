"""Issue 14: API conventions (versioned paths, ETag and 304, request ids, CORS)."""

from karabakh_qa.web import create_app

from .conftest import write

ASK = "/api/v1/ask?q=ceasefire&k=2"


def test_a_query_is_revalidated_by_index_generation(client, seed_settings, seed_service):
    first = client.get(ASK)
    tag = first.headers["ETag"]
    assert tag == 'W/"g1-learned"' and first.headers["Cache-Control"] == "no-cache"
    again = client.get(ASK, headers={"If-None-Match": tag})
    assert (again.status_code, again.get_data(), again.headers["ETag"]) == (304, b"", tag)
    write(seed_settings.articles_dir, "new.txt", "A ceasefire was declared in the valley.\n")
    seed_service.build()
    fresh = client.get(ASK, headers={"If-None-Match": tag})
    assert fresh.status_code == 200 and fresh.headers["ETag"] == 'W/"g2-learned"'
    assert "ETag" not in client.get("/api/v1/health").headers  # health is never cached


def test_every_response_carries_a_request_id(client):
    mine = client.get(ASK, headers={"X-Request-Id": "desk-42.a"})
    assert mine.headers["X-Request-Id"] == "desk-42.a"
    made = client.get("/nope", headers={"X-Request-Id": "bad id;x"}).headers["X-Request-Id"]
    assert len(made) == 32 and made != client.get("/").headers["X-Request-Id"]


def test_cors_is_off_unless_configured(seed_settings, seed_service):
    origin = {"Origin": "https://desk.example"}
    closed = create_app(seed_settings, service=seed_service).test_client()
    assert "Access-Control-Allow-Origin" not in closed.get(ASK, headers=origin).headers
    open_ = create_app(
        seed_settings.replace(cors_origins=("https://desk.example",)), service=seed_service
    ).test_client()
    headers = open_.get(ASK, headers=origin).headers
    assert headers["Access-Control-Allow-Origin"] == "https://desk.example"
    assert "Origin" in headers["Vary"]
    other = open_.get(ASK, headers={"Origin": "https://evil.example"}).headers
    assert "Access-Control-Allow-Origin" not in other
