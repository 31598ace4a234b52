"""Issue 13: hostile input gets a clear 4xx, never a 500, and touches nothing."""

import io
import json

import pytest

from karabakh_qa.web import create_app

from .test_live import AUTH, TOKEN, folder_state

NESTED = "[" * 10_000 + "]" * 10_000


@pytest.fixture
def admin(seed_settings, seed_service):
    return create_app(seed_settings.replace(admin_token=TOKEN), service=seed_service).test_client()


@pytest.mark.parametrize(
    "query",
    ["k=--5", "k=%C2%B2", "k=%E2%91%A4", "k=%2B5", "k=5%200", "k=0x5", "k=%EF%BC%95", "k=-5"],
)
def test_k_is_ascii_digits_only(client, query):
    r = client.get(f"/api/ask?q=ceasefire&{query}")
    assert r.status_code == 400, r.get_data(as_text=True)
    assert "k must be a whole number from 1 to 50" in r.get_json()["error"]


@pytest.mark.parametrize(("k", "status"), [(17.0, 200), (17.5, 400), (True, 400), ("17", 200)])
def test_k_in_json_may_be_an_integer_value(client, k, status):
    r = client.post("/api/ask", json={"question": "ceasefire", "k": k})
    assert r.status_code == status
    if status == 200:
        assert len(r.get_json()["results"]) == 17


def test_a_lone_surrogate_in_the_question_is_a_400(client):
    # JSON's escape is the one way in: a URL's bytes decode with replacement characters
    body = '{"question": "cease\\ud800fire"}'
    r = client.post("/api/ask", data=body, content_type="application/json")
    assert (r.status_code, r.get_json()["status"]) == (400, 400)
    assert "not valid Unicode" in r.get_json()["error"]


def test_deeply_nested_json_is_a_400(client):
    r = client.post("/api/ask", data=NESTED, content_type="application/json")
    assert r.status_code == 400
    assert "nested too deeply" in r.get_json()["error"]


def test_405_names_the_allowed_methods(client):
    r = client.delete("/api/ask")
    assert r.status_code == 405
    assert sorted(m.strip() for m in r.headers["Allow"].split(",")) == [
        "GET",
        "HEAD",
        "OPTIONS",
        "POST",
    ]


@pytest.mark.parametrize(
    ("method", "kwargs", "message"),
    [
        ("post", {"json": {"question": "ceasefire", "since": ""}}, "since must be a date"),
        ("get", {"query_string": "q=ceasefire&until="}, "until must be a date"),
        ("get", {"query_string": "q=ceasefire&k="}, "k must be a whole number"),
    ],
)
def test_an_empty_value_in_the_api_is_a_400(client, method, kwargs, message):
    r = getattr(client, method)("/api/ask", **kwargs)
    assert r.status_code == 400 and message in r.get_json()["error"]
    assert client.get("/?q=ceasefire&k=&since=&until=").status_code == 200  # the form's fields


def test_every_4xx_the_api_gives_is_declared(client):
    doc = client.get("/api/openapi.json").get_json()
    for path, method, status in [
        ("/api/ask", "get", "400"),
        ("/api/ask", "post", "400"),
        ("/api/articles", "post", "422"),
        ("/api/articles/{source}", "get", "404"),
    ]:
        assert status in doc["paths"][path][method]["responses"], (path, method, status)


@pytest.mark.parametrize(
    ("kwargs", "status", "message"),
    [
        (
            {
                "data": {"file": (io.BytesIO(b"Some text."), "")},
                "content_type": "multipart/form-data",
            },
            400,
            "needs a 'file' field",
        ),
        ({"json": {"text": "Real text here.", "title": "A\rdate: 1999-01-01"}}, 400, "title"),
        ({"json": {"text": "Real text here.", "title": "A\u2028b"}}, 400, "title"),
        ({"json": {"text": "Real text here.", "title": "A\u0085b"}}, 400, "title"),
        ({"json": {"text": "Real text here.", "source": "x\x00y"}}, 400, "source"),
        ({"json": {"text": "Real text \ud800 here."}}, 400, "not valid Unicode"),
        ({"json": {"text": "Real text.", "title": "T\udfff"}}, 400, "not valid Unicode"),
        ({"json": {"text": "READ MORE\n\nLoading...\n"}}, 422, "nothing to index"),
        (
            {"json": {"text": "\n\n".join(f"Paragraph {i} of the flood." for i in range(1001))}},
            422,
            "1001 paragraphs; at most 1000",
        ),
    ],
)
def test_hostile_uploads_are_refused_and_touch_nothing(
    admin, seed_settings, seed_service, kwargs, status, message
):
    before = folder_state(seed_settings)
    if "json" in kwargs:  # lone surrogates cannot go through the client's own encoder
        kwargs = {
            "data": json.dumps(kwargs["json"]),
            "content_type": "application/json",
        }
    r = admin.post("/api/articles", headers=AUTH, **kwargs)
    data = r.get_json()
    assert (r.status_code, data["status"], data["ok"]) == (status, status, False), data
    assert message in data["error"]
    assert folder_state(seed_settings) == before
    assert seed_service.index().generation == 1


def test_a_full_disk_during_an_upload_is_a_507_and_leaves_nothing(
    admin, seed_settings, seed_service, monkeypatch
):
    import errno

    from karabakh_qa.store.embedded import files

    def full(path):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files, "fsync", full)
    before = sorted(p.name for p in seed_settings.articles_dir.iterdir())  # hidden ones too
    r = admin.post("/api/articles", headers=AUTH, json={"text": "A mud volcano erupted."})
    assert (r.status_code, r.get_json()) == (
        507,
        {
            "ok": False,
            "error": "could not save the article (No space left on device); nothing was saved",
            "status": 507,
        },
    )
    assert sorted(p.name for p in seed_settings.articles_dir.iterdir()) == before
