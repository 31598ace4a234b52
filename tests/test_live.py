"""Issue 5: uploads, reindex, watch, and queries during rebuilds."""

import io
import threading
import time

import pytest

from karabakh_qa.errors import ArticleError
from karabakh_qa.service import SearchService
from karabakh_qa.watch import watch_folder
from karabakh_qa.web import create_app

from .conftest import write
from .test_web import schema_validate

SCHEMAS = {"upload": "AddArticleResponse", "reindex": "ReindexResponse"}

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def admin(seed_settings, seed_service):
    settings = seed_settings.replace(admin_token=TOKEN)
    app = create_app(settings, service=seed_service)
    return app.test_client()


def folder_state(settings):
    return sorted(p.name for p in settings.articles_dir.iterdir())


@pytest.mark.parametrize(
    "headers,status,message",
    [
        ({}, 401, "missing or wrong bearer token"),
        ({"Authorization": "Bearer nope"}, 401, "missing or wrong bearer token"),
        ({"Authorization": TOKEN}, 401, "missing or wrong bearer token"),
        ({"Authorization": f"Basic {TOKEN}"}, 401, "missing or wrong bearer token"),
    ],
)
def test_upload_auth_refused(admin, seed_settings, headers, status, message):
    before = folder_state(seed_settings)
    r = admin.post("/api/articles", json={"text": "x y z."}, headers=headers)
    assert (r.status_code, r.get_json()) == (
        status,
        {"ok": False, "error": message, "status": status},
    )
    assert folder_state(seed_settings) == before


def test_upload_json_with_right_token_is_indexed(admin, seed_settings, seed_service):
    r = admin.post(
        "/api/articles",
        headers=AUTH,
        json={
            "text": "Snow closed the Lachin corridor road on Tuesday.\n\nConvoys waited at the checkpoint.",
            "title": "Road closed",
            "date": "2021-01-12",
            "source": "Wire",
        },
    )
    assert r.status_code == 202, r.get_json()
    body = r.get_json()
    assert body["source"].startswith("upload-") and body["source"].endswith(".txt")
    job = finished(admin, r)
    assert (job["kind"], job["state"], job["source"], job["error"]) == (
        "upload",
        "done",
        body["source"],
        None,
    )
    assert job["result"]["added"] == [body["source"]] and job["result"]["embedded"] == 2
    hit = seed_service.search("Lachin corridor snow", 1).hits[0].to_dict()
    assert (hit["source"], hit["date"], hit["date_source"], hit["title"]) == (
        body["source"],
        "2021-01-12",
        "metadata",
        "Road closed",
    )
    raw = (seed_settings.articles_dir / body["source"]).read_text()
    assert raw[hit["start"] : hit["end"]] == hit["text"]


def test_upload_multipart_txt(admin, seed_service):
    data = {"file": (io.BytesIO(b"Floods hit the valley of Zangilan.\n"), "floods.txt")}
    r = admin.post("/api/articles", headers=AUTH, data=data, content_type="multipart/form-data")
    assert r.status_code == 202
    assert finished(admin, r)["state"] == "done"
    assert (
        seed_service.search("Zangilan floods", 1).hits[0].passage.source == r.get_json()["source"]
    )


@pytest.mark.parametrize(
    "kwargs,status,message",
    [
        ({"json": {"text": ""}}, 400, "text is required"),
        ({"json": {"text": "   \n"}}, 400, "text is required"),
        ({"json": {"title": "no text"}}, 400, "text is required"),
        ({"json": {"text": "ok.", "date": "12/01/2021"}}, 400, "date must be YYYY-MM-DD"),
        ({"json": {"text": "ok.", "author": "x"}}, 400, "unknown field 'author'"),
        ({"json": {"text": "x" * 1_000_001}}, 413, "larger than 1000000 bytes"),
        ({"data": "{bad", "content_type": "application/json"}, 400, "malformed JSON"),
        (
            {
                "data": {"file": (io.BytesIO("Caf\xe9".encode("latin-1")), "a.txt")},
                "content_type": "multipart/form-data",
            },
            400,
            "not UTF-8",
        ),
        (
            {
                "data": {"file": (io.BytesIO(b"\x00\x01binary"), "a.txt")},
                "content_type": "multipart/form-data",
            },
            400,
            "binary file",
        ),
        (
            {"data": {"file": (io.BytesIO(b""), "a.txt")}, "content_type": "multipart/form-data"},
            400,
            "empty file",
        ),
        (
            {
                "data": {"file": (io.BytesIO(b"fine text."), "a.pdf")},
                "content_type": "multipart/form-data",
            },
            400,
            "only .txt or .md",
        ),
        (
            {"data": {"other": "x"}, "content_type": "multipart/form-data"},
            400,
            "needs a 'file' field",
        ),
        ({"data": "plain", "content_type": "text/plain"}, 400, "send JSON"),
        ({"data": "x" * 3_000_000, "content_type": "text/plain"}, 413, "too large"),
    ],
)
def test_bad_uploads_touch_nothing(admin, seed_settings, seed_service, kwargs, status, message):
    before = folder_state(seed_settings)
    r = admin.post("/api/articles", headers=AUTH, **kwargs)
    data = r.get_json()
    assert r.status_code == status and data["status"] == status and data["ok"] is False
    assert message in data["error"]
    assert folder_state(seed_settings) == before
    assert seed_service.index().generation == 1


def finished(admin, accepted) -> dict:
    """The job a 202 answer names, once it has run, as ``GET /api/jobs/<id>`` shows it."""
    job_id = accepted.get_json()["job"]["id"]
    assert accepted.headers["Location"] == f"/api/jobs/{job_id}"
    admin.application.extensions["karabakh_qa_jobs"].wait(job_id, 60)
    r = admin.get(f"/api/jobs/{job_id}", headers=AUTH)
    assert r.status_code == 200
    schema_validate(admin, accepted.get_json(), SCHEMAS[accepted.get_json()["job"]["kind"]])
    schema_validate(admin, r.get_json(), "JobResponse")
    return r.get_json()["job"]


def test_reindex_runs_as_a_job(admin, seed_settings, seed_service):
    assert admin.post("/api/reindex").status_code == 401
    write(seed_settings.articles_dir, "new.txt", "Geologists studied the mud volcano near Baku.\n")
    r = admin.post("/api/reindex", headers=AUTH)
    assert r.status_code == 202 and r.get_json()["job"]["kind"] == "reindex"
    job = finished(admin, r)
    assert (job["state"], job["result"]["added"], job["error"]) == ("done", ["new.txt"], None)
    assert seed_service.index().generation == 2
    assert seed_service.search("mud volcano", 1).hits[0].passage.source == "new.txt"


def test_a_failed_reindex_says_why_in_its_job(admin, seed_settings, seed_service):
    for path in seed_settings.articles_dir.iterdir():
        path.unlink()
    job = finished(admin, admin.post("/api/reindex", headers=AUTH))
    assert (job["state"], job["result"], job["error"]["status"]) == ("failed", None, 409)
    assert "refusing to empty the index" in job["error"]["error"]
    assert seed_service.index().generation == 1  # the index that served serves on
    assert admin.get("/api/jobs/nope", headers=AUTH).status_code == 404
    assert admin.get(f"/api/jobs/{job['id']}").status_code == 401


def test_queries_during_rebuilds_never_fail(admin, seed_settings, seed_service):
    errors, done = [], threading.Event()

    def hammer():
        client = admin.application.test_client()
        while not done.is_set():
            r = client.get("/api/ask?q=houses+destroyed&k=3")
            if r.status_code != 200 or not r.get_json()["results"]:
                errors.append(r.status_code)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    builder = SearchService(seed_settings, seed_service.embedder)
    for i in range(6):
        write(seed_settings.articles_dir, f"extra{i}.txt", f"Extra report number {i} on talks.\n")
        builder.build(wait=True)
    done.set()
    for t in threads:
        t.join()
    assert errors == []
    assert seed_service.index().generation == 7


def test_watch_rebuilds_after_changes(seed_settings, seed_service):
    stop = threading.Event()
    reports = []
    thread = threading.Thread(
        target=watch_folder,
        args=(seed_service,),
        kwargs={"on_build": reports.append, "delay": 0.2, "stop": stop},
    )
    thread.start()
    try:
        time.sleep(0.5)
        write(seed_settings.articles_dir, "watched.txt", "A heron nested on the Kura river bank.\n")
        write(seed_settings.articles_dir, ".ignored.txt", "hidden file\n")
        deadline = time.time() + 20
        while not reports and time.time() < deadline:
            time.sleep(0.1)
        assert reports and reports[0].added == ["watched.txt"]
        (seed_settings.articles_dir / "watched.txt").unlink()
        while len(reports) < 2 and time.time() < deadline:
            time.sleep(0.1)
        assert reports[1].removed == ["watched.txt"]
    finally:
        stop.set()
        thread.join(10)


def test_refresher_opens_new_generations_off_the_query_path(seed_settings, seed_service, embedder):
    """A server's queries keep the installed generation while the refresher opens
    the next one; a build through the service itself is visible when it returns."""
    seed_service.start_refresher(interval=3600)  # its loop never wakes in this part
    try:
        before = seed_service.index().generation
        other = SearchService(seed_settings, embedder)  # another process's build
        write(seed_settings.articles_dir, "heron.txt", "A heron nested on the Kura river bank.\n")
        other.build()
        assert seed_service.index().generation == before  # a query does not open it
        seed_service.stop_refresher()
        seed_service.start_refresher(interval=0.02)  # installs it, then polls
        assert seed_service.index().generation == before + 1
        write(seed_settings.articles_dir, "owl.txt", "An owl hooted over the Kura river.\n")
        other.build()
        deadline = time.time() + 10
        while seed_service.index().generation == before + 1 and time.time() < deadline:
            time.sleep(0.01)
        assert seed_service.index().generation == before + 2  # the loop opened it
        write(seed_settings.articles_dir, "stork.txt", "A stork flew over the Aras river.\n")
        report = seed_service.build()
        assert seed_service.index().generation == report.generation == before + 3
        opened = [w.generation for w in seed_service.switches]
        assert opened[-3:] == [before + 1, before + 2, before + 3]
        assert all(w.started <= w.finished for w in seed_service.switches)
        assert seed_service.search("stork Aras", 1).hits[0].passage.source == "stork.txt"
    finally:
        seed_service.stop_refresher()


def test_refresher_builds_ann_bits_before_a_generation_serves(seed_settings, embedder, monkeypatch):
    from karabakh_qa.store.embedded.ann import SignIndex

    built = SignIndex._built
    monkeypatch.setattr(SignIndex, "_built", lambda self: (time.sleep(0.3), built(self))[1])
    settings = seed_settings.replace(dense="ann")  # every segment searched by the ANN
    server = SearchService(settings, embedder)
    server.build()
    server.start_refresher(interval=0.02)
    try:
        before = server.index().generation
        write(settings.articles_dir, "heron.txt", "A heron nested on the Kura river bank.\n")
        SearchService(settings, embedder).build()  # another process's build
        deadline = time.time() + 10
        while server.index().generation == before and time.time() < deadline:
            time.sleep(0.01)
        index = server.index()
        assert index.generation == before + 1
        assert all(seg.vectors.signs.ready(wait=False) for seg in index.segments)
    finally:
        server.stop_refresher()


def test_refresher_failing_again_and_again_logs_once_and_serves_on(
    seed_service, caplog, monkeypatch
):
    from karabakh_qa import service as service_module
    from karabakh_qa.store.embedded.search import Snapshot

    def broken(self):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(service_module, "RELEASE_ABOVE_BYTES", 0)  # every round
    monkeypatch.setattr(Snapshot, "release", broken)
    before = seed_service.search("ceasefire", 1).hits[0].passage.id
    with caplog.at_level("ERROR"):
        seed_service.start_refresher(interval=0.01)
        try:
            time.sleep(0.3)  # ~30 failing rounds
            assert seed_service.search("ceasefire", 1).hits[0].passage.id == before
        finally:
            seed_service.stop_refresher()
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "refreshing the index failed" in errors[0].getMessage()


def test_library_add_returns_at_once_and_indexes_in_the_background(seed_settings, seed_service):
    before = folder_state(seed_settings)
    with pytest.raises(ArticleError, match="nothing to index"):
        seed_service.add(b"READ MORE\n\nLoading...\n")
    assert folder_state(seed_settings) == before  # refused: nothing saved
    jobs = [
        seed_service.add(f"Hail fell on the {town} vineyards on Monday.\n".encode())
        for town in ("Shusha", "Lachin")
    ]
    assert [j.kind for j in jobs] == ["upload", "upload"]
    assert folder_state(seed_settings) == sorted([*before, *(j.source for j in jobs)])
    done = [seed_service.jobs.wait(j.id, 60) for j in jobs]
    assert [j.state for j in done] == ["done", "done"]
    hit = seed_service.search("hail vineyards Lachin", 1).hits[0]
    assert hit.passage.source == jobs[1].source
    assert hit.passage.text == "Hail fell on the Lachin vineyards on Monday."


def test_an_upload_is_searchable_before_its_build_merges(tmp_path, embedder, monkeypatch):
    from karabakh_qa.store.embedded import build

    from .conftest import make_settings

    service = SearchService(make_settings(tmp_path), embedder)
    folder = service.settings.articles_dir
    write(folder, "a.txt", "Frost damaged the Shusha orchards on Sunday.\n")
    write(folder, "b.txt", "Rain flooded the Ganja market on Tuesday.\n")
    service.build()
    service.start_refresher(interval=3600)  # only the build itself installs generations
    seen = []
    real = build.merge_segments

    def merge(*args, **kwargs):
        seen.append([h.passage.source for h in service.search("hail vineyards Lachin", 1).hits])
        return real(*args, **kwargs)

    monkeypatch.setattr(build, "merge_segments", merge)
    try:
        write(folder, "c.txt", "Hail fell on the Lachin vineyards on Monday.\n")
        service.build(only=["c.txt"], optimize=True)  # publishes c.txt, then merges
    finally:
        service.stop_refresher()
    assert seen == [["c.txt"]]
    assert len(service.index().segments) == 1  # and the merged generation serves after
