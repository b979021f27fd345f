"""The load mix defaults and the pass/fail thresholds, read from the package's ``fixtures/loadtests/*.toml``.

Kept in data files so that tuning a threshold is an edit reviewed on its own, not a code change.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synap_verify.errors import SynapError
from synap_verify.resources import LOAD_CONFIG as CONFIG_FILE
from synap_verify.resources import LOAD_THRESHOLDS as THRESHOLDS_FILE

LOCUSTFILE = Path(__file__).with_name("locustfile.py")


@dataclass(frozen=True)
class RunDefaults:
    users: int
    spawn_rate: float
    duration: str
    tenants: int
    prepare_threshold: int | None = None  # None: the SQL users never server-prepare


def prepare_threshold(value: object) -> int | None:
    """``"off"`` -> None (never prepare); a count -> prepare after that many runs of a statement (psycopg's meaning)."""
    text = str(value).strip().lower()
    if text in ("off", "none", "false"):
        return None
    if text.isdigit():
        return int(text)
    raise SynapError(f"prepare_threshold: {value!r} is neither \"off\" nor a count >= 0")


@dataclass(frozen=True)
class Baseline:
    p95_ms: float
    p99_ms: float
    max_failure_ratio: float
    min_rps: float


@dataclass(frozen=True)
class Migration:
    max_failures: int
    p99_factor: float
    p99_floor_ms: float
    max_blocking_s: float


@dataclass(frozen=True)
class Thresholds:
    baseline: Baseline
    migration: Migration


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SynapError(f"cannot read {path}: {exc}") from None


def run_defaults(path: Path = CONFIG_FILE) -> RunDefaults:
    run = _read(path).get("run", {})
    try:
        return RunDefaults(int(run["users"]), float(run["spawn_rate"]), str(run["duration"]), int(run["tenants"]),
                           prepare_threshold(run.get("prepare_threshold", "off")))
    except (KeyError, ValueError) as exc:
        raise SynapError(f"{path} [run]: missing or bad value {exc}") from None


def thresholds(path: Path = THRESHOLDS_FILE) -> Thresholds:
    data = _read(path)
    try:
        b, m = data["baseline"], data["migration"]
        return Thresholds(
            Baseline(float(b["p95_ms"]), float(b["p99_ms"]), float(b["max_failure_ratio"]), float(b["min_rps"])),
            Migration(int(m["max_failures"]), float(m["p99_factor"]), float(m["p99_floor_ms"]), float(m["max_blocking_s"])),
        )
    except (KeyError, ValueError) as exc:
        raise SynapError(f"{path}: missing or bad threshold {exc}") from None


def seconds(duration: str) -> float:
    """Locust's duration syntax (``90``, ``30s``, ``2m``, ``1h30m``) in seconds."""
    total, number = 0.0, ""
    for ch in duration.strip():
        if ch.isdigit() or ch == ".":
            number += ch
        elif ch in "hms" and number:
            total += float(number) * {"h": 3600, "m": 60, "s": 1}[ch]
            number = ""
        else:
            raise SynapError(f"bad duration {duration!r}: use 30s, 2m, 1h30m")
    return total + (float(number) if number else 0.0)
