"""What the state cache saves: the same pytest command cold, warm, and with the cache off, in one run.

    python benchmarks/bench_cache.py [--group analytics] [-- extra pytest arguments]

Runs ``pytest --synap-group=<group>`` (all groups when ``--group all``) three times in subprocesses:
with a fresh empty cache folder (first run: builds and stores), again with that folder (second run:
starts from the stored states), and with ``--synap-cache=off``. Prints wall times and the ratio of the
second run to the uncached one (goal: <= 0.3).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(args: list[str]) -> tuple[float, int, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    began = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=False)
    tail = (proc.stdout.strip().splitlines() or [""])[-1]
    return time.perf_counter() - began, proc.returncode, tail


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--group", default="analytics", help="a group, or all")
    parser.add_argument("extra", nargs="*", help="more pytest arguments (after --)")
    args = parser.parse_args()
    common = ([] if args.group == "all" else [f"--synap-group={args.group}"]) + args.extra
    with tempfile.TemporaryDirectory(prefix="synap-bench-cache-") as folder:
        runs = [("first run (empty cache)", [f"--synap-cache={folder}"]),
                ("second run (cached)", [f"--synap-cache={folder}"]),
                ("cache off", ["--synap-cache=off"])]
        results = {name: timed(common + extra) for name, extra in runs}
    load = os.getloadavg()
    print(f"pytest {' '.join(common) or '(all groups)'}; {os.cpu_count()} cores, load average "
          f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    for name, (seconds, code, tail) in results.items():
        print(f"{name:<24} {seconds:6.1f}s  exit {code}  {tail}")
    ratio = results["second run (cached)"][0] / results["cache off"][0]
    print(f"second run / cache off: {ratio:.2f} (goal <= 0.3)")


if __name__ == "__main__":
    main()
