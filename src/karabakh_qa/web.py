"""Flask application factory: the HTML pages and the JSON API over one SearchService.

``create_app(settings)`` builds everything; nothing lives at module level. Both
the results page and ``/api/ask`` call :meth:`SearchService.search`; every
error becomes ``{"ok": false, "error": ..., "status": ...}`` under ``/api/``
and an HTML page elsewhere.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    g,
    jsonify,
    make_response,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from .cite import FORMATS, render
from .config import Settings
from .errors import BadRequest, Forbidden, KarabakhError, PayloadTooLarge, Unauthorized
from .jobs import Job
from .records import Hit, Passage, date_label
from .relations.corroboration import first_reported
from .sentences import passage_sentences
from .service import SearchService
from .upload import article_from_json, article_from_upload

log = logging.getLogger(__name__)

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)

ARTICLE_FIELDS = ("title", "date", "date_source", "url", "publisher", "sha256", "passages")

html = Blueprint("html", __name__)
api = Blueprint("api", __name__, url_prefix="/api")


def service() -> SearchService:
    found: SearchService = current_app.extensions["karabakh_qa"]
    return found


def segments(
    text: str,
    sentence: list[int],
    terms: list[list[int]],
    answer: list[int] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """``text`` cut into the parts before, inside and after the best sentence,
    each a list of ``{"text", "em", "answer"}`` pieces (``em``: a matched query
    term; ``answer``: inside the answer span, ``[start, end]`` in ``text``).
    The template escapes every piece and wraps the sentence in one ``<mark>``."""
    spans = [tuple(t) for t in terms]
    cuts_from = [x for span in [*spans, *([answer] if answer else [])] for x in span]

    def pieces(a: int, b: int) -> list[dict[str, Any]]:
        cuts = sorted({a, b, *(x for x in cuts_from if a < x < b)})
        return [
            {
                "text": text[x:y],
                "em": any(s <= x and y <= e for s, e in spans),
                "answer": answer is not None and answer[0] <= x and y <= answer[1],
            }
            for x, y in zip(cuts, cuts[1:], strict=False)
            if y > x
        ]

    s, e = sentence
    return {"before": pieces(0, s), "sentence": pieces(s, e), "after": pieces(e, len(text))}


# --- HTML --------------------------------------------------------------------------


FORM_FIELDS = ("q", "k", "since", "until", "sort", "offset", "include_undated")


@html.get("/")
def home() -> ResponseReturnValue:
    args = request.args
    svc = service()
    articles = svc.articles()
    sources = sorted(articles)
    form: dict[str, Any] = {name: args.get(name, "") for name in FORM_FIELDS}
    form["source"] = args.getlist("source")
    result, error = None, None
    if "q" in args:
        try:
            result = svc.search(
                form["q"],
                form["k"] or None,
                form["source"],
                form["since"],
                form["until"],
                offset=form["offset"],
                sort=form["sort"],
                include_undated=form["include_undated"],
                facets=True,
            )
        except BadRequest as exc:
            error = "; ".join(form_errors(svc, form, exc))
    status = 400 if error else 200
    return render_template(
        "index.html",
        form=form,
        result=result,
        error=error,
        sources=sources,
        articles=articles,
        segments=segments,
        date_label=date_label,
        sentence_anchor=sentence_anchor,
        first_reported=first_reported,
        page_url=lambda **changes: page_url(form, **changes),
    ), status


def page_url(form: dict[str, Any], **changes: object) -> str:
    """The results page for ``form`` with ``changes``, without empty parameters (a
    link carries ``since=2020-10-01``, never ``since=&until=``)."""
    values = {**form, **changes}
    params = [(k, v) for k in FORM_FIELDS if (v := values.get(k)) not in (None, "", 0, "0")]
    params += [("source", s) for s in values.get("source") or []]
    return url_for("html.home") + "?" + urlencode(params)


FORM_LABELS = {
    "k": "Passages",
    "since": "From date",
    "until": "To date",
    "source": "Sources",
    "sort": "Order",
    "offset": "Page offset",
}


def form_errors(svc: SearchService, form: dict[str, Any], first: BadRequest) -> list[str]:
    """Every field's problem, not only the first one the search met: each field is
    checked again on its own (cheap: no search runs)."""
    out = [form_error(first.message)]
    question = form["q"] if form["q"].strip() else "question"
    fields = {"k": form["k"] or None, "since": form["since"], "until": form["until"]}
    options = {"offset": form["offset"], "sort": form["sort"]}
    for name, value in [*fields.items(), *options.items(), ("source", form["source"])]:
        single = {"sources": value} if name == "source" else {name: value}
        try:
            svc.validate(question, **single)
        except BadRequest as exc:
            message = form_error(exc.message)
            if message not in out:
                out.append(message)
    return out


def form_error(message: str) -> str:
    """An API message in the form's words ("Passages must be...", not "k must be...")."""
    name, sep, rest = message.partition(" ")
    return f"{FORM_LABELS[name]} {rest}" if sep and name in FORM_LABELS else message


@html.get("/articles")
def article_list() -> ResponseReturnValue:
    """The archive's articles, newest first, with the filters of the JSON list."""
    a = request.args
    form = {k: a.get(k, "") for k in ("since", "until", "outlet")}
    svc = service()
    error, rows = None, []
    try:
        rows = svc.article_list(form["since"], form["until"], form["outlet"] or None)
    except BadRequest as exc:
        error = form_error(exc.message)
    outlets = sorted({r["outlet"] for r in svc.article_list() if r["outlet"]})
    return render_template(
        "articles.html",
        form=form,
        rows=rows,
        error=error,
        outlets=outlets,
        date_label=date_label,
    ), 400 if error else 200


@html.get("/articles/<path:source>")
def article(source: str) -> ResponseReturnValue:
    meta, passages = service().article(source)
    paragraphs: list[dict[str, Any]] = []
    for p in passages:  # a paragraph's parts joined; its sentences numbered from 1
        if not paragraphs or paragraphs[-1]["n"] != p.paragraph:
            paragraphs.append({"n": p.paragraph, "section": p.section, "sentences": []})
        paragraphs[-1]["sentences"] += [p.text[s:e] for s, e in passage_sentences(p)]
    cited = request.args.get("p", type=int)
    first = passages[0] if passages else None
    return render_template(
        "article.html",
        source=source,
        meta=meta,
        outlet=first.outlet if first else None,
        url=first.url if first else None,
        paragraphs=paragraphs,
        cited=cited,
        date_label=date_label,
    )


def sentence_anchor(hit: Hit) -> str:
    """``p<n>s<m>``: the hit's marked sentence on its article page (sentences counted
    from 1 across the paragraph's parts, as :func:`article` numbers them)."""
    p = hit.passage
    spans = passage_sentences(p)
    marked = tuple(hit.highlights.get("sentence") or spans[0])
    m = next((i for i, (s, e) in enumerate(spans) if s <= marked[0] < max(e, s + 1)), 0) + 1
    if p.part > 1:  # a long paragraph's later part: count the sentences before it
        _, passages = service().article(p.source)
        m += sum(
            len(passage_sentences(q))
            for q in passages
            if q.paragraph == p.paragraph and q.part < p.part
        )
    return f"p{p.paragraph}s{m}"


# --- JSON API ----------------------------------------------------------------------


MAX_JSON_DEPTH = 16  # our bodies are one object of strings, numbers and one list


def _depth(value: object) -> int:
    """Nesting depth of a parsed JSON value (iterative: a deep value cannot recurse)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if level > MAX_JSON_DEPTH:
            break
        if isinstance(item, dict):
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, level + 1) for v in item)
    return deepest


def _json_body(fields: tuple[str, ...]) -> dict[str, Any]:
    """The request's JSON object, refusing anything but the named ``fields``."""
    if not request.is_json:
        raise BadRequest("send a JSON object with Content-Type: application/json")
    try:
        body = json.loads(request.get_data(cache=True) or b"")
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"malformed JSON: {exc}") from None
    except RecursionError:
        body = None
    if body is None or _depth(body) > MAX_JSON_DEPTH:
        raise BadRequest(f"the JSON body is nested too deeply (at most {MAX_JSON_DEPTH} levels)")
    if not isinstance(body, dict):
        raise BadRequest("the JSON body must be an object")
    unknown = sorted(set(body) - set(fields))
    if unknown:
        raise BadRequest(f"unknown field {unknown[0]!r}; allowed: {', '.join(fields)}")
    return body


OPTIONS = ("offset", "sort", "include_undated", "facets")
ASK_FIELDS = ("question", "q", "k", "limit", "sources", "source", "since", "until", *OPTIONS)


def _either(values: dict[str, Any], name: str, alias: str) -> object:
    """One parameter under its name or its alias (GET and POST share one vocabulary)."""
    if values.get(name) is not None and values.get(alias) is not None:
        raise BadRequest(f"give {name} or {alias}, not both")
    return values[name] if values.get(name) is not None else values.get(alias)


@api.route("/ask", methods=["GET", "POST"])
def ask() -> ResponseReturnValue:
    if request.method == "POST":
        values = _json_body(ASK_FIELDS)
    else:
        a = request.args
        values = {k: a.get(k) for k in ASK_FIELDS if k not in ("source", "sources")}
        values["source"] = a.getlist("source") or None
        values["sources"] = a.getlist("sources") or None
    result = service().search(
        _either(values, "question", "q"),
        _either(values, "k", "limit"),
        _either(values, "sources", "source"),
        values.get("since"),
        values.get("until"),
        blank_is_absent=False,  # the API is strict: an empty value is a 400 (not the form)
        **{k: values.get(k) for k in OPTIONS},
    )
    return jsonify(result.to_dict())


@api.get("/health")
def health() -> ResponseReturnValue:
    return jsonify(service().health())


@api.get("/articles")
def list_articles() -> ResponseReturnValue:
    """Indexed articles with their metadata (the values ``sources`` accepts), filtered
    by ``since``, ``until`` and ``outlet`` like the HTML list; newest first."""
    a = request.args
    svc = service()
    metas = svc.articles()
    rows = svc.article_list(a.get("since"), a.get("until"), a.get("outlet"))
    return jsonify(
        {
            "ok": True,
            "total": len(rows),
            "articles": [
                {
                    **row,
                    "source": row["file"],  # deprecated alias of "file"
                    **{k: metas[row["file"]].get(k) for k in ARTICLE_FIELDS if k not in row},
                }
                for row in rows
            ],
        }
    )


@api.get("/articles/<path:source>")
def get_article(source: str) -> ResponseReturnValue:
    """An indexed article's passages with offsets, for checking a citation."""
    meta, passages = service().article(source)
    return jsonify(
        {
            "ok": True,
            "source": source,
            **{k: meta.get(k) for k in ARTICLE_FIELDS},
            "passages": [
                {
                    k: getattr(p, k)
                    for k in ("id", "paragraph", "part", "section", "start", "end", "text")
                }
                for p in passages
            ],
        }
    )


def passage_json(p: Passage) -> dict[str, Any]:
    """A passage's fields in the API's vocabulary (``source``: deprecated alias of ``file``)."""
    keys = ("id", "paragraph", "part", "section", "start", "end", "text", "date", "date_source")
    return {
        **{k: getattr(p, k) for k in keys},
        "file": p.source,
        "source": p.source,
        "title": p.title,
        "outlet": p.outlet,
        "url": p.url,
    }


def passage_link(p: Passage) -> str:
    """The article page, scrolled to the passage's paragraph (absolute URL)."""
    url = url_for("html.article", source=p.source, p=p.paragraph, _external=True)
    return f"{url}#p{p.paragraph}"


@api.get("/passages/<pid>")
def get_passage(pid: str) -> ResponseReturnValue:
    """One passage by its stable id, with its article's metadata: what a citation names."""
    p, meta = service().passage(pid)
    article = {"file": p.source, **{k: meta.get(k) for k in ARTICLE_FIELDS}, "outlet": p.outlet}
    return jsonify({"ok": True, "passage": passage_json(p), "article": article})


@api.get("/passages/<pid>/cite")
def cite_passage(pid: str) -> ResponseReturnValue:
    """The passage as a citation: ``format`` csl-json (default), bibtex or ris."""
    fmt = request.args.get("format", "csl-json")
    if fmt not in FORMATS:
        raise BadRequest(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    svc = service()
    p, meta = svc.passage(pid)
    body = render(svc.quote(p, meta, passage_link(p)), fmt)
    response = current_app.response_class(body, mimetype=FORMATS[fmt])
    ext = {"csl-json": "json", "bibtex": "bib", "ris": "ris"}[fmt]
    response.headers["Content-Disposition"] = f'inline; filename="kqa-{p.id}.{ext}"'
    return response


@api.get("/openapi.json")
def openapi() -> ResponseReturnValue:
    path = Path(current_app.static_folder or "") / "openapi.json"
    return current_app.response_class(path.read_bytes(), mimetype="application/json")


def require_admin() -> None:
    """Bearer token check, in constant time; no token configured means 403."""
    token = current_app.config["KQA_SETTINGS"].admin_token
    if not token:
        raise Forbidden("admin endpoints are disabled: set KARABAKH_QA_ADMIN_TOKEN to enable them")
    header = request.headers.get("Authorization", "")
    given = header[7:] if header.startswith("Bearer ") else ""
    if not given or not hmac.compare_digest(given.encode(), token.encode()):
        raise Unauthorized("missing or wrong bearer token")


@api.post("/articles")
def add_article() -> ResponseReturnValue:
    require_admin()
    if request.mimetype == "multipart/form-data":
        raw = article_from_upload(request.files.get("file"))
    elif request.mimetype == "application/json":
        raw = article_from_json(_json_body(("text", "title", "date", "source")))
    else:
        raise BadRequest("send JSON {text, title?, date?, source?} or a multipart 'file' upload")
    job = service().add(raw)
    return _accepted({"ok": True, "source": job.source, "job": job.to_dict()}, job)


@api.post("/reindex")
def reindex() -> ResponseReturnValue:
    require_admin()
    job = service().reindex()
    return _accepted({"ok": True, "job": job.to_dict()}, job)


@api.get("/jobs/<job_id>")
def get_job(job_id: str) -> ResponseReturnValue:
    """Where an upload's or a reindex's build stands: queued, running, done, failed."""
    require_admin()
    return jsonify({"ok": True, "job": service().jobs.get(job_id).to_dict()})


def _accepted(body: dict[str, Any], job: Job) -> ResponseReturnValue:
    response = make_response(jsonify(body), 202)
    response.headers["Location"] = f"/api/jobs/{job.id}"
    return response


# --- errors and headers --------------------------------------------------------------


def _error(status: int, message: str) -> Response:
    if request.path.startswith("/api/"):
        body: Response | str = jsonify({"ok": False, "error": message, "status": status})
    else:
        body = render_template("error.html", status=status, message=message)
    return make_response(body, status)


def handle_error(exc: Exception) -> ResponseReturnValue:
    if isinstance(exc, KarabakhError):
        return _error(exc.status, exc.message)
    if isinstance(exc, HTTPException):
        message = {
            404: "no such page or endpoint",
            405: f"method {request.method} is not allowed here",
            413: "request body too large",
        }.get(exc.code or 500, exc.description or exc.name)
        response = _error(exc.code or 500, message)
        allowed = getattr(exc, "valid_methods", None)
        if allowed:  # RFC 9110: a 405 names the methods the resource has
            response.headers["Allow"] = ", ".join(sorted(allowed))
        return response
    log.exception("unhandled error on %s", request.path)
    return _error(500, "internal error; the server log has details")


def limit_body() -> None:
    """Refuse an oversized body up front, whatever the route would do with it."""
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"request body too large: at most {limit} bytes")


CACHEABLE = ("ask", "list_articles", "get_article", "get_passage", "cite_passage")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def start_request() -> ResponseReturnValue | None:
    """Every request: an id (the caller's ``X-Request-Id`` when it is sane, else a new
    one) logged with it and echoed; a GET the client has for this index generation
    is a 304 before any work (the answer of a query changes only with the index)."""
    given = request.headers.get("X-Request-Id", "")
    g.request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
    g.started = time.perf_counter()
    limit_body()
    if request.method == "GET" and _cacheable():
        tag = _etag()
        if tag in request.headers.get("If-None-Match", ""):
            response = make_response("", 304)
            response.headers["ETag"] = tag
            return response
    return None


def _cacheable() -> bool:
    endpoint = (request.endpoint or "").split(".")[-1]
    return request.blueprint in ("api", "api_v1") and endpoint in CACHEABLE


def _etag() -> str:
    """A weak tag naming the generation that answers (and the ranker's settings)."""
    svc = service()
    return f'W/"g{svc.index().generation}-{svc.settings.ranker}"'


def finish_request(response: Response) -> Response:
    response.headers["X-Request-Id"] = g.get("request_id", "")
    if request.method == "GET" and response.status_code == 200 and _cacheable():
        response.headers["ETag"] = _etag()
        response.headers["Cache-Control"] = "no-cache"  # revalidate, then 304
    origins = current_app.config["KQA_SETTINGS"].cors_origins
    origin = request.headers.get("Origin")
    api_call = origin and request.path.startswith("/api/")
    if api_call and ("*" in origins or origin in origins):  # CORS: off unless configured
        response.headers["Access-Control-Allow-Origin"] = "*" if "*" in origins else origin
        response.headers["Access-Control-Allow-Headers"] = "Content-Type, Authorization"
        response.headers["Access-Control-Expose-Headers"] = "ETag, X-Request-Id"
        response.headers.add("Vary", "Origin")
    log.info(
        "%s %s %s %d %.1f ms",
        g.get("request_id", "-"),
        request.method,
        request.path,
        response.status_code,
        (time.perf_counter() - g.get("started", time.perf_counter())) * 1000,
    )
    return security_headers(response)


def security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("X-Frame-Options", "DENY")
    return response


def server_options(settings: Settings, threads: int) -> dict[str, Any]:
    """waitress's settings for serving ``create_app(settings)`` (see Settings)."""
    return {
        "threads": threads,
        "connection_limit": settings.server_connection_limit,
        "channel_timeout": settings.server_idle_timeout_s,
        "cleanup_interval": settings.server_cleanup_s,
        "max_request_body_size": max_body(settings),
        "clear_untrusted_proxy_headers": True,
    }


def max_body(settings: Settings) -> int:
    """Bytes a request body may have: an upload's article plus its form's overhead."""
    return settings.max_request_bytes + 64 * 1024


def create_app(settings: Settings | None = None, service: SearchService | None = None) -> Flask:
    """Build the Flask app around one SearchService (made from ``settings`` if not given)."""
    settings = settings or Settings.from_env()
    svc = service or SearchService(settings)
    app = Flask(
        __name__,
        template_folder=str(settings.web_dir / "templates"),
        static_folder=str(settings.web_dir / "static"),
    )
    app.config.update(
        MAX_CONTENT_LENGTH=max_body(settings),
        KQA_SETTINGS=settings,
        DEBUG=False,
        JSON_SORT_KEYS=False,
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]  # DefaultJSONProvider's, not in JSONProvider's stub
    app.extensions["karabakh_qa"] = svc
    app.extensions["karabakh_qa_jobs"] = svc.jobs  # the service's queue (tests wait on it)
    app.register_blueprint(html)
    app.register_blueprint(api)
    app.register_blueprint(api, url_prefix="/api/v1", name="api_v1")  # the versioned name
    app.register_error_handler(Exception, handle_error)
    app.before_request(start_request)
    app.after_request(finish_request)
    return app
