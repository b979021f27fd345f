"""The per-request timeline Locust leaves (``timeline.csv``) and the statistics read from it.

Locust's own CSV has percentiles per run only; the migration verdict needs them per time window
(before / during / after the migration, and per step), so every request is kept with its start time.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Request:
    start: float  # epoch seconds, same clock as the migration's step times
    ms: float
    type: str
    name: str
    ok: bool
    error: str
    worker: str = "local"  # Locust worker index (as the master numbers them), "local" without workers

    @property
    def end(self) -> float:
        return self.start + self.ms / 1000


@dataclass(frozen=True)
class Stats:
    """Latency and outcome of a set of requests."""

    requests: int
    failures: int
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    def line(self) -> str:
        return (f"{self.requests} requests, {self.rps:.1f}/s, p50 {self.p50_ms:.1f} ms, p95 {self.p95_ms:.1f} ms, "
                f"p99 {self.p99_ms:.1f} ms, max {self.max_ms:.1f} ms, {self.failures} failed")


def read(path: Path) -> list[Request]:
    if not path.exists():
        return []
    with path.open(newline="") as fh:
        return sorted((Request(float(r["start"]), float(r["ms"]), r["type"], r["name"], r["ok"] == "1", r["error"],
                               r.get("worker") or "local")
                       for r in csv.DictReader(fh)), key=lambda r: r.start)


def write(path: Path, requests: Iterable[Request]) -> None:
    """The timeline of several runs as one file (the columns :func:`read` reads)."""
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["start", "ms", "type", "name", "ok", "error", "worker"])
        out.writerows([f"{r.start:.6f}", f"{r.ms:.3f}", r.type, r.name, str(int(r.ok)), r.error, r.worker] for r in requests)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (no interpolation: the value some request really saw)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def stats(requests: Iterable[Request], seconds: float | None = None) -> Stats:
    """Statistics of ``requests``; ``seconds`` is the window length (default: first start to last end)."""
    reqs = list(requests)
    ms = [r.ms for r in reqs]
    if seconds is None:
        seconds = (max(r.end for r in reqs) - min(r.start for r in reqs)) if reqs else 0.0
    return Stats(len(reqs), sum(not r.ok for r in reqs), len(reqs) / seconds if seconds > 0 else 0.0,
                 percentile(ms, 50), percentile(ms, 95), percentile(ms, 99), max(ms, default=0.0))


def overlapping(requests: Iterable[Request], start: float, end: float) -> list[Request]:
    """Requests in flight at some moment of [start, end]: the ones a step could have slowed down."""
    return [r for r in requests if r.start <= end and r.end >= start]


def started(requests: Iterable[Request], start: float, end: float) -> list[Request]:
    return [r for r in requests if start <= r.start < end]


def rate_held(requests: Sequence[Request], target: float, ramp: float, width: float = 10.0) -> dict[str, float]:
    """The request rate reached against ``target``: over the run after the users' ramp-up, and its lowest and
    highest ``width``-second window (a rate is held when every window is near the target, not only the mean)."""
    if not requests:
        return {"target": target, "achieved": 0.0, "seconds": 0.0, "window_min": 0.0, "window_max": 0.0}
    first = requests[0].start + ramp + 1.0
    last = max(r.start for r in requests)
    starts = [r.start for r in requests if first <= r.start < last]
    per_window = Counter(int((t - first) // width) for t in starts)
    windows = [per_window[i] / width for i in range(int((last - first) // width))]
    seconds = last - first
    return {"target": target, "achieved": len(starts) / seconds if seconds > 0 else 0.0, "seconds": seconds,
            "window_min": min(windows, default=0.0), "window_max": max(windows, default=0.0)}
