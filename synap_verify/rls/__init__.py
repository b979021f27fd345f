"""Row-level security (G5, G7): static lints over the Catalog and live cross-tenant leak probes.

``check`` runs both on a database; ``render_matrix`` is the compact table × probe summary that the
suites leave in ``config.stash[stash.RLS_REPORTS]`` for the terminal summary.
"""

from __future__ import annotations

import tomllib
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from synap_verify.contract.model import Contract
from synap_verify.errors import SynapError
from synap_verify.findings import Finding
from synap_verify.groups import GROUPS
from synap_verify.resources import CONTRACT, LEGACY_GROUPS
from synap_verify.rls.context import RlsConfig, TenantContext
from synap_verify.rls.lints import lint, read_facts
from synap_verify.rls.probes import LEAK, NA, NOT_COVERED, PASS, TABLE_PROBES, ProbeReport, run_probes
from synap_verify.server.templates import Database

__all__ = ["RlsConfig", "RlsResult", "RlsSetup", "TenantContext", "check", "from_contract", "render_matrix", "setup"]

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


def check(db: Database, config: RlsConfig, groups: dict[str, str] | None = None,
          only: Collection[str] | None = None) -> RlsResult:
    """Lint, then probe (writing probes only when the server is disposable) every tenant table, or those in ``only``."""
    groups = setup().groups if groups is None else groups
    catalog = db.catalog(config.schemas)
    with db.connect() as conn:
        facts = read_facts(conn, config)
    findings = lint(catalog, config, facts, groups)
    report = run_probes(db.dsn, catalog, config, writes=db.server.disposable, groups=groups, only=only)
    return RlsResult(findings, report)


@dataclass(frozen=True)
class RlsSetup:
    """The RLS configuration, the table -> group map and the tables the migrated schema should hold."""

    config: RlsConfig
    groups: dict[str, str]
    tables: dict[str, str]  # target table -> group
    tenant_tables: frozenset[str]  # the targets expected to carry the tenant column

    def probed(self, groups: Collection[str]) -> set[str] | None:
        """The tables (old and new names) whose findings a run of ``groups`` reports, for ``check(only=...)``; None
        (every tenant table) when every group runs: tables outside the contract are judged only then."""
        if set(GROUPS) <= set(groups):
            return None
        return {table for table, group in self.groups.items() if group in groups}


def setup(contract_path: Path | None = None, tenant_settings: tuple[str, ...] = ()) -> RlsSetup:
    """Read the contract's G5 and tables when it loads; else the reference defaults and the legacy groups file.

    The legacy groups file knows renamed tables by their old names, hence ``_RENAMED``;
    ``tenant_settings`` add to the contract's settings.
    """
    from synap_verify.contract import load_contract

    try:
        contract = load_contract(contract_path or CONTRACT)
    except (SynapError, OSError):
        data = tomllib.loads(LEGACY_GROUPS.read_text())
        tables = {table: group for group, names in data["groups"].items() for table in names}
        context = TenantContext(settings=tenant_settings or TenantContext().settings)
        return RlsSetup(RlsConfig(context=context), {**_RENAMED, **tables}, tables, frozenset(tables))
    return from_contract(contract, tenant_settings)


def from_contract(contract: Contract, tenant_settings: tuple[str, ...] = ()) -> RlsSetup:
    """The RLS setup of a loaded contract: its schemas, tenant column, settings and tables (a contract with
    ``unlisted:`` covers a catalog first, :meth:`Contract.covering`)."""
    rules = contract.rules
    tables = {t.name: t.group for t in contract.tables.values()}
    groups = {t.legacy_name: t.group for t in contract.tables.values() if t.legacy_name} | tables
    context = TenantContext(settings=tuple(dict.fromkeys((*rules.tenant_settings, *tenant_settings))),
                            functions=rules.tenant_functions)
    config = RlsConfig(context=context, app_role=rules.app_role or RlsConfig.app_role, tenant_column=rules.tenant_column,
                       global_tables=tuple(t.name for t in contract.tables.values() if t.tenant == "nullable"),
                       schemas=contract.schemas, drift_visible_to_child=rules.drift_visible_to_child,
                       tenant_dropped=tuple(name for t in contract.tables.values() if rules.tenant_column in t.dropped
                                            for name in (t.name, t.legacy_name) if name))
    tenant = frozenset(t.name for t in contract.tables.values() if t.tenant != "none")
    return RlsSetup(config, groups, tables, tenant)


_SYMBOL = {PASS: ".", LEAK: "LEAK", NOT_COVERED: "nc", "error": "ERR", NA: "-"}


def render_matrix(report: ProbeReport, all_rows: bool = False) -> str:
    """Table × probe, one short line each; only the rows with a problem unless ``all_rows``."""
    cells = [s for row in report.matrix.values() for s in row.values()]
    head = (f"RLS probes as {report.role} ({'read/write' if report.writes else 'read-only'}) in {report.seconds:.2f}s: "
            f"{len(report.matrix)} objects{f' ({report.scope} probed)' if report.scope else ''}, "
            f"{cells.count(LEAK)} LEAK, {cells.count(NOT_COVERED)} not covered, "
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
