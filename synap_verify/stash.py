"""The state one pytest session shares between the plugin, the suites and the report, in one place.

Every key lives here, so the plugin, the suites and the report collector import this module and never
each other (no import circle, no ``sys.modules`` look-ups for a module that may not have loaded).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from synap_verify.pipeline import Pipeline
    from synap_verify.rls import RlsResult
    from synap_verify.settings import Settings

SETTINGS: pytest.StashKey[Settings] = pytest.StashKey()
PIPELINE: pytest.StashKey[Pipeline] = pytest.StashKey()
# state ('legacy', 'migrated') -> why the suites on it were skipped, for the terminal summary and the report
SKIPS = pytest.StashKey[dict[str, str]]()
# (section, result) in the order suites recorded them; read by the report collector at the session's end
RECORDS = pytest.StashKey[list[tuple[str, Any]]]()
# lines for the terminal summary: what the plugin left out of the run, and why
NOTES = pytest.StashKey[list[str]]()
# label ('migrated', 'legacy') -> RLS lints and probes, for the terminal matrix and the report
RLS_REPORTS: pytest.StashKey[dict[str, RlsResult]] = pytest.StashKey()


def record(config: pytest.Config, section: str, result: Sequence[Any]) -> None:
    """Keep a suite's result for the report: a list of findings, or of benchmark comparisons.

    Cheap when no report was asked for (one list append), so suites call it unconditionally.
    """
    config.stash.setdefault(RECORDS, []).append((section, list(result)))
