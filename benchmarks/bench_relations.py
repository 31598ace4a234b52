"""What the relation table costs a build (issue 15): the BBC News corpus indexed with
the hash embedder (relations need no model), in one run:

* this code with and without comparing articles (the shingle bands of each article
  are computed either way);
* this code against the build of a baseline commit before the issue's work
  (checked out by the script into a temporary git worktree).

Builds alternate, ``--rounds`` times each, every one in a fresh process with the
articles read before the clock starts.

Run: .venv/bin/python benchmarks/bench_relations.py [--folder ../shared/benchmarks/bbc-news]
     [--baseline d10651f] [--rounds 3]
Prints the seconds of each build and the medians; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

BUILD = """
import sys, tempfile, time, json
from pathlib import Path
from karabakh_qa.config import Settings
from karabakh_qa.embed import HashEmbedder
from karabakh_qa.ingest import read_articles
from karabakh_qa.store.embedded.build import build_from_articles
articles, _ = read_articles(Path(sys.argv[1]))
if sys.argv[2] == "off":  # (the baseline has no relations module)
    from karabakh_qa.store.embedded import relations
    relations.partners = lambda *a, **k: set()
    relations.lsh_partners = lambda *a, **k: set()
embedder = HashEmbedder(384)
with tempfile.TemporaryDirectory() as tmp:
    s = Settings(index_dir=Path(tmp), model_name=embedder.name)
    t = time.perf_counter()
    build_from_articles(s, embedder, articles, {})
    print(json.dumps({"seconds": time.perf_counter() - t, "articles": len(articles)}))
"""


def build(src: Path, folder: Path, relations: bool) -> float:
    """Seconds of one build from scratch by the code under ``src``, in a new process."""
    env = {**os.environ, "PYTHONPATH": str(src / "src"), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, "-c", BUILD, str(folder), "on" if relations else "off"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return float(json.loads(out.stdout.strip().splitlines()[-1])["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--folder", type=Path, default=ROOT.parent / "shared/benchmarks/bbc-news")
    parser.add_argument("--baseline", default="d10651f", help="commit before the issue's work")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    seconds: dict[str, list[float]] = {"baseline": [], "without": [], "with": []}
    with tempfile.TemporaryDirectory(prefix="bench-relations-") as tmp:
        base = Path(tmp) / "baseline"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base), args.baseline],
            check=True, capture_output=True,
        )  # fmt: skip
        try:
            for _ in range(args.rounds):
                seconds["baseline"].append(build(base, args.folder, True))
                seconds["without"].append(build(ROOT, args.folder, False))
                seconds["with"].append(build(ROOT, args.folder, True))
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)])
    med = {k: statistics.median(v) for k, v in seconds.items()}
    print(f"medians of {args.rounds}, hash embedder, {args.folder.name}:")
    print(f"  baseline {args.baseline}: {med['baseline']:.2f} s")
    print(f"  this code without comparing articles: {med['without']:.2f} s")
    print(f"  this code: {med['with']:.2f} s")
    print(f"relations add {med['with'] - med['without']:.2f} s "
          f"({(med['with'] / med['without'] - 1) * 100:+.1f} %)")  # fmt: skip
    print(f"against the baseline: {(med['with'] / med['baseline'] - 1) * 100:+.1f} %")
    print(json.dumps(seconds))


if __name__ == "__main__":
    main()
