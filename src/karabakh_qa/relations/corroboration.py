"""Across sources: how many articles carry a passage, and which reported it first.

A passage's near-duplicate group (``store.embedded.groups``) already names every
article that carries the same words or a close rewrite of them; a fact-checker
wants what that says: in how many articles and outlets the passage appears, which
dated copy is the earliest ("first reported", with how its date is known), and
which copies are verbatim and which rewritten. Dates are never guessed: a copy
without a date is counted but cannot be first.
"""

from __future__ import annotations

from typing import Any

from ..records import Passage

SURENESS = {"metadata": 0, "header": 1, "text": 2}  # how a date is known, surest first
DATE_SOURCES = {
    "metadata": "front matter",
    "header": "date line",
    "text": "inferred from the text",
}


def corroboration(passage: Passage, copies: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    """``{articles, outlets, first, copies}`` for ``passage`` and its group's other
    members (``copies``: the hit's ``also_in`` entries)."""
    mine = {
        "file": passage.source,
        "outlet": passage.outlet,
        "date": passage.date,
        "date_source": passage.date_source,
    }
    every = [mine, *copies]
    dated = [c for c in every if c["date"]]  # the earliest; on one day, the surest date
    dated.sort(key=lambda c: (c["date"], SURENESS.get(c["date_source"], 9), c["file"]))
    first = None
    if dated:
        first = {k: dated[0][k] for k in ("file", "date", "date_source")}
    return {
        "articles": len({c["file"] for c in every}),
        "outlets": len({c["outlet"] for c in every if c["outlet"]}),
        "first": first,
        "copies": [
            {
                "file": c["file"],
                "paragraph": c["paragraph"],
                "date": c["date"],
                "verbatim": c["identical"],
            }
            for c in copies
        ],
    }


def first_reported(corroborated: dict[str, Any]) -> str | None:
    """The page's line: "Reported in 3 articles; first 2020-10-11 (date line) in
    FILE", or None for a passage only one article carries."""
    n, first = corroborated["articles"], corroborated["first"]
    if n < 2:
        return None
    outlets = corroborated["outlets"]
    line = f"Reported in {n} articles" + (f" from {outlets} outlets" if outlets > 1 else "")
    if first is None:
        return line + "; none of them dated"
    how = DATE_SOURCES.get(first["date_source"] or "", "date")
    return f"{line}; first {first['date']} ({how}) in {first['file']}"
