"""Scale profiles: how many rows each table gets, read from ``fixtures/profiles.toml``.

Row counts live in a data file so that tuning a scale (or adding a table's weight) is an edit to
TOML, not to the generator.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

from synap_verify.errors import SynapError
from synap_verify.resources import PROFILES

PROFILES_FILE = PROFILES


@dataclass(frozen=True)
class Profile:
    """One scale of one profiles file."""

    scale: str
    tenants: int
    base_rows: int
    event_rows: int
    min_rows: int
    max_rows: int
    json_edge_every: int
    nul_every: int
    drift_share: float
    events: dict[str, float] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    patterns: tuple[tuple[tuple[str, ...], float], ...] = ()
    skip: frozenset[str] = frozenset()

    def weight(self, table: str) -> float:
        if table in self.weights:
            return self.weights[table]
        return next((w for pats, w in self.patterns if any(fnmatchcase(table, p) for p in pats)), 1.0)

    def rows(self, table: str) -> int:
        """The target row count of ``table`` (before unique constraints may lower it)."""
        if table in self.skip:
            return 0
        if table in self.events:
            return max(self.min_rows, round(self.event_rows * self.events[table]))
        return min(self.max_rows, max(self.min_rows, round(self.base_rows * self.weight(table))))


def load_profile(scale: str, path: Path = PROFILES_FILE) -> Profile:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SynapError(f"cannot read the data profiles {path}: {exc}") from exc
    scales = data.get("scales", {})
    if scale not in scales:
        raise SynapError(f"unknown scale {scale!r}: {path} defines {', '.join(scales)}")
    s = scales[scale]
    return Profile(
        scale=scale, tenants=int(s["tenants"]), base_rows=int(s["base_rows"]), event_rows=int(s["event_rows"]),
        min_rows=int(s["min_rows"]), max_rows=int(s["max_rows"]), json_edge_every=int(s["json_edge_every"]),
        nul_every=int(s["nul_every"]), drift_share=float(s["drift_share"]),
        events={k: float(v) for k, v in data.get("events", {}).items()},
        weights={k: float(v) for k, v in data.get("weights", {}).items()},
        patterns=tuple((tuple(p["match"]), float(p["weight"])) for p in data.get("patterns", [])),
        skip=frozenset(data.get("skip", ())),
    )
