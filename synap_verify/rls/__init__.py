"""Row-level security (G5, G7): static lints over the Catalog and live cross-tenant leak probes.

``check`` runs both on a database; ``render_matrix`` is the compact table × probe summary that the
suites leave in ``config.stash[REPORTS]`` for the terminal summary.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from synap_verify.findings import Finding
from synap_verify.rls.context import RlsConfig, TenantContext
from synap_verify.rls.lints import lint, read_facts
from synap_verify.rls.probes import LEAK, NA, NOT_COVERED, PASS, TABLE_PROBES, ProbeReport, run_probes
from synap_verify.server.templates import Database
from synap_verify.settings import PROJECT_ROOT

__all__ = ["REPORTS", "RlsConfig", "RlsResult", "TenantContext", "check", "render_matrix", "table_groups"]

# label ("migrated", "legacy") -> result, filled by suites/test_rls.py, read by the terminal summary
REPORTS = pytest.StashKey[dict[str, "RlsResult"]]()
# tables the restructure renames: the legacy groups file knows them by their old names
_RENAMED = {"conversation_turns": "llm", "messages": "llm", "message_feedbacks": "llm"}


@dataclass
class RlsResult:
    """The lint findings and the probe report of one database."""

    lints: list[Finding]
    probes: ProbeReport

    @property
    def findings(self) -> list[Finding]:
        return self.lints + self.probes.findings


def check(db: Database, config: RlsConfig, groups: dict[str, str] | None = None) -> RlsResult:
    """Lint, then probe (writing probes only when the server is disposable)."""
    groups = table_groups() if groups is None else groups
    catalog = db.catalog(config.schemas)
    with db.connect() as conn:
        facts = read_facts(conn, config)
    findings = lint(catalog, config, facts, groups)
    report = run_probes(db.dsn, catalog, config, writes=db.server.disposable, groups=groups)
    return RlsResult(findings, report)


def table_groups(root: Path = PROJECT_ROOT) -> dict[str, str]:
    """Table -> restructure group, from the contract when there is one, else the legacy groups file."""
    contract = root / "fixtures" / "contract.yaml"
    if contract.is_file():
        found = _groups_from_contract(yaml.safe_load(contract.read_text()) or {})
        if found:
            return {**_RENAMED, **found}
    data = tomllib.loads((root / "fixtures" / "legacy" / "groups.toml").read_text())
    return {**_RENAMED, **{table: group for group, tables in data["groups"].items() for table in tables}}


def _groups_from_contract(data: object) -> dict[str, str]:
    """Accepts ``tables: {name: {group: g}}``, ``tables: [{name|table: n, group: g}]`` or ``groups: {g: [names]}``."""
    if not isinstance(data, dict):
        return {}
    out: dict[str, str] = {}
    tables = data.get("tables")
    if isinstance(tables, dict):
        out |= {name: spec["group"] for name, spec in tables.items() if isinstance(spec, dict) and "group" in spec}
    elif isinstance(tables, list):
        out |= {str(t.get("name") or t.get("table")): t["group"] for t in tables if isinstance(t, dict) and "group" in t}
    groups = data.get("groups")
    if isinstance(groups, dict):
        for group, spec in groups.items():
            names = spec.get("tables", []) if isinstance(spec, dict) else spec
            out |= {str(n): group for n in (names or [])}
    return out


_SYMBOL = {PASS: ".", LEAK: "LEAK", NOT_COVERED: "nc", "error": "ERR", NA: "-"}


def render_matrix(report: ProbeReport, all_rows: bool = False) -> str:
    """Table × probe, one short line each; only the rows with a problem unless ``all_rows``."""
    cells = [s for row in report.matrix.values() for s in row.values()]
    head = (f"RLS probes as {report.role} ({'read/write' if report.writes else 'read-only'}) in {report.seconds:.2f}s: "
            f"{len(report.matrix)} objects, {cells.count(LEAK)} LEAK, {cells.count(NOT_COVERED)} not covered, "
            f"{cells.count('error')} errors  (. pass, nc not covered, - not probed)")
    probes = [p for p in (*TABLE_PROBES, "VIEW", "FUNC") if any(p in row for row in report.matrix.values())]
    rows = {name: row for name, row in sorted(report.matrix.items())
            if all_rows or any(s not in (PASS, NA) for s in row.values())}
    if not rows:
        return head
    width = max(len(n) for n in rows)
    lines = [head, f"{'':{width}}  " + " ".join(f"{p:>6}" for p in probes)]
    lines += [f"{name:{width}}  " + " ".join(f"{_SYMBOL[row.get(p, NA)]:>6}" for p in probes) for name, row in rows.items()]
    return "\n".join(lines)
