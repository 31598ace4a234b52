"""A deterministic synthetic news corpus made of real sentences, for scale benchmarks.

Sentences come from SQuAD dev contexts and SciFact abstracts (``../shared/benchmarks``,
or ``$KARABAKH_QA_BENCHMARKS``); they are recombined into articles of a title line,
then 8 paragraphs of 3-6 sentences separated by blank lines. About one article in
five opens with a ``date YYYY-MM-DD`` marker line, and about 3 % of paragraphs are
near-copies (one word changed) of a paragraph of an earlier article.

Article ``i`` depends only on ``i`` and ``seed``, never on the corpus size, so a
benchmark can write article ``n_articles`` as a genuinely new one.
"""

from __future__ import annotations

import functools
import json
import os
import random
import re
from pathlib import Path

PARAGRAPHS = 8
DATE_SHARE = 0.2
COPY_SHARE = 0.03
COPY_WINDOW = 2000  # a near-copy's original is one of the previous COPY_WINDOW articles
MAX_PARAGRAPH_CHARS = 700  # stop adding sentences past this (keeps passages < 256 pieces)
STAMP = ".synthetic.json"  # hidden, so the indexer ignores it
VERSION = 1

_SENT_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_SENT_OK = re.compile(r"[A-Z][^\n]{28,198}[.!?]")
_SKIP_START = re.compile(r"(source|related|read more|reporting by|editing by|writing by)\b", re.I)
_SWAP_WORDS = ("report", "region", "officials", "village", "council", "study", "market", "river")
_TITLE_STRIP = re.compile(r"^\W+|\W+$")


def data_root() -> Path:
    """The public benchmark data folder (``$KARABAKH_QA_BENCHMARKS`` overrides)."""
    env = os.environ.get("KARABAKH_QA_BENCHMARKS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared" / "benchmarks"


def _split(text: str) -> list[str]:
    out = []
    for sent in _SENT_SPLIT.split(" ".join(text.split())):
        if _SENT_OK.fullmatch(sent) and len(sent.split()) >= 5 and not _SKIP_START.match(sent):
            out.append(sent)
    return out


@functools.cache
def sentence_pool() -> tuple[str, ...]:
    """All usable sentences, deduplicated, in a fixed order (SQuAD dev, then SciFact)."""
    root = data_root()
    sents: list[str] = []
    squad = json.loads((root / "squad" / "dev-v1.1.json").read_text(encoding="utf-8"))
    for article in squad["data"]:
        for para in article["paragraphs"]:
            sents.extend(_split(para["context"]))
    with open(root / "scifact" / "corpus.jsonl", encoding="utf-8") as fh:
        for line in fh:
            sents.extend(_split(json.loads(line)["text"]))
    return tuple(dict.fromkeys(sents))


def _rng(seed: int, salt: int, i: int, p: int = 0) -> random.Random:
    """An independent generator for (seed, salt, article i, paragraph p)."""
    return random.Random(((seed * 8 + salt) << 40) + i * 8 + p)


def _fresh_paragraph(i: int, p: int, seed: int) -> str:
    pool = sentence_pool()
    rng = _rng(seed, 0, i, p)
    sents: list[str] = []
    size = 0
    for _ in range(rng.randint(3, 6)):
        if len(sents) >= 3 and size > MAX_PARAGRAPH_CHARS:
            break
        sent = pool[rng.randrange(len(pool))]
        sents.append(sent)
        size += len(sent) + 1
    return " ".join(sents)


def _change_one_word(text: str, rng: random.Random) -> str:
    words = text.split(" ")
    spots = [k for k, w in enumerate(words) if w.isalpha() and len(w) >= 4] or [0]
    k = rng.choice(spots)
    new = rng.choice([w for w in _SWAP_WORDS if w != words[k].lower()])
    words[k] = new.capitalize() if words[k][:1].isupper() else new
    return " ".join(words)


def paragraph_text(i: int, p: int, seed: int = 0) -> str:
    """Paragraph ``p`` (0-7) of article ``i``: fresh, or a near-copy of an earlier one."""
    rng = _rng(seed, 1, i, p)
    if i > 0 and rng.random() < COPY_SHARE:
        j = rng.randrange(max(0, i - COPY_WINDOW), i)
        return _change_one_word(paragraph_text(j, rng.randrange(PARAGRAPHS), seed), rng)
    return _fresh_paragraph(i, p, seed)


def _title(i: int, seed: int) -> str:
    pool = sentence_pool()
    rng = _rng(seed, 2, i)
    words = pool[rng.randrange(len(pool))].split()[: rng.randint(5, 9)]
    words = [w for w in (_TITLE_STRIP.sub("", w) for w in words) if w]
    return " ".join(words)[:100].rstrip() or f"Article {i}"


def _date(i: int, seed: int) -> str | None:
    rng = _rng(seed, 3, i)
    if rng.random() >= DATE_SHARE:
        return None
    return f"{rng.randint(2015, 2024)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


def article_text(i: int, seed: int = 0) -> str:
    """The full text of article ``i`` (independent of the corpus size)."""
    parts = [_title(i, seed)]
    parts.extend(paragraph_text(i, p, seed) for p in range(PARAGRAPHS))
    body = "\n\n".join(parts) + "\n"
    date = _date(i, seed)
    return f"date {date}\n\n{body}" if date else body


def extra_paragraph(i: int, k: int = 0, seed: int = 0) -> str:
    """A fresh paragraph to append to article ``i`` (``k``-th edit), not in the corpus."""
    return _fresh_paragraph(i, k, seed + 1_000_003)


def file_name(i: int) -> str:
    """The file name of article ``i``: ``a0000000.txt``, ``a0000001.txt``, ..."""
    return f"a{i:07d}.txt"


def n_articles(n_passages: int) -> int:
    """Number of 8-paragraph articles for ``n_passages`` (rounded up)."""
    return -(-n_passages // PARAGRAPHS)


def _is_complete(folder: Path, n_files: int, seed: int) -> bool:
    stamp = folder / STAMP
    try:
        meta = json.loads(stamp.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if meta != {"version": VERSION, "seed": seed, "files": n_files}:
        return False
    names = {e.name for e in os.scandir(folder) if e.name.endswith(".txt")}
    if names != {file_name(i) for i in range(n_files)}:
        return False
    step = max(1, n_files // 64)  # spot-check contents: first, last and ~64 between
    for i in sorted({*range(0, n_files, step), n_files - 1}):
        if (folder / file_name(i)).read_text(encoding="utf-8") != article_text(i, seed):
            return False
    return True


def write_corpus(folder: Path, n_passages: int, seed: int = 0) -> int:
    """Write ``ceil(n_passages / 8)`` articles flat into ``folder``; return the file count.

    Idempotent: returns at once when the folder already holds exactly these files.
    Otherwise every article is (re)written and stray ``a*.txt`` files are removed.
    """
    folder = Path(folder)
    n_files = n_articles(n_passages)
    folder.mkdir(parents=True, exist_ok=True)
    if _is_complete(folder, n_files, seed):
        return n_files
    (folder / STAMP).unlink(missing_ok=True)
    wanted = {file_name(i) for i in range(n_files)}
    for entry in os.scandir(folder):
        if re.fullmatch(r"a\d{7}\.txt", entry.name) and entry.name not in wanted:
            os.unlink(entry.path)
    for i in range(n_files):
        (folder / file_name(i)).write_text(article_text(i, seed), encoding="utf-8")
    stamp = {"version": VERSION, "seed": seed, "files": n_files}
    (folder / STAMP).write_text(json.dumps(stamp), encoding="utf-8")
    return n_files


def questions(n: int, seed: int = 1) -> list[str]:
    """``n`` short questions: whole corpus sentences or 4-12-word fragments of them."""
    pool = sentence_pool()
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = pool[rng.randrange(len(pool))].split()
        if len(words) <= 12 or rng.random() < 0.3:
            out.append(" ".join(words[:20]))
            continue
        size = rng.randint(4, 12)
        start = rng.randrange(len(words) - size + 1)
        frag = _TITLE_STRIP.sub("", " ".join(words[start : start + size]))
        out.append(frag + ("?" if rng.random() < 0.5 else ""))
    return out


if __name__ == "__main__":
    import sys
    import time

    t = time.perf_counter()
    count = write_corpus(Path(sys.argv[1]), int(sys.argv[2]))
    print(f"{count} files in {time.perf_counter() - t:.1f} s", file=sys.stderr)
