"""Helpers shared by the benchmark scripts (figures are printed, never asserted)."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path


def percentiles(samples_ms: list[float]) -> tuple[float, float]:
    """Median and 95th percentile of ``samples_ms``."""
    ordered = sorted(samples_ms)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return statistics.median(ordered), p95


def time_calls(fn: Callable[[str], object], inputs: list[str], warmup: int = 5) -> list[float]:
    """Milliseconds per call of ``fn`` over ``inputs`` after a few warm-up calls."""
    for item in inputs[:warmup]:
        fn(item)
    out = []
    for item in inputs:
        t = time.perf_counter()
        fn(item)
        out.append((time.perf_counter() - t) * 1000)
    return out


def emit(result: dict, path: Path | None) -> None:
    """Print ``result`` as indented JSON, and write it to ``path`` too when given."""
    text = json.dumps(result, indent=2)
    print(text)
    if path:
        path.write_text(text + "\n")
