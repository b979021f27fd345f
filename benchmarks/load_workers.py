"""Throughput of the SQL workload with 1 and with 2 Locust workers, side by side against one database.

    PYTHONPATH=$PWD python benchmarks/load_workers.py --scale small --users 30 --seconds 30 --rounds 2

One embedded database (migrated, ``--scale``) serves every run; the runs alternate 1, 2, 1, 2 workers so
that a change in the machine's load hits both sides. Each user runs at an unreachable ``--rate`` (no think
time), so the request rate is what the client and the server manage. Prints requests/s per run, the ratio
of the medians, and Locust's CPU warnings (a warning means the client, not the database, was the limit).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

from synap_verify.cli import main
from synap_verify.pipeline import Pipeline
from synap_verify.settings import Settings


def run(dsn: str, out: Path, workers: int, users: int, seconds: int) -> dict[str, float]:
    main(["load", "--workload", "sql", "--dsn", dsn, "--disposable", "--users", str(users), "--spawn-rate", str(users),
          "--duration", f"{seconds}s", "--rate", "100000", "--workers", str(workers), "--p99-ms", "100000",
          "--out", str(out)])
    summary = json.loads((out / "summary.json").read_text())
    return {"rps": summary["stats"]["requests"] / seconds, "cpu_warnings": len(summary["cpu_warnings"]),
            "requests": summary["stats"]["requests"], "failures": summary["stats"]["failures"]}


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="small")
    parser.add_argument("--users", type=int, default=30)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("loadtests/results/workers"))
    args = parser.parse_args()
    pipeline = Pipeline.start(Settings.resolve({"scale": args.scale, "keep": False}),
                              say=lambda line: print(line, file=sys.stderr))
    results: dict[int, list[dict[str, float]]] = {1: [], 2: []}
    try:
        dsn = pipeline.clone("migrated").dsn
        for r in range(args.rounds):
            for workers in (1, 2):
                load = os.getloadavg()[0]
                results[workers].append(run(dsn, args.out / f"w{workers}-r{r}", workers, args.users, args.seconds))
                print(f"round {r}, {workers} worker(s): {results[workers][-1]} (load average {load:.2f} before)",
                      flush=True)
    finally:
        pipeline.stop()
    one, two = (statistics.median(x["rps"] for x in results[w]) for w in (1, 2))
    print(f"median requests/s: 1 worker {one:.1f}, 2 workers {two:.1f}: {two / one:.2f}x")


if __name__ == "__main__":
    cli()
