"""The statistics of the A/B gate, in plain Python: a one-sided Wilcoxon signed-rank test and an
order-statistic confidence interval of a median. Kept dependency-free so the plugin does not pull in
scipy/numpy for two formulas.

Both work on per-round ratios (after/before medians of one interleaved round), not on raw samples:
raw samples of a shared machine are not independent (load drifts over seconds), whereas within one
round both sides see the same load, so the rounds' ratios are close to independent.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

EXACT_UP_TO = 60  # rounds: above this (or with tied magnitudes) the normal approximation is used


def _ranks(values: Sequence[float]) -> tuple[list[float], bool]:
    """Average ranks (1-based) of ``values``, and whether any were tied."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    tied = False
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        tied = tied or j > i
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks, tied


def _exact_upper_tail(n: int, w: float) -> float:
    """P(W+ >= w) under H0 for n untied, non-zero differences: count sign patterns by rank sum."""
    top = n * (n + 1) // 2
    counts = [1] + [0] * top
    for rank in range(1, n + 1):
        for total in range(top, rank - 1, -1):
            counts[total] += counts[total - rank]
    return sum(counts[math.ceil(w - 1e-9):]) / 2**n


def signed_rank_greater(differences: Sequence[float]) -> float:
    """One-sided p-value that ``differences`` (e.g. log per-round ratios) are centred above zero.

    Zeros are dropped (Wilcoxon's convention); exact null distribution for up to ``EXACT_UP_TO``
    untied values, else the normal approximation with tie and continuity corrections.
    """
    nonzero = [d for d in differences if d != 0]
    n = len(nonzero)
    if n == 0:
        return 1.0
    ranks, tied = _ranks([abs(d) for d in nonzero])
    w = sum(r for r, d in zip(ranks, nonzero, strict=True) if d > 0)
    if n <= EXACT_UP_TO and not tied:
        return _exact_upper_tail(n, w)
    magnitudes = [abs(d) for d in nonzero]
    ties = sum(t**3 - t for t in (magnitudes.count(m) for m in set(magnitudes)))
    variance = n * (n + 1) * (2 * n + 1) / 24 - ties / 48
    z = (w - n * (n + 1) / 4 - 0.5) / math.sqrt(variance)
    return 0.5 * math.erfc(z / math.sqrt(2))


def median_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """Distribution-free interval of the median: the order statistics a Binomial(n, 1/2) puts it between.

    With too few values for the level the whole range is returned (an honest "we cannot tell").
    """
    xs = sorted(values)
    n = len(xs)
    if not n:
        return math.nan, math.nan
    tail = (1 - level) / 2
    cut, cdf = 0, 0.0  # xs[c] lies above the median only when at most c values fall below it: P(B <= c)
    for c in range(n // 2):
        cdf += math.comb(n, c) / 2**n
        if cdf > tail:
            break
        cut = c
    return xs[cut], xs[n - 1 - cut]
