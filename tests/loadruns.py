"""Helpers of the `synap-verify load` tests (tests/test_load.py, tests/test_load_phased.py): one bounded run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from synap_verify.cli import main


def run(out: Path, *argv: str) -> tuple[int, dict[str, Any]]:
    """A short load run (6 users) writing into ``out``: its exit code and its summary."""
    code = main(["load", "--users", "6", "--spawn-rate", "6", "--out", str(out), *argv])
    return code, json.loads((out / "summary.json").read_text())


def rules(summary: dict[str, Any]) -> set[str]:
    return {f["rule"] for f in summary["findings"]}
