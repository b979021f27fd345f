"""G6 regression gate on the real workload: legacy vs migrated clones of the same data, in one run.

    pytest --synap-suites=bench [--synap-scale small] [--benchmark-json out.json]

Every query of the workload (the packaged ``fixtures/workload.yaml``) is checked for equal rows,
explained, and timed interleaved on both clones (synap_verify.bench). ``test_g6`` judges: it fails with
the per-query table when the gate does. With some groups selected (``--synap-group``) only the queries on
their tables are measured: any other would compare the legacy schema with itself, or fail on a table its
group left unmigrated.

``test_samples`` items store and do not judge: each hands one side's raw samples of one query to
pytest-benchmark (one group per query, ``before``/``after`` as the parameter), so --benchmark-json,
--benchmark-autosave and --benchmark-compare(-fail) work as usual across runs. The samples reach it
through its public per-test ``timer`` option (the ``benchmark`` marker): a clock that replays the
measured durations, one per round of ``benchmark.pedantic``. An item passes when its samples were
stored and skips, with the gate's error, when its query could not be measured.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from synap_verify import resources
from synap_verify.bench import Comparison, Limits, Side, findings, load_workload, render_table, run_gate
from synap_verify.bench.gate import G6, app_role
from synap_verify.bench.workload import Query
from synap_verify.contract import load_contract
from synap_verify.findings import render_text
from synap_verify.groups import GROUPS
from synap_verify.stash import SETTINGS, record

WORKLOAD = load_workload(resources.WORKLOAD)


class Replay:
    """A clock for pytest-benchmark that replays measured durations: the round that reads it twice
    (before and after its target) sees the next sample pass, and nothing is timed again."""

    def __init__(self) -> None:
        self._ticks: Iterator[float] = iter(())
        self.__name__ = "replay of the gate's interleaved samples"  # what the benchmark JSON names as the timer

    def load(self, samples: Sequence[float]) -> None:
        self._ticks = iter([t for s in samples for t in (0.0, s)])

    def tick(self) -> None:
        """The target of each round: one sample's replay (reading the clock is the work)."""

    def __call__(self) -> float:
        return next(self._ticks)


REPLAY = Replay()


@pytest.fixture(scope="session")
def bench_limits(pytestconfig: pytest.Config) -> Limits:
    """The gate's limits: G6's, with the round trip, preparation and rounds the settings give."""
    settings = pytestconfig.stash[SETTINGS]
    round_trip = G6.round_trip_ms if settings.bench_round_trip_ms is None else settings.bench_round_trip_ms
    return dataclasses.replace(G6, round_trip_ms=round_trip, prepared=not settings.bench_unprepared,
                               rounds=settings.bench_rounds or G6.rounds)


@pytest.fixture(scope="module")
def bench_left_out(pytestconfig: pytest.Config) -> dict[str, str]:
    """The workload's queries this run does not measure, each with why: with some groups selected, those whose
    main table (``table:`` in the workload; its group in the contract, else the query's own) is in none of them.
    A measured query joining another group's table runs as written: the reference workload's joins read no
    column another group renames, and a query that did would fail as ``BENCH-ERROR``, never pass."""
    settings = pytestconfig.stash[SETTINGS]
    if settings.groups == GROUPS:
        return {}
    tables = load_contract(settings.contract).tables

    def group(query: Query) -> str:
        spec = tables.get(query.table)
        return spec.group if spec else query.group

    return {q.name: f"{q.name} not measured: its table {q.table} is in group {group(q)}, not selected (--synap-group)"
            for q in WORKLOAD if group(q) not in settings.groups}


@pytest.fixture(scope="module")
def gate(synap_legacy_db: Any, synap_migrated_db: Any, pytestconfig: pytest.Config,
         bench_limits: Limits, bench_left_out: dict[str, str]) -> dict[str, Comparison]:
    """The gate's comparisons, measured once for the module (the timing tests only store them)."""
    before = Side("before", synap_legacy_db.dsn, "legacy")
    after = Side("after", synap_migrated_db.dsn, "migrated", role=app_role(synap_migrated_db.dsn),
                 tenant_setting="app.current_tenant_id")
    results = run_gate(before, after, [q for q in WORKLOAD if q.name not in bench_left_out], bench_limits)
    record(pytestconfig, "benchmark", results)
    return {r.query.name: r for r in results}


@pytest.mark.benchmark(timer=REPLAY)
@pytest.mark.parametrize("side", ["before", "after"])
@pytest.mark.parametrize("name", [q.name for q in WORKLOAD])
def test_samples(benchmark: Any, gate: dict[str, Comparison], bench_left_out: dict[str, str], name: str, side: str) -> None:
    """Store one side's interleaved samples of one query with pytest-benchmark; the verdict is test_g6's."""
    if name not in gate:
        pytest.skip(bench_left_out[name])
    result = gate[name]
    if result.timing is None:
        pytest.skip(f"{name} was not measured, nothing to store (test_g6 fails on it): {result.findings[0].message}")
    samples = result.samples.before if side == "before" else result.samples.after
    benchmark.group = name
    benchmark.extra_info.update(stored_not_judged="the gate's verdict is test_g6's", verdict=result.verdict,
                                ratio=round(result.timing.ratio, 4), p=result.timing.p,
                                q25_ms=result.timing.before_ms if side == "before" else result.timing.after_ms,
                                buffers=result.after_plan.buffers if side == "after" else result.before_plan.buffers)
    REPLAY.load(samples)
    benchmark.pedantic(REPLAY.tick, rounds=len(samples), iterations=1)


def test_g6(gate: dict[str, Comparison], bench_limits: Limits, bench_left_out: dict[str, str],
            capsys: pytest.CaptureFixture[str]) -> None:
    """No benchmarked query more than 5% slower, reading more buffers, or losing its index."""
    skipped = len(bench_left_out)
    if not gate:
        pytest.skip(f"no query of the workload is on the selected groups' tables ({skipped} left out): "
                    "run the bench suite with their groups, or without --synap-group")
    table = render_table(list(gate.values()), bench_limits)
    with capsys.disabled():
        print("\n" + table + (f"\n{skipped} of {len(WORKLOAD)} queries not measured: their tables' groups are "
                              "not selected (--synap-group)" if skipped else ""))
    found = findings(list(gate.values()))
    assert not found, f"G6 gate failed:\n{table}\n\n{render_text(found)}"
