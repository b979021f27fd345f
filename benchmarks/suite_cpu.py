"""Where the harness's own tests spend the machine: CPU per test module and per test, servers and subprocesses
included, from one serial run.

    python benchmarks/suite_cpu.py [--top 25] [-- extra pytest arguments, e.g. tests/test_plan.py]

``pytest tests -n 2`` is bound by the two cores, so its wall time follows the CPU the tests use, and most of
that CPU is not in the test process: PostgreSQL servers, pytester and CLI subprocesses, Locust. This runs the
tests one at a time (no xdist) and charges each test the busy CPU time of the whole machine (``/proc/stat``)
between its start and its end, setup and teardown included. Run it on a quiet machine; anything else running
is charged too. Linux only (psutil's irq and softirq times). Takes about twice the wall time of ``pytest tests -n 2``.
"""

from __future__ import annotations

import argparse
import os
import time
from collections import defaultdict
from collections.abc import Generator
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[1]


def busy_seconds() -> float:
    """CPU seconds the machine has spent busy since boot, every core: user, nice, system, irq and softirq (not
    idle or iowait, nor steal, the hypervisor's; guest time is already inside user and nice)."""
    t = psutil.cpu_times()
    return float(t.user + t.nice + t.system + t.irq + t.softirq)


class Recorder:
    """Busy CPU and wall seconds per test, its setup and teardown included."""

    def __init__(self) -> None:
        self.tests: list[tuple[str, float, float]] = []  # (node id, cpu s, wall s)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Generator[None, None, None]:
        cpu, wall = busy_seconds(), time.monotonic()
        yield
        self.tests.append((item.nodeid, busy_seconds() - cpu, time.monotonic() - wall))


def report(tests: list[tuple[str, float, float]], top: int) -> None:
    modules: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
    for nodeid, cpu, wall in tests:
        totals = modules[nodeid.split("::")[0]]
        totals[0], totals[1], totals[2] = totals[0] + cpu, totals[1] + wall, totals[2] + 1
    cpu_all, wall_all = sum(t[1] for t in tests), sum(t[2] for t in tests)
    print(f"\n{len(tests)} tests: {cpu_all:.1f} CPU s busy over {wall_all:.1f} s wall "
          f"(on {os.cpu_count()} cores, a lower bound of {cpu_all / (os.cpu_count() or 1):.0f} s for any parallel run)")
    print(f"\n{'module':<44} {'CPU s':>7} {'wall s':>7} {'tests':>6}")
    for module, (cpu, wall, count) in sorted(modules.items(), key=lambda kv: -kv[1][0]):
        print(f"{module:<44} {cpu:7.1f} {wall:7.1f} {int(count):6d}")
    print(f"\n{'CPU s':>7} {'wall s':>7}  test (the {top} that cost most)")
    for nodeid, cpu, wall in sorted(tests, key=lambda t: -t[1])[:top]:
        print(f"{cpu:7.1f} {wall:7.1f}  {nodeid}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=25, help="how many of the costliest tests to list")
    parser.add_argument("extra", nargs="*", help="pytest arguments (after --); default: tests")
    args = parser.parse_args()
    os.chdir(ROOT)
    recorder = Recorder()
    code = pytest.main([*(args.extra or ["tests"]), "-p", "no:xdist", "-p", "no:cacheprovider", "-q"],
                       plugins=[recorder])
    report(recorder.tests, args.top)
    return int(code)


if __name__ == "__main__":
    raise SystemExit(main())
