"""Helpers of the `synap-verify load` tests (tests/test_load.py, tests/test_load_phased.py): one bounded run."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from synap_verify.cli import main

SHORT = ("load", "--users", "6", "--spawn-rate", "6")  # a short load run: 6 users
Runs = dict[str, tuple[Path, subprocess.Popen[bytes]]]  # started runs by name: (output folder, process)


def run(out: Path, *argv: str) -> tuple[int, dict[str, Any]]:
    """A short load run writing into ``out``: its exit code and its summary."""
    code = main([*SHORT, "--out", str(out), *argv])
    return code, summary(out)


def start(out: Path, *argv: str) -> subprocess.Popen[bytes]:
    """The same run in a process of its own, so that runs which only wait for their own defect go side by side
    (a run is mostly seconds of waiting); its output goes to ``out``/run.log."""
    out.mkdir(parents=True, exist_ok=True)
    with (out / "run.log").open("wb") as log:
        return subprocess.Popen([sys.executable, "-m", "synap_verify.cli", *SHORT, "--out", str(out), *argv],
                                stdout=log, stderr=subprocess.STDOUT)


@contextmanager
def side_by_side(folder: Path, runs: Mapping[str, Sequence[str]]) -> Iterator[Runs]:
    """Runs started together, each in a process of its own writing into ``folder``/name; killed at the end if
    still running. For runs whose verdict does not hang on timing: a run is mostly seconds of waiting."""
    started = {name: (folder / name, start(folder / name, *argv)) for name, argv in runs.items()}
    try:
        yield started
    finally:
        for _, proc in started.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def finish(runs: Runs, name: str, within: float = 600) -> tuple[Path, int, dict[str, Any]]:
    """A started run's output folder, exit code and summary, once it ended (the log's tail when it wrote no
    summary)."""
    out, proc = runs[name]
    code = proc.wait(within)
    if not (out / "summary.json").exists():
        raise AssertionError(f"the run wrote no summary (exit {code}):\n{(out / 'run.log').read_text()[-3000:]}")
    return out, code, summary(out)


def summary(out: Path) -> dict[str, Any]:
    return json.loads((out / "summary.json").read_text())


def rules(summary: dict[str, Any]) -> set[str]:
    return {f["rule"] for f in summary["findings"]}
