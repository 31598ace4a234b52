"""Command line: thin wrappers over :class:`SearchService`.

Exit codes: 0 success, 1 a user error (one line, no traceback), 2 usage.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any

# One OpenBLAS thread per CLI process, set before numpy loads it: our numpy work
# is small, and the pool OpenBLAS starts at import kept a server's queries off the
# other core (worst query during a 300k `index` 24-36 ms, with this 17-18 ms, idle
# 18 ms: benchmarks/study_stall.py). Torch keeps its own threads for embedding.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# A query runs dense search in a helper thread beside BM25, and a server's refresher
# opens new generations beside the queries: a thread waiting for the GIL waits up to
# the switch interval. 0.5 ms instead of 5: 300k p50 10.1 -> 9.1 ms, p95 13.6 -> 12.3
# ms, 1M p50 20.9 -> 19.2 ms (400 bench_scale questions, one process, alternating).
GIL_SWITCH_S = 0.0005
sys.setswitchinterval(GIL_SWITCH_S)

import click  # noqa: E402

from .config import (  # noqa: E402
    BACKENDS,
    DEFAULT_BACKEND,
    DEFAULT_MODEL,
    DENSE_MODES,
    PASSAGE_VECTORS,
    PROJECT_ROOT,
    QUERY_RUNTIMES,
    Settings,
)
from .errors import BadRequest, IndexUnavailable, KarabakhError  # noqa: E402
from .ingest import sources_in  # noqa: E402
from .records import date_label  # noqa: E402
from .relations.corroboration import first_reported  # noqa: E402
from .service import SearchResult, SearchService  # noqa: E402
from .store.embedded.build import BuildReport  # noqa: E402

if TYPE_CHECKING:
    from .embed import Embedder
    from .embed.distributed import RayEmbedder
    from .evaluate import Collection

path_option = click.Path(file_okay=False, path_type=Path)
Command = Callable[..., Any]  # a click command's function


def _settings_command(func: Command, folders: bool) -> Command:
    """Options that become the command's Settings: --model, and --articles/--index
    when the command reads the configured folders (``eval`` indexes its benchmark
    into a scratch folder, so it does not offer them)."""

    @click.option(
        "--model",
        default=None,
        help="Embedding model name or folder (default: the index's model; "
        "hash-bow-384 is the structural-benchmark model).",
    )
    @wraps(func)
    def wrapper(
        model: str | None,
        articles: Path | None = None,
        index_dir: Path | None = None,
        **kwargs: Any,
    ) -> Any:
        settings = Settings.from_env(articles_dir=articles, index_dir=index_dir, model_name=model)
        try:
            return func(settings, **kwargs)
        except KarabakhError as exc:
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(1)

    if not folders:
        return wrapper
    wrapper = click.option(
        "--index",
        "index_dir",
        type=path_option,
        envvar="KARABAKH_QA_INDEX",
        help="Index folder (default: index/).",
    )(wrapper)
    return click.option(
        "--articles",
        type=path_option,
        envvar="KARABAKH_QA_ARTICLES",
        help="Articles folder (default: seeds/).",
    )(wrapper)


def common(func: Command) -> Command:
    """--articles/--index/--model on a command, defaulting to the environment."""
    return _settings_command(func, folders=True)


def model_only(func: Command) -> Command:
    """--model alone: for commands that index a benchmark of their own (``eval``)."""
    return _settings_command(func, folders=False)


def settings_option(name: str, choices: tuple[str, ...], help: str) -> Callable[[Command], Command]:
    """A ``--name`` choice that sets the Settings field of that name (unset: the default)."""

    def decorate(func: Command) -> Command:
        @click.option(f"--{name.replace('_', '-')}", name, type=click.Choice(choices), help=help)
        @wraps(func)
        def wrapper(settings: Settings, **kwargs: Any) -> Any:
            value = kwargs.pop(name)
            return func(settings.replace(**{name: value}) if value else settings, **kwargs)

        return wrapper

    return decorate


dense_option = settings_option(
    "dense",
    DENSE_MODES,
    "Dense search: exact, ann (sign bits + exact rescoring) on every segment, "
    "or auto (the ANN for large segments; the default).",
)
ranker_option = settings_option(
    "ranker",
    ("fixed", "learned"),
    "Order: the fixed-weight fusion's top 10 re-scored by the learned second phase "
    "(answer/rank.py; the default), or the fixed-weight fusion alone.",
)
query_runtime_option = settings_option(
    "query_runtime",
    QUERY_RUNTIMES,
    "Embed questions through onnx (an export of the same weights, built once in the "
    "cache folder; the default) or torch.",
)

backend_option = settings_option(
    "backend",
    BACKENDS,
    "What runs the model over passages and questions: torch (fp32), onnx (ONNX Runtime, "
    "dynamic int8) or openvino (static int8); both int8 graphs are built here once, in "
    "the cache folder. Default: the index's backend (openvino for a new index).",
)

passage_vectors_option = settings_option(
    "passage_vectors",
    PASSAGE_VECTORS,
    "A passage's vector: the length-weighted mean of its sentences' vectors "
    "(sentences, the default: no model call of its own) or the passage embedded "
    "whole (model). Changing it rebuilds the index.",
)


def store_options(func: Command) -> Command:
    """--store and --milvus-uri: where passages are searched (Settings.store)."""

    @click.option(
        "--store",
        type=click.Choice(["embedded", "milvus"]),
        default=None,
        help="Where passages are searched: the embedded segmented index, or a Milvus "
        "collection (default: what the index records, else embedded).",
    )
    @click.option(
        "--milvus-uri",
        default=None,
        metavar="URI",
        help="The Milvus store: a file path (Milvus Lite) or http://host:19530 (a token "
        "from $KARABAKH_QA_MILVUS_TOKEN).",
    )
    @wraps(func)
    def wrapper(
        settings: Settings, store: str | None, milvus_uri: str | None, **kwargs: Any
    ) -> Any:
        if store:
            settings = settings.replace(store=store)
        if milvus_uri:
            settings = settings.replace(milvus_uri=milvus_uri)
        return func(settings, **kwargs)

    return wrapper


def settings_embedder(settings: Settings, name: str = "") -> Embedder:
    """The embedder ``settings`` ask for (model, threads, backend, device)."""
    from .embed import load_embedder

    return load_embedder(
        name or settings.model_name or DEFAULT_MODEL,
        settings.torch_threads,
        settings.query_runtime,
        settings.cache_dir,
        settings.backend or DEFAULT_BACKEND,
        settings.device,
    )


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log progress to stderr.")
def main(verbose: bool) -> None:
    """karabakh-qa: cited answers from a folder of news articles."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    # pymilvus warns on every iterator over Milvus Lite (no server timestamp): noise
    logging.getLogger("pymilvus").setLevel(logging.INFO if verbose else logging.ERROR)


def plural(n: int, word: str) -> str:
    """``1 article``, ``2 articles``."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def print_report(report: BuildReport) -> None:
    d = report.to_dict()
    counts = f"{plural(d['articles'], 'article')}, {plural(d['passages'], 'passage')}"
    if not report.wrote:
        click.echo(
            f"generation {d['generation']}: up to date ({counts}, "
            f"{plural(d['segments'], 'segment')}); nothing written"
        )
        return
    click.echo(f"generation {d['generation']}: {counts} in {d['seconds']:.1f}s")
    click.echo(
        f"  added {len(d['added'])}, changed {len(d['changed'])}, removed {len(d['removed'])}, "
        f"unchanged {d['unchanged']}; embedded {plural(d['embedded'], 'passage')} "
        f"({plural(d['embedded_sentences'], 'sentence')}), reused {d['reused']}; "
        f"{plural(d['segments'], 'segment')}" + (f" ({d['merged']} merged)" if d["merged"] else "")
    )
    if report.scope == "journal":
        click.echo("  files named by the change journal; the folder was not scanned")
    for s in d["skipped"]:  # said here once (the library logs them at INFO)
        click.echo(f"  skipped {s['source']}: {s['reason']}")


RELATION_LABELS = {"duplicate": "a copy", "version": "another version"}
BUILD_NICENESS = 19  # `index` yields the cores to a server (see index_cmd)


PRIORITIES = ("idle", "low", "normal")


def yield_cores(priority: str) -> None:
    """Lower this process's CPU priority once: "idle" is SCHED_IDLE (a core only
    when nothing else wants one; a waking query preempts it at once; where Linux's
    SCHED_IDLE is missing, "low"), "low" is niceness BUILD_NICENESS."""
    if priority == "idle":
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
            return
        except (AttributeError, OSError):
            priority = "low"
    if priority == "low":
        os.nice(max(0, BUILD_NICENESS - os.nice(0)))


@main.command("index")
@common
@backend_option
@passage_vectors_option
@store_options
@click.option(
    "--device",
    default=None,
    help="Where torch runs the model: cpu (the default) or cuda (a GPU, fp16).",
)
@click.option(
    "--ray",
    "ray_address",
    is_flag=False,
    flag_value="local",
    default=None,
    metavar="[ADDRESS]",
    help="Embed on a Ray cluster (Ray Data over an actor pool): at ADDRESS "
    "(e.g. --ray=10.0.0.5:6379), or a local one when no address is given.",
)
@click.option(
    "--ray-actors",
    type=click.IntRange(1, 4096),
    default=2,
    show_default=True,
    help="Actors (one model copy and one CPU each) for --ray.",
)
@click.option("--full", is_flag=True, help="Re-embed everything instead of reusing vectors.")
@click.option("--wait", is_flag=True, help="Wait for another running build instead of refusing.")
@click.option("--watch", is_flag=True, help="Keep watching the folder and rebuild on changes.")
@click.option("--optimize", is_flag=True, help="Merge every segment into one.")
@click.option("--repair", is_flag=True, help="Drop damaged segments and re-index their articles.")
@click.option(
    "--allow-empty",
    is_flag=True,
    help="Let the build empty an index that holds articles (refused otherwise).",
)
@click.option(
    "--threads",
    type=click.IntRange(1, 64),
    default=None,
    help="Torch threads for embedding (default: all cores).",
)
@click.option(
    "--priority",
    type=click.Choice(PRIORITIES),
    default="idle",
    show_default=True,
    help="CPU priority beside a server: idle runs only on cores its queries leave free "
    "(under a saturating load a build waits for it to ease); low is niceness 19.",
)
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
def index_cmd(
    settings: Settings,
    full: bool,
    wait: bool,
    watch: bool,
    optimize: bool,
    repair: bool,
    allow_empty: bool,
    threads: int | None,
    priority: str,
    device: str | None,
    ray_address: str | None,
    ray_actors: int,
    files: tuple[Path, ...],
) -> None:
    """Bring the index up to date with the articles folder (a new segment per change).

    With FILES, only those articles are looked at (added, changed, or removed when
    missing): no scan of the folder, for a pipeline that knows what it wrote."""
    if files and (full or repair or watch):
        raise BadRequest("FILES cannot be combined with --full, --repair or --watch")
    # A build shares the machine with the server: at niceness 0 or 10 a 300k add made
    # the worst concurrent query 25-31 ms, at 19 17-18 ms (benchmarks/study_stall.py);
    # at 1M the switch stall was 22-23 ms at niceness 19, 15-19 ms at SCHED_IDLE.
    yield_cores(priority)
    only = sources_in(settings.articles_dir, list(files)) if files else None
    settings = settings.replace(
        torch_threads=threads or os.cpu_count() or 1, device=device or settings.device
    )
    with ExitStack() as stack:
        embedder = None
        if ray_address is not None:
            embedder = stack.enter_context(ray_embedder(settings, ray_address, ray_actors))
        report = _build_with_bar(SearchService(settings, embedder), full, wait, only, optimize,
                                 repair, allow_empty)  # fmt: skip
    print_report(report)
    if watch:
        from .watch import watch_folder

        click.echo(f"watching {settings.articles_dir} (Ctrl-C to stop)")
        watch_folder(SearchService(settings), on_build=print_report)


def ray_embedder(settings: Settings, address: str, actors: int) -> RayEmbedder:
    """The settings' embedder run on Ray actors (address "local": a local cluster)."""
    from .embed.distributed import RayEmbedder

    service = SearchService(settings)  # the index's model and backend unless set
    settings = settings.replace(backend=service.backend())
    base = settings_embedder(settings, service.model_name())
    loader: dict[str, str | Path] = {"cache_dir": settings.cache_dir, "backend": settings.backend}
    return RayEmbedder(base, None if address == "local" else address, actors, loader)


def _build_with_bar(
    service: SearchService,
    full: bool,
    wait: bool,
    only: list[str] | None,
    optimize: bool,
    repair: bool,
    allow_empty: bool,
) -> BuildReport:
    """service.build() under a progress bar: articles, ETA and passages/s."""
    started = time.monotonic()
    shown: Any = click.progressbar(  # articles, with the ETA and the passages/s so far
        length=1, label="indexing articles", file=sys.stderr, item_show_func=lambda x: x
    )
    with shown as bar:

        def progress(done: int, total: int, passages: int) -> None:
            bar.length = max(total, 1)
            seconds = time.monotonic() - started
            bar.update(done - bar.pos, f"{passages / seconds:.1f} passages/s" if seconds else "")

        return service.build(
            full=full,
            wait=wait,
            progress=progress,
            only=only,
            optimize=optimize,
            repair=repair,
            allow_empty=allow_empty,
        )


@main.command("journal")
@common
def journal_cmd(settings: Settings) -> None:
    """Journal which article files change, until Ctrl-C, so that `index` looks at
    those files instead of scanning the whole folder (like git's fsmonitor)."""
    from .watch import JournalWriter

    if not settings.articles_dir.is_dir():
        raise BadRequest(f"articles folder {settings.articles_dir} does not exist")
    writer = JournalWriter(settings.articles_dir, settings.index_dir)
    writer.start()
    click.echo(f"journaling changes under {settings.articles_dir} (Ctrl-C to stop)")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        writer.stop()


def print_result(result: SearchResult) -> None:
    """The page's answer as text: the same hits, quotes, dates, offsets and relations
    (answer span, first report, other versions, differing figures), no new words."""
    if not result.answer_found:
        click.echo("No confident answer in the archive; the nearest passages are:")
        if result.missing_terms:
            click.echo(f"The archive never mentions: {', '.join(result.missing_terms)}.")
        click.echo()
    for fig in result.figures or []:
        click.echo(f"Figures differ across sources: {fig['measure']} (each as reported)")
        for v in fig["values"]:
            click.echo(
                f"  {v['value']}: {v['file']} paragraph {v['paragraph']}, "
                f"{v['date'] or 'date unknown'}, chars {v['start']}–{v['end']}"
            )
        click.echo()
    for hit in result.hits:
        d = hit.to_dict()
        date = date_label(d["date"], d["date_source"])
        section = f', section "{d["section"]}"' if d["section"] else ""
        click.echo(f"[{d['rank']}] {d['text']}")
        click.echo(
            f"    — {d['file']}, {date}, paragraph {d['paragraph']}{section}, "
            f"chars {d['start']}–{d['end']}"
        )
        title = f"“{d['title']}”" if d["title"] else None
        who = " · ".join(x for x in (d["outlet"] or "outlet unknown", title, d["url"]) if x)
        click.echo(f"      {who}")
        span = d["answer_span"]
        if span and d["answers"]:
            where = f"chars {span['start']}–{span['end']}"
            click.echo(f"      answer: “{span['text']}” ({span['type']}, {where})")
        w = d["explain"]["parts"]
        click.echo(
            f"      why (0-1): words {w['lexical']:.2f} · meaning {w['semantic']:.2f} · "
            f"sentence {w['sentence']:.2f} · terms {w['terms']:.2f} · answer {w['answer']:.2f}"
            + ("" if d["answers"] else " · does not pass the answer rule")
        )
        reported = first_reported(d["corroboration"]) if d["corroboration"] else None
        if reported:
            click.echo(f"    {reported}")
        for c in d["also_in"]:
            click.echo(
                f"    also in {c['file']} paragraph {c['paragraph']}, "
                f"{date_label(c['date'], c['date_source'])}"
            )
        for v in d["versions"]:
            what = RELATION_LABELS.get(v["relation"], "a report sharing sentences")
            figures = "; figures differ" if v["figures"] else ""
            click.echo(
                f"    {what}: {v['file']} ({date_label(v['date'], v['date_source'])}): "
                f"{plural(v['changed'], 'sentence')} changed, {v['added']} added, "
                f"{v['removed']} removed{figures}"
            )
            for f in v["figures"]:
                click.echo(
                    f"      {f['measure']}: {f['before']['value']} here, "
                    f"{f['after']['value']} in {v['file']}"
                )
        click.echo()


@main.command()
@common
@dense_option
@query_runtime_option
@backend_option
@ranker_option
@store_options
@click.argument("question")
@click.option("-k", type=int, default=5, show_default=True, help="Number of passages.")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON shape.")
@click.option("--source", "sources", multiple=True, help="Only this article (repeatable).")
@click.option("--since", default=None, help="Only passages dated on or after YYYY-MM-DD.")
@click.option("--until", default=None, help="Only passages dated on or before YYYY-MM-DD.")
@click.option(
    "--allow-stale", is_flag=True, help="Answer even if articles changed since the build."
)
def ask(
    settings: Settings,
    question: str,
    k: int,
    as_json: bool,
    sources: tuple[str, ...],
    since: str | None,
    until: str | None,
    allow_stale: bool,
) -> None:
    """Cited passages answering QUESTION ('-' with --json: one question per stdin line)."""
    try:
        service = SearchService(settings)
        stale = service.stale()
        if stale and not allow_stale:
            raise IndexUnavailable(
                f"index is stale: {plural(len(stale), 'article file')} changed since it was built "
                f"(e.g. {stale[0]}); run `{service.index_command()}`, or pass --allow-stale"
            )
        if stale:
            click.echo(
                f"warning: index is stale ({plural(len(stale), 'article file')} changed)", err=True
            )
        if question == "-":
            _ask_lines(service, k, list(sources), since, until)
            return
        result = service.search(question, k, list(sources), since, until)
    except KarabakhError as exc:
        if not (as_json or question == "-"):
            raise
        click.echo(json.dumps(exc.to_dict(), ensure_ascii=False))  # JSON in, JSON out
        raise SystemExit(1) from None
    if as_json:
        click.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
    else:
        print_result(result)


def _ask_lines(
    service: SearchService,
    k: int,
    sources: list[str],
    since: str | None,
    until: str | None,
) -> None:
    """One JSON line out per line in, in order, blank and undecodable lines included
    (as errors), so that output line n answers input line n."""
    for n, raw in enumerate(sys.stdin.buffer, start=1):
        try:
            line = raw.decode("utf-8")
            out = service.search(line, k, sources, since, until).to_dict()
        except UnicodeDecodeError as exc:
            error = BadRequest(f"line {n} is not UTF-8 (invalid byte at offset {exc.start})")
            out = {**error.to_dict(), "question": None}
        except KarabakhError as exc:
            out = {**exc.to_dict(), "question": line.strip()}
        click.echo(json.dumps(out, ensure_ascii=False))


@main.command()
@common
@dense_option
@query_runtime_option
@backend_option
@ranker_option
@store_options
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 64))
@click.option(
    "--query-model",
    default=None,
    help="Benchmarks only: embed questions with this model, whatever built the index.",
)
def serve(settings: Settings, host: str, port: int, threads: int, query_model: str | None) -> None:
    """Serve the web form and JSON API with waitress (builds the index if missing)."""
    import waitress

    from .web import create_app, server_options

    if query_model:
        settings = settings.replace(query_model=query_model)
    service = SearchService(settings)
    report = service.ensure_index()
    if report:
        print_report(report)
    app = create_app(settings, service=service)
    service.start_refresher()  # new generations open in the background, not in a query
    service.warm()  # the model loaded and a few questions answered before we say so
    click.echo(f"serving on http://{host}:{port}/")
    waitress.serve(app, host=host, port=port, **server_options(settings, threads))


@main.group("eval")
def eval_group() -> None:
    """Retrieval quality on public benchmarks (pytrec_eval metrics)."""


def parse_weights(value: str | None) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        parsed = tuple(float(w) for w in value.split(","))
    except ValueError:
        parsed = ()
    if len(parsed) != 4:
        raise click.BadParameter("give four numbers: bm25,dense,sentence,coverage")
    return parsed


def eval_options(func: Command) -> Command:
    @click.option(
        "--run-out",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Write the default system's TREC run file here.",
    )
    @click.option(
        "--weights",
        default=None,
        callback=lambda ctx, param, value: parse_weights(value),
        help="Fusion weights bm25,dense,sentence,coverage (e.g. 1,1.3,2,1).",
    )
    @click.option("--fusion", type=click.Choice(["zscore", "minmax", "rrf"]), default=None)
    @click.option("--k1", type=click.FloatRange(0), default=None)
    @click.option("--b", type=click.FloatRange(0, 1), default=None)
    @click.option(
        "--bm25-context/--no-bm25-context",
        default=None,
        help="Index title and section in BM25 too.",
    )
    @click.option(
        "--embed-context/--no-embed-context",
        default=None,
        help="Embed title and section with the passage.",
    )
    @click.option("--threads", type=click.IntRange(1, 64), default=None)
    @click.option(
        "--batches",
        type=click.IntRange(1, 100),
        default=1,
        show_default=True,
        help="Build the collection as this many segments (plus deletions).",
    )
    @wraps(func)
    def wrapper(
        settings: Settings,
        run_out: Path | None,
        batches: int,
        weights: tuple[float, ...] | None,
        fusion: str | None,
        k1: float | None,
        b: float | None,
        bm25_context: bool | None,
        embed_context: bool | None,
        threads: int | None,
        **kwargs: Any,
    ) -> None:
        chosen = {
            "fusion": fusion,
            "fusion_weights": weights,
            "bm25_k1": k1,
            "bm25_b": b,
            "bm25_context": bm25_context,
            "embed_context": embed_context,
        }
        settings = settings.replace(
            torch_threads=threads or os.cpu_count() or 1,
            **{k: v for k, v in chosen.items() if v is not None},
        )
        collection, tag = func(settings, **kwargs)
        run_evaluation(settings, collection, tag, run_out, batches)

    return wrapper


def run_evaluation(
    settings: Settings,
    collection: Collection,
    tag: str,
    run_out: Path | None,
    batches: int = 1,
) -> None:
    from .evaluate import evaluate, table, variants, write_run

    systems = variants(settings)
    click.echo(
        f"{tag}: {len(collection.docs)} documents, {len(collection.qrels)} queries; "
        f"k1={settings.bm25_k1} b={settings.bm25_b} bm25_context={settings.bm25_context} "
        f"embed_context={settings.embed_context} depth={settings.depth}",
        err=True,
    )
    embedder = settings_embedder(settings)
    metrics, runs = evaluate(collection, settings, embedder, systems, batches=batches)
    click.echo(table(metrics))
    if run_out:
        default = next(name for name in systems if name.startswith("default"))
        write_run(runs[default], run_out, "karabakh-qa")
        click.echo(f"run file: {run_out}", err=True)


@eval_group.command("beir")
@model_only
@backend_option
@passage_vectors_option
@dense_option
@store_options
@eval_options
@click.argument("folder", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--split", default="test", show_default=True)
def eval_beir(settings: Settings, folder: Path, split: str) -> tuple[Collection, str]:
    """Evaluate on a BEIR-layout FOLDER (corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv)."""
    from .evaluate import load_beir

    return load_beir(folder, split), f"{folder.name}/{split}"


@eval_group.command("squad")
@model_only
@backend_option
@passage_vectors_option
@dense_option
@store_options
@eval_options
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option(
    "--part",
    type=click.Choice(["report", "tune", "all"]),
    default="report",
    show_default=True,
    help="Questions of every 4th article are for tuning only.",
)
def eval_squad(settings: Settings, file: Path, part: str) -> tuple[Collection, str]:
    """Evaluate on SQuAD v1.1 FILE: the gold passage of a question is its paragraph."""
    from .evaluate import load_squad

    return load_squad(file, part), f"squad/{part}"


@eval_group.command("news")
@model_only
@backend_option
@passage_vectors_option
@dense_option
@query_runtime_option
@ranker_option
@click.argument("folder", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option(
    "--dev",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=PROJECT_ROOT / "tests" / "data" / "bbc_dev.json",
    show_default=True,
    help="Questions with the file and snippet of their answer, and unanswerable ones.",
)
@click.option("--threads", type=click.IntRange(1, 64), default=None)
@click.option(
    "--report-out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the whole report, per question, as JSON here.",
)
def eval_news(
    settings: Settings, folder: Path, dev: Path, threads: int | None, report_out: Path | None
) -> None:
    """Answer a dev set's questions over the news archive in FOLDER, as the API does:
    Hit@k of the passage that holds the answer, answer_found, abstention."""
    from .evaluate_qa import archive_service, judge, load_dev, table

    questions = load_dev(dev)
    settings = settings.replace(torch_threads=threads or os.cpu_count() or 1)
    embedder = settings_embedder(settings)
    click.echo(
        f"{folder.name}: {len(questions.answerable)} questions, "
        f"{len(questions.unanswerable)} unanswerable ({dev.name})",
        err=True,
    )
    with archive_service(settings, embedder, folder) as service:
        report = judge(service, questions)
    click.echo(table(report))
    if report_out:
        report_out.write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
        click.echo(f"report: {report_out}", err=True)


@eval_group.command("pairs")
@model_only
@click.argument("folder", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option(
    "--pairs",
    "pairs_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=PROJECT_ROOT / "tests" / "data" / "bbc_pairs.json",
    show_default=True,
    help="Hand-labelled story pairs: version, copy or unrelated, with figures that differ.",
)
@click.option("--report-out", type=click.Path(dir_okay=False, path_type=Path))
def eval_pairs(settings: Settings, folder: Path, pairs_file: Path, report_out: Path | None) -> None:
    """Index the news archive in FOLDER and check the relations between its articles
    (versions, copies, differing figures) against labelled pairs: precision, recall."""
    from .embed import HashEmbedder
    from .evaluate_qa import archive_service, judge_pairs, pairs_table

    try:
        pairs = json.loads(pairs_file.read_text(encoding="utf-8"))["pairs"]
    except (OSError, ValueError, KeyError) as exc:
        raise BadRequest(f"cannot read labelled pairs from {pairs_file}: {exc}") from None
    # Relations are computed from the words alone: the hash embedder spares the model.
    with archive_service(settings, HashEmbedder(64), folder) as service:
        report = judge_pairs(service, pairs)
    click.echo(pairs_table(report))
    if report_out:
        report_out.write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
        click.echo(f"report: {report_out}", err=True)


if __name__ == "__main__":  # pragma: no cover
    main()
