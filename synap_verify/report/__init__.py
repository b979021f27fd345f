"""The verification report: suites ``record`` what they checked, the collector adds the pipeline and the
test outcomes, and one JSON document results, which ``html`` renders.

Suites hand over their own objects (findings, benchmark comparisons) and never format anything for the
report: the conversion happens once, in :mod:`synap_verify.report.collect`.
"""

from __future__ import annotations

# sections of the report, in the order an operator reads them; a suite may record others
SECTIONS = ("contract", "nothing-lost", "rls", "benchmark", "migrations", "api", "load")

