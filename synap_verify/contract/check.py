"""The contract checked against a catalog snapshot: a pure function, no query per table.

Each defect is reported once, under the most specific rule that explains it: a column still ``json``
is G1 (not also T-TYPE), a ``meta_data`` column is G3 (not also T-RENAME), an FK with NO ACTION is G4
(not also T-FK). Tables the contract does not list are ignored, except that G9 claims ``backup_*``
tables for its group. Partitions are skipped: their FKs and RLS are their parent's.

Before the contract phase (``expanded=True``: the groups' expand revisions applied, the contract not yet), an
old column the expand keeps for the old application, recognisable by its sync trigger, is where it should
be; on the end state the same column is a finding as any other.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from synap_verify import g5
from synap_verify.catalog import Catalog, ForeignKey, Table
from synap_verify.contract.model import Contract, Rules, TableSpec
from synap_verify.findings import Finding
from synapscale.migrations.ops.compat import sync_name
from synapscale.migrations.ops.rls import WideIndex

ROLE_EXPECTED = "no superuser, no BYPASSRLS, not owner"  # the G5 finding on the application role, not a table
Add = Callable[..., None]  # records one finding for the table being checked
# what an old column kept until the contract phase keeps of its legacy shape: type, name, nullability, FK
KEPT_RULES = frozenset({"G1", "G2", "G3", "G4", "T-DROP", "T-RENAME", "T-TYPE", "T-NULL", "T-FK"})


def check(catalog: Catalog, contract: Contract, groups: Iterable[str] = (), expanded: bool = False) -> list[Finding]:
    """Every finding of the contract's rules over the selected groups (all groups when empty); ``expanded``:
    the database stops before the contract phase, so the old columns its sync triggers keep are not findings."""
    contract = contract.covering(catalog)
    selected = set(groups) or set(contract.groups)
    rules = contract.rules
    findings: list[Finding] = []
    for spec in contract.tables_in(selected):
        findings += _check_table(catalog, contract, spec, frozenset(selected), expanded)
    if "G9" in rules.enabled and rules.backup_group in selected:
        pattern = re.compile(rules.backup_pattern)
        for table in catalog.tables.values():
            if pattern.search(table.name) and table.partition_of is None:
                findings.append(Finding("G9", rules.backup_group, table.name,
                                        f"{table.name} is a backup table in the production schema; archive it and drop it (G9)",
                                        expected="absent", actual="present"))
    return findings


def _check_table(catalog: Catalog, contract: Contract, spec: TableSpec, selected: frozenset[str],
                 expanded: bool) -> list[Finding]:
    out: list[Finding] = []
    kept: set[str] = set()  # old columns kept in sync until the contract phase (only before it)

    def add(rule: str, message: str, column: str | None = None, constraint: str | None = None,
            expected: str | None = None, actual: str | None = None) -> None:
        if column in kept and rule in KEPT_RULES:
            return
        if rule in rules.enabled or rule.startswith("T-"):
            out.append(Finding(rule, spec.group, spec.name, f"{message} ({rule})", column, constraint, expected, actual))

    rules = contract.rules
    table = catalog.table(spec.name)
    legacy = catalog.table(spec.legacy_name) if spec.legacy_name else None
    if table is None and legacy is None:
        add("T-MISSING", f"table {spec.name} is missing", expected="present", actual="absent")
        return out
    if table is None:
        assert legacy is not None
        add("T-RENAME", f"table {spec.name} is missing; the legacy table {legacy.name} is still there: rename it",
            expected=spec.name, actual=legacy.name)
        table = legacy
    elif legacy is not None:
        add("T-RENAME", f"legacy table {legacy.name} still exists next to {spec.name}", expected="absent", actual=legacy.name)
    name = table.name
    if expanded:
        kept.update(kept_until_contract(table, spec, rules))

    flagged = _columns_g1_g3(table, spec, rules, add)
    _columns_expected(table, spec, flagged, add)
    _foreign_keys(catalog, contract, table, spec, add)
    if rules.tenant_column not in spec.dropped:
        _tenant(catalog, table, spec, rules, add)
    for col in spec.gin:
        # a multicolumn GIN index serves each of its columns alone, e.g. (tenant_id, tags); a B-tree its first
        indexes = [i for i in table.indexes if i.method == rules.index_method
                   and any(re.search(rf"\b{re.escape(col)}\b", c)
                           for c in (i.columns if i.method == "gin" else i.columns[:1]))]
        if not any(i.valid for i in indexes):
            state = f"index {indexes[0].name} is INVALID" if indexes else "no such index"
            add("G6", f"{name}.{col} has no valid {rules.index_method.upper()} index; the workload filters on it",
                column=col, constraint=indexes[0].name if indexes else None, expected=rules.index_method, actual=state)
    for wanted in spec.indexes:  # expected: the contract's text, which the planner declares as Table.indexes
        wide = WideIndex.of(name, wanted)
        if not any(i.method == "btree" and i.valid and i.predicate is None and i.columns == wide.key
                   and i.descending == wide.descending and set(wide.include) <= set(i.include) for i in table.indexes):
            add("T-INDEX", f"{name} has no valid B-tree index on {wide.sql}; the workload reads through it",
                column=wide.key[0], expected=wanted, actual="none")
    for chk in spec.checks:
        if not any(all(re.search(rf"\b{re.escape(c)}\b", definition) for c in chk.columns) for _, definition in table.checks):
            add("T-CHECK", f"{name} has no CHECK constraint over ({', '.join(chk.columns)})",
                column=chk.columns[0], expected=f"CHECK over {', '.join(chk.columns)}", actual="none")
    _parents(catalog, contract, table, spec, add)
    _counters(catalog, contract, table, spec, selected, add)
    return out


def kept_until_contract(table: Table, spec: TableSpec, rules: Rules) -> set[str]:
    """Old columns an expand keeps for the old application: a column the contract drops, or an old name whose
    new column is there, either with its sync trigger (``<table>_<column>_compat_sync``, the ops engine's)."""
    old = {d.column for d in spec.dropped.values()}
    old |= {w.legacy_name for w in spec.columns.values() if w.legacy_name and table.column(w.name)}
    old |= {legacy for legacy, new in rules.renamed_columns.items() if table.column(new)}
    return {c for c in old if table.column(c) and sync_name(table.name, c) in table.triggers}


def _columns_g1_g3(table: Table, spec: TableSpec, rules: Rules, add: Add) -> set[str]:
    """G1, G2, G3 over every column; returns the columns they flagged so per-table rules stay quiet on them."""
    flagged: set[str] = set()
    for col in table.columns:
        if col.type in rules.json_types:
            add("G1", f"{table.name}.{col.name} is {col.type}, expected {rules.json_expected}",
                column=col.name, expected=rules.json_expected, actual=col.type)
            flagged.add(col.name)
        if col.type in rules.naive_types:
            add("G2", f"{table.name}.{col.name} is {col.type}, expected {rules.naive_expected}",
                column=col.name, expected=rules.naive_expected, actual=col.type)
            flagged.add(col.name)
        if col.name in rules.renamed_columns:
            add("G3", f"{table.name}.{col.name} must be named {rules.renamed_columns[col.name]}",
                column=col.name, expected=rules.renamed_columns[col.name], actual=col.name)
            flagged.add(col.name)
    return flagged


def _columns_expected(table: Table, spec: TableSpec, flagged: set[str], add: Add) -> None:
    for dropped in spec.dropped.values():
        if table.column(dropped.column):
            where = f"; its data belongs in {dropped.moved_to}" if dropped.moved_to else ""
            add("T-DROP", f"{table.name}.{dropped.column} must be dropped{where}",
                column=dropped.column, expected="absent", actual="present")
    for want in spec.columns.values():
        col = table.column(want.name)
        old = table.column(want.legacy_name) if want.legacy_name else None
        if old is not None and want.legacy_name not in flagged:
            state = f"next to {want.name}" if col else f"instead of {want.name}"
            add("T-RENAME", f"{table.name}.{want.legacy_name} is still there {state}: rename it to {want.name}",
                column=want.legacy_name, expected=want.name, actual=want.legacy_name)
        col = col or old
        if col is None:
            add("T-COLUMN", f"{table.name}.{want.name} is missing", column=want.name,
                expected=want.type or "present", actual="absent")
            continue
        if want.type and col.type != want.type and col.name not in flagged:
            add("T-TYPE", f"{table.name}.{col.name} is {col.type}, expected {want.type}",
                column=want.name, expected=want.type, actual=col.type)
        if want.nullable is not None and col.nullable != want.nullable:
            expected = "NULL allowed" if want.nullable else "NOT NULL"
            add("T-NULL", f"{table.name}.{col.name} must be {expected}", column=want.name,
                expected=expected, actual="nullable" if col.nullable else "NOT NULL")


def expected_action(contract: Contract, spec: TableSpec, fk: ForeignKey) -> str | None:
    """Per-column contract action > action for the referenced table (G4 targets) > the table's default."""
    if len(fk.columns) == 1 and fk.columns[0] in spec.foreign_keys:
        return spec.foreign_keys[fk.columns[0]].on_delete
    target = contract.mapping().new_table(fk.target_table) or fk.target_table
    return contract.rules.target_actions.get(target) or spec.on_delete


def _not_null(table: Table, cols: Iterable[str]) -> list[str]:
    return [c for c in cols if (col := table.column(c)) is not None and not col.nullable]


def _set_null_conflict(add: Add, table: Table, label: str, target: str, strict: list[str],
                       constraint: str | None = None, present: str = "") -> None:
    """G4-SETNULL-NOTNULL: the contract asks ON DELETE SET NULL of a NOT NULL column.

    Why: that FK fails every delete of the parent (23502), so "keep one, SET NULL" or "change it to SET NULL" is
    advice that breaks the schema. Fix: make the column nullable and keep SET NULL, or choose another action.
    """
    cols = ", ".join(strict)
    add("G4", f"{label}{present}: the contract asks ON DELETE SET NULL but {cols} is NOT NULL, so every delete of a "
        f"{target} row would fail; either make {cols} nullable (and keep SET NULL), or choose another action "
        f"for it in the contract", column=strict[0], constraint=constraint,
        expected="SET NULL on a nullable column, or another action", actual=f"{cols} NOT NULL")


def _foreign_keys(catalog: Catalog, contract: Contract, table: Table, spec: TableSpec, add: Add) -> None:
    rules = contract.rules
    by_columns: dict[tuple[str, ...], list[ForeignKey]] = {}
    for fk in table.foreign_keys:
        by_columns.setdefault(fk.columns, []).append(fk)
    for cols, fks in by_columns.items():
        label = f"{table.name}.{', '.join(cols)}"
        expected = expected_action(contract, spec, fks[0])
        strict = _not_null(table, cols)
        # SET NULL is no way out for a NOT NULL column: never advise it
        wanted = expected or " / ".join(a for a in rules.allowed_actions if not (strict and a == "SET NULL"))
        listing = ", ".join(f"{fk.name} {fk.on_delete}" for fk in fks)
        if expected == "SET NULL" and strict:
            present = f" has {len(fks)} FK constraints ({listing}), keep one" if len(fks) > 1 else ""
            _set_null_conflict(add, table, label, fks[0].target_table, strict,
                               ", ".join(fk.name for fk in fks), present)
            continue
        if len(fks) > 1:
            actions = sorted({fk.on_delete for fk in fks})
            kind = "conflicting" if len(actions) > 1 else "duplicated"
            add("G4", f"{label} has {len(fks)} {kind} FK constraints ({listing}); keep one, ON DELETE {wanted}",
                column=cols[0], constraint=", ".join(fk.name for fk in fks), expected=f"one FK, {wanted}", actual=listing)
            continue
        fk = fks[0]
        if fk.on_delete not in rules.allowed_actions:
            add("G4", f"{label} → {fk.target_table} is ON DELETE {fk.on_delete}, expected {wanted}",
                column=cols[0], constraint=fk.name, expected=wanted, actual=fk.on_delete)
        elif expected and fk.on_delete != expected:
            add("T-FK", f"{label} → {fk.target_table} is ON DELETE {fk.on_delete}, expected {expected}",
                column=cols[0], constraint=fk.name, expected=expected, actual=fk.on_delete)
        if fk.on_delete == "SET NULL" and strict:
            add("G4", f"{label} is ON DELETE SET NULL but {', '.join(strict)} is NOT NULL: every delete of a "
                f"{fk.target_table} row fails; make it nullable, or choose another action",
                column=strict[0], constraint=fk.name, expected="nullable column", actual="NOT NULL")
    for want in spec.foreign_keys.values():
        fks = by_columns.get((want.column,), [])
        targets = {want.references, contract.tables[want.references].legacy_name} if want.references in contract.tables \
            else {want.references}
        if not fks:
            add("T-FK", f"{table.name}.{want.column} has no FK to {want.references}",
                column=want.column, expected=f"FK to {want.references} ON DELETE {want.on_delete}", actual="none")
            if want.on_delete == "SET NULL" and (strict := _not_null(table, (want.column,))):
                _set_null_conflict(add, table, f"{table.name}.{want.column}", want.references, strict)
        elif not any(fk.target_table in targets for fk in fks):
            add("T-FK", f"{table.name}.{want.column} references {fks[0].target_table}, expected {want.references}",
                column=want.column, constraint=fks[0].name, expected=want.references, actual=fks[0].target_table)


def _tenant(catalog: Catalog, table: Table, spec: TableSpec, rules: Rules, add: Add) -> None:
    """G5 as the specification words it: keep tenant_id, RLS enabled and forced, four commands covered,
    every policy compares tenant_id with the tenant context, nothing always-true, a constrained app role.
    The policies are judged by :mod:`synap_verify.g5`, as ``synap-verify rls`` judges them."""
    tc = rules.tenant_column
    col = table.column(tc)
    if col is None:
        if spec.tenant != "none":
            add("G5", f"{table.name} has no {tc}; tenant tables keep it", column=tc, expected="present", actual="absent")
        return
    if spec.tenant == "required" and col.nullable:
        add("G5", f"{table.name}.{tc} is nullable", column=tc, expected="NOT NULL", actual="nullable")
    if not table.rls_enabled:
        add("G5", f"{table.name} has row-level security disabled", expected="enabled, forced", actual="disabled")
    elif not table.rls_forced:
        add("G5", f"{table.name} has row-level security enabled but not forced (the owner bypasses it)",
            expected="enabled, forced", actual="not forced")
    app = [p for p in table.policies if rules.app_role is None or g5.applies_to(p, (rules.app_role,))]
    missing = g5.uncovered(app)
    if missing:
        add("G5", f"{table.name} has no policy granting {', '.join(missing)}",
            expected=", ".join(g5.COMMANDS), actual=", ".join(c for c in g5.COMMANDS if c not in missing) or "none")
    for policy in table.policies:
        for flaw in g5.flaws(policy, tc, rules.tenant_settings, rules.tenant_functions):
            exprs = " / ".join(e for e in (policy.using, policy.with_check) if e) or "no expression"
            add("G5", f"{table.name} {policy.command} policy {policy.name} {_FLAWS[flaw].format(tc=tc)}",
                constraint=policy.name, expected=flaw.wanted(tc), actual=exprs)
    role = catalog.roles.get(rules.app_role) if rules.app_role else None
    if role is not None:
        powers = [p for p, on in (("SUPERUSER", role.superuser), ("BYPASSRLS", role.bypassrls)) if on]
        if table.owner == role.name:
            powers.append("table owner")
        if powers:
            add("G5", f"the application role {role.name} is {' and '.join(powers)} of {table.name}: RLS does not bind it",
                expected=ROLE_EXPECTED, actual=", ".join(powers))


_FLAWS = {
    g5.Flaw.NO_WITH_CHECK: "has no WITH CHECK (PostgreSQL checks new rows with its USING; G5 wants an explicit one)",
    g5.Flaw.ALWAYS_TRUE: "is permissive and always true",
    g5.Flaw.NO_TENANT: "does not compare {tc} with the tenant context",
}


def _parents(catalog: Catalog, contract: Contract, table: Table, spec: TableSpec, add: Add) -> None:
    """G7: each declared parent relation is tied to the parent's tenant by a composite FK or a trigger."""
    tc = contract.rules.tenant_column
    trigger = re.compile(contract.rules.parent_trigger_pattern, re.IGNORECASE)
    for col in spec.tenant_parents:
        parent = next((fk.target_table for fk in table.foreign_keys if fk.columns == (col,)), None)
        if parent is None and col in spec.foreign_keys:
            parent = spec.foreign_keys[col].references
        composite = any({col, tc} <= set(fk.columns) and tc in fk.target_columns for fk in table.foreign_keys)
        if composite or any(trigger.search(t) for t in table.triggers):
            continue
        add("G7", f"nothing ties {table.name}.{tc} to {parent or 'the parent'}.{tc} through {col} "
            "(a composite FK or a trigger)", column=col, expected="composite FK or trigger", actual="none")


def _counters(catalog: Catalog, contract: Contract, table: Table, spec: TableSpec, selected: frozenset[str],
              add: Add) -> None:
    """G8: counters are kept, and each counted table carries a trigger that keeps them in sync.

    A counted table of an unselected group is judged with its own group: a partial run migrates only the
    selected groups' tables, so their triggers are not there yet.
    """
    pattern = re.compile(contract.rules.counter_trigger_pattern, re.IGNORECASE)
    mapping = contract.mapping()
    for counter in spec.counters.values():
        if table.column(counter.column) is None:
            add("G8", f"{table.name}.{counter.column} is a counter the restructure keeps; it is missing",
                column=counter.column, expected="present", actual="absent")
            continue
        source_spec = contract.tables.get(counter.source) if counter.source else None
        if counter.source is None or source_spec is not None and source_spec.group not in selected:
            continue
        source = catalog.table(counter.source) or catalog.table(mapping.legacy_table(counter.source) or "")
        triggers = [t for t in source.triggers if pattern.search(t)] if source else []
        if source is not None and not triggers:
            add("G8", f"{table.name}.{counter.column} counts {source.name}, which has no trigger keeping it in sync",
                column=counter.column, expected=f"trigger on {source.name}", actual="none")
