"""What a concurrent build does to a serving process's worst query (issue 10's stall).

A thread answers questions back to back on an index from ``bench_scale.py``
(``.cache/bench_scale/index-N``, built first by that script) while
``karabakh-qa index`` adds one article, three times per variant: the build as it
is (it lowers itself to niceness 19), under ``nice -n 19``, with one OpenMP or
one BLAS thread, and an unrelated build (the seed folder into a scratch index).
Prints the worst query of each build's window (the build plus 0.5 s) and the
idle worst. Measured before builds lowered their priority: as is 26-31 ms, nice
19 17-18 ms, one BLAS thread 17-18 ms, idle 18 ms (300k).

Run: .venv/bin/python benchmarks/study_stall.py [--passages 300000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scale import MODEL, ROOT, cli_path, settle  # noqa: E402
from synthetic import article_text, file_name, questions  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=300_000)
    args = parser.parse_args()
    from karabakh_qa.config import Settings
    from karabakh_qa.service import SearchService

    base = ROOT / ".cache" / "bench_scale"
    articles, index = base / f"corpus-{args.passages}", base / f"index-{args.passages}"
    if not (index / "CURRENT").exists():
        sys.exit(f"no index at {index}: run bench_scale.py --passages {args.passages} first")
    settings = Settings(articles_dir=articles, index_dir=index, model_name=MODEL)
    svc = SearchService(settings)
    qs = questions(300)
    for q in qs[:10]:
        svc.search(q, 10)
    settle(svc)
    samples: list[tuple[float, float]] = []
    stop = threading.Event()

    def answer() -> None:
        k = 0
        while not stop.is_set():
            t = time.perf_counter()
            svc.search(qs[10 + k % 290], 10)
            samples.append((t, time.perf_counter()))
            k += 1

    def worst(t0: float, t1: float) -> float:
        return round(max((e - s) * 1000 for s, e in samples if t0 <= s <= t1), 1)

    env = {**os.environ, "KARABAKH_QA_ARTICLES": str(articles), "KARABAKH_QA_INDEX": str(index)}
    one_thread = {**env, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    build = [cli_path(), "index", "--model", MODEL]
    scratch = tempfile.mkdtemp(prefix="stall-seeds-")
    seeds = {**env, "KARABAKH_QA_ARTICLES": str(ROOT / "seeds"), "KARABAKH_QA_INDEX": scratch}
    variants = [
        ("as is", [], env, True),
        ("nice 19", ["nice", "-n", "19"], env, True),
        ("1 OpenMP/BLAS thread", [], one_thread, True),
        ("1 OpenMP thread", [], {**env, "OMP_NUM_THREADS": "1"}, True),
        ("1 BLAS thread", [], {**env, "OPENBLAS_NUM_THREADS": "1"}, True),
        ("unrelated: seeds into a scratch index", [], seeds, False),
    ]
    worker = threading.Thread(target=answer, daemon=True)
    worker.start()
    time.sleep(1.0)
    t0 = time.perf_counter()
    time.sleep(2.0)
    out: dict = {"passages": args.passages, "idle_worst_ms": worst(t0, time.perf_counter())}
    added = []
    try:
        for label, prefix, run_env, adds in variants:
            results = []
            for _ in range(3):
                if adds:
                    i = 990_000 + len(added)
                    added.append(file_name(i))
                    (articles / added[-1]).write_text(article_text(i), encoding="utf-8")
                t0 = time.perf_counter()
                subprocess.run(prefix + build, env=run_env, capture_output=True, check=True)
                t1 = time.perf_counter()
                time.sleep(0.5)
                results.append(worst(t0, t1 + 0.5))
                subprocess.run(["rm", "-rf", scratch], check=True)
            out[label] = {"worst_ms": results, "median": statistics.median(results)}
            print(label, results, file=sys.stderr)
    finally:
        stop.set()
        worker.join()
        for name in added:
            (articles / name).unlink(missing_ok=True)
        subprocess.run(build, env=env, capture_output=True)  # the index follows the folder again
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
