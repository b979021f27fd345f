"""G6 regression gate on the real workload: legacy vs migrated clones of the same data, in one run.

    pytest --synap-suites=bench [--synap-scale small] [--benchmark-json out.json]

Every query of the workload (the packaged ``fixtures/workload.yaml``) is checked for equal rows,
explained, and timed interleaved on both clones (synap_verify.bench). pytest-benchmark stores the raw
samples: one group per query, ``before``/``after`` as the parameter, so --benchmark-json, --benchmark-autosave and
--benchmark-compare work as usual. ``test_g6`` fails with the per-query table when the gate does.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from synap_verify import resources
from synap_verify.bench import Comparison, Limits, Side, findings, load_workload, render_table, run_gate
from synap_verify.bench.gate import G6, app_role
from synap_verify.findings import render_text
from synap_verify.stash import SETTINGS, record

WORKLOAD = load_workload(resources.WORKLOAD)


@pytest.fixture(scope="session")
def bench_limits(pytestconfig: pytest.Config) -> Limits:
    """The gate's limits: G6's, with the round trip, preparation and rounds the settings give."""
    settings = pytestconfig.stash[SETTINGS]
    round_trip = G6.round_trip_ms if settings.bench_round_trip_ms is None else settings.bench_round_trip_ms
    return dataclasses.replace(G6, round_trip_ms=round_trip, prepared=not settings.bench_unprepared,
                               rounds=settings.bench_rounds or G6.rounds)


@pytest.fixture(scope="module")
def gate(synap_legacy_db: Any, synap_migrated_db: Any, pytestconfig: pytest.Config,
         bench_limits: Limits) -> dict[str, Comparison]:
    """The gate's comparisons, measured once for the module (the timing tests only store them)."""
    before = Side("before", synap_legacy_db.dsn, "legacy")
    after = Side("after", synap_migrated_db.dsn, "migrated", role=app_role(synap_migrated_db.dsn),
                 tenant_setting="app.current_tenant_id")
    results = run_gate(before, after, WORKLOAD, bench_limits)
    record(pytestconfig, "benchmark", results)
    return {r.query.name: r for r in results}


@pytest.mark.parametrize("side", ["before", "after"])
@pytest.mark.parametrize("name", [q.name for q in WORKLOAD])
def test_query(benchmark: Any, gate: dict[str, Comparison], name: str, side: str) -> None:
    """Hand the interleaved raw samples of one side to pytest-benchmark for its stats and storage."""
    result = gate[name]
    if result.timing is None:
        pytest.skip(f"{name} was not measured: {result.findings[0].message}")
    samples = result.samples.before if side == "before" else result.samples.after
    ticks = iter([t for s in samples for t in (0.0, s)])
    benchmark.group = name
    benchmark._timer = ticks.__next__  # replay: pytest-benchmark has no public way to take external samples
    benchmark.extra_info.update(ratio=round(result.timing.ratio, 4), p=result.timing.p, verdict=result.verdict,
                                buffers=result.after_plan.buffers if side == "after" else result.before_plan.buffers)
    benchmark.pedantic(lambda: None, rounds=len(samples), iterations=1)


def test_g6(gate: dict[str, Comparison], bench_limits: Limits, capsys: pytest.CaptureFixture[str]) -> None:
    """No benchmarked query more than 5% slower, reading more buffers, or losing its index."""
    table = render_table(list(gate.values()), bench_limits)
    with capsys.disabled():
        print("\n" + table)
    found = findings(list(gate.values()))
    assert not found, f"G6 gate failed:\n{table}\n\n{render_text(found)}"
