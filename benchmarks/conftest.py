"""Options of the G6 gate (benchmarks/test_regression.py)."""

from __future__ import annotations

import dataclasses

import pytest

from synap_verify.bench import Limits
from synap_verify.bench.gate import G6


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("synap-verify benchmark gate")
    group.addoption("--bench-round-trip-ms", type=float, default=G6.round_trip_ms,
                    help="the application's least statement round trip; a slowdown must exceed 5%% of it "
                         f"(default {G6.round_trip_ms} ms; 0 = strict ratio only)")
    group.addoption("--bench-unprepared", action="store_true",
                    help="time unprepared statements (planning in every sample) instead of cached plans")
    group.addoption("--bench-rounds", type=int, default=G6.rounds, help=f"interleaved rounds per query (default {G6.rounds})")


@pytest.fixture(scope="session")
def bench_limits(pytestconfig: pytest.Config) -> Limits:
    """The gate's limits from the command line (G6 defaults otherwise)."""
    round_trip = pytestconfig.getoption("bench_round_trip_ms")
    if round_trip < 0:
        raise pytest.UsageError(f"--bench-round-trip-ms must be >= 0, got {round_trip}")
    return dataclasses.replace(G6, round_trip_ms=round_trip, prepared=not pytestconfig.getoption("bench_unprepared"),
                               rounds=pytestconfig.getoption("bench_rounds"))
