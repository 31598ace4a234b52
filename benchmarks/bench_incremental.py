"""Full build over a few thousand articles vs. adding one article.

Run: .venv/bin/python benchmarks/bench_incremental.py [--articles 3000]
Articles are SciFact abstracts (../shared/benchmarks/scifact/corpus.jsonl) written
out as files with a front-matter title, into a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from synthetic import article_text, extra_paragraph

from karabakh_qa.config import PROJECT_ROOT, Settings
from karabakh_qa.service import SearchService

CORPUS = PROJECT_ROOT.parent / "shared" / "benchmarks" / "scifact" / "corpus.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--articles", type=int, default=3000)
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    args = parser.parse_args()
    docs = [json.loads(line) for line in args.corpus.open()][: args.articles + 1]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "articles"
        folder.mkdir()

        def write(doc: dict) -> None:
            title = doc["title"].replace("\n", " ")
            (folder / f"scifact-{doc['_id']}.txt").write_text(
                f"---\ntitle: {title}\n---\n{doc['text']}\n", encoding="utf-8"
            )

        for doc in docs[:-1]:
            write(doc)
        settings = Settings(
            articles_dir=folder, index_dir=Path(tmp) / "index", torch_threads=os.cpu_count() or 1
        )
        service = SearchService(settings)
        service.embedder  # load the model outside the timings  # noqa: B018
        t = time.perf_counter()
        full = service.build(full=True)
        full_s = time.perf_counter() - t
        print(
            f"full build: {full.articles} articles, {full.passages} passages, "
            f"embedded {full.embedded}, {full_s:.1f}s ({full.passages / full_s:.1f} passages/s)"
        )
        write(docs[-1])
        t = time.perf_counter()
        update = service.build()
        update_s = time.perf_counter() - t
        print(
            f"one-article update: added {update.added}, embedded {update.embedded} passages "
            f"and {update.embedded_sentences} sentences "
            f"(the new article has {update.passages - full.passages} passages), "
            f"reused {update.reused}, {update_s:.2f}s = "
            f"{100 * update_s / full_s:.2f}% of the full build"
        )
        # The upload path (model loaded, only the named file looked at), with an
        # 8-paragraph synthetic article: add, change (a paragraph appended), remove.
        news = folder / "news-article.txt"
        steps = (
            ("add", lambda: news.write_text(article_text(123456), encoding="utf-8")),
            ("change", lambda: news.write_text(article_text(123456) + "\n" + extra_paragraph(1))),
            ("remove", news.unlink),
        )
        for label, step in steps:
            step()
            t = time.perf_counter()
            report = service.build(only=[news.name])
            print(
                f"upload path, {label} one 8-paragraph article: {time.perf_counter() - t:.2f}s "
                f"(embedded {report.embedded} passages, {report.embedded_sentences} sentences)"
            )


if __name__ == "__main__":
    main()
