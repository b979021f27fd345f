"""The verification report: suites ``record`` what they checked, the collector adds the pipeline and the
test outcomes, and one JSON document results, which ``html`` renders.

Suites hand over their own objects (findings, benchmark comparisons) and never format anything for the
report: the conversion happens once, in :mod:`synap_verify.report.collect`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from synap_verify.findings import Finding

# (section, result) in the order suites recorded them; read by the collector at the session's end
RECORDS = pytest.StashKey[list[tuple[str, Any]]]()
# sections of the report, in the order an operator reads them; a suite may record others
SECTIONS = ("contract", "nothing-lost", "rls", "benchmark", "migrations", "api", "load")


def record(config: pytest.Config, section: str, result: Sequence[Finding] | Sequence[Any]) -> None:
    """Keep a suite's result for the report: a list of findings, or of benchmark comparisons.

    Cheap when no report was asked for (one list append), so suites call it unconditionally.
    """
    config.stash.setdefault(RECORDS, []).append((section, list(result)))
