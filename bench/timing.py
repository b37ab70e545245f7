"""Timing helpers shared by the benchmarks (median of repeated runs, one line per figure)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def timed(fn: Callable[[], object], repeats: int = 30) -> float:
    """Median milliseconds of ``fn()`` over ``repeats`` runs (after one warm-up)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def report(name: str, ms: float, target: float) -> None:
    print(f"{name}: {ms:.1f} ms (target < {target:.0f} ms, {ms / target:.2f}x of target)")
