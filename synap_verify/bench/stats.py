"""The statistics of the A/B gate, in plain Python: medians, a one-sided Mann-Whitney U test and a
bootstrap confidence interval of the median ratio. Kept dependency-free so the plugin does not pull
in scipy/numpy for three formulas."""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence


def mann_whitney_greater(before: Sequence[float], after: Sequence[float]) -> float:
    """One-sided p-value that ``after`` tends to be larger than ``before``.

    Normal approximation with tie correction and continuity correction: the gate works on dozens to
    hundreds of samples per side, where the approximation is accurate to well below the 0.01 level.
    """
    n1, n2 = len(before), len(after)
    if n1 == 0 or n2 == 0:
        return 1.0
    pooled = sorted([(v, 0) for v in before] + [(v, 1) for v in after])
    ranks = [0.0] * len(pooled)
    ties = 0.0
    i = 0
    while i < len(pooled):
        j = i
        while j + 1 < len(pooled) and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[k] = (i + j) / 2 + 1
        t = j - i + 1
        ties += t**3 - t
        i = j + 1
    rank_after = sum(r for r, (_, side) in zip(ranks, pooled, strict=True) if side == 1)
    u_after = rank_after - n2 * (n2 + 1) / 2
    n = n1 + n2
    variance = n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1)))
    if variance <= 0:
        return 1.0
    z = (u_after - n1 * n2 / 2 - 0.5) / math.sqrt(variance)
    return 0.5 * math.erfc(z / math.sqrt(2))


def median_ratio(before: Sequence[float], after: Sequence[float]) -> float:
    return statistics.median(after) / statistics.median(before)


def bootstrap_ratio_ci(before: Sequence[float], after: Sequence[float], level: float = 0.95,
                       resamples: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of median(after)/median(before), seeded so a report is reproducible."""
    rng = random.Random(seed)
    ratios = sorted(
        statistics.median(rng.choices(after, k=len(after))) / statistics.median(rng.choices(before, k=len(before)))
        for _ in range(resamples)
    )
    tail = (1 - level) / 2
    return ratios[int(tail * (resamples - 1))], ratios[int((1 - tail) * (resamples - 1))]
