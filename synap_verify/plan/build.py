"""The restructure as data: (contract, live catalog) -> per-group declarations for the ops engine.

The planner emits the same declarations the reference revisions carry (``ops.Table``, ``ops.Fk``,
``ops.Gin``), each with the legacy state it replaces frozen in it (constraint names and actions, RLS
flags and policies, which columns were naive), so the downgrade restores what was there. Legacy objects
are matched by meaning: an FK by its column and referenced table, whatever its name; duplicates on one
column collapse into one declaration; anything already in its target state is left out, so a migrated
database plans to nothing. What the contract cannot decide becomes a ``PLAN-MANUAL`` finding, never a
guess: the contract checker says what is wrong, and each finding it makes that no declaration can fix
is handed on as such, unless the contract's ``moves:`` names the hand-written file that settles it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from synap_verify.catalog import Catalog, ForeignKey
from synap_verify.catalog import Table as CatalogTable
from synap_verify.contract.check import ROLE_EXPECTED, check, expected_action, kept_until_contract
from synap_verify.contract.model import MANUAL, ON_DELETE_ACTIONS, Contract, MoveSpec, TableSpec
from synap_verify.findings import Finding
from synap_verify.groups import GROUPS
from synap_verify.rls.lints import view_sources
from synapscale.migrations import ops

# contract rules whose findings the declarations fix; every other finding of a planned group is manual
PLANNED_RULES = frozenset({"G1", "G2", "G3", "G4", "G5", "G6", "G7", "G8", "G9", "T-FK", "T-RENAME", "T-INDEX"})
TENANT_TYPE = "uuid"  # the ops engine's policies and guards cast the tenant setting to it

Manual = Callable[..., None]  # records one PLAN-MANUAL finding for the table being planned


@dataclass(frozen=True)
class GroupPlan:
    """One group's revision as data: what the ops engine applies, and what it cannot."""

    group: str
    tables: tuple[ops.Table, ...] = ()
    gin: tuple[ops.Gin, ...] = ()
    archive: tuple[str, ...] = ()  # G9: backup tables to archive (pg_dump + checksum + audit) and drop
    manual: tuple[Finding, ...] = ()
    counters: tuple[ops.Counter, ...] = ()  # G8, declared with the counted table's group
    views: tuple[str, ...] = ()  # views over the group's tenant tables to make security_invoker
    moves: MoveSpec | None = None  # the contract's hand-written data moves, when something they settle is left
    # tables an earlier expand of this group left with old names kept in sync: the contract revision removes them
    # (and its downgrade brings them back), the group's own revision leaves them alone; ``contracted_moves`` is the
    # moves file whose fields (carried, filled, kept, legacy_columns) some of them need
    contracted: tuple[ops.Table, ...] = ()
    contracted_moves: str | None = None

    @property
    def empty(self) -> bool:
        """Nothing to apply (manual findings aside)."""
        return not (self.tables or self.gin or self.archive or self.counters or self.views or self.moves)


@dataclass(frozen=True)
class Plan:
    groups: tuple[GroupPlan, ...]
    target: ops.Target = ops.REFERENCE  # the schema, tenant column and setting the revisions restructure (env.py)

    @property
    def findings(self) -> list[Finding]:
        return [f for g in self.groups for f in g.manual]

    @property
    def empty(self) -> bool:
        return all(g.empty and not g.contracted for g in self.groups) and not self.findings

    def group(self, name: str) -> GroupPlan | None:
        return next((g for g in self.groups if g.group == name), None)


def build_plan(catalog: Catalog, contract: Contract, groups: Iterable[str] = ()) -> Plan:
    """The plan of every selected group (every group the contract names when empty), in the spec's order."""
    contract = contract.covering(catalog)
    selected = set(groups) or set(contract.groups)
    registry = _tenant_registry(catalog, contract)
    plans = tuple(_plan_group(catalog, contract, g, registry) for g in GROUPS if g in selected and g in contract.groups)
    if len(contract.schemas) == 1:
        return Plan(plans, target(contract))
    # a migrations folder restructures one schema (its env.py's target): what it would run is said, not written
    return Plan(tuple(GroupPlan(g.group, manual=(*g.manual, _manual(
        g.group, "-", f"{len(g.tables)} table(s) to restructure in {', '.join(contract.schemas)}: the ops engine works "
        "in one schema per migrations folder", expected="one schema", actual=", ".join(contract.schemas))))
        if not g.empty else g for g in plans))


def target(contract: Contract) -> ops.Target:
    """The ops engine's target of a one-schema contract: its schema, G5's tenant column and first tenant setting."""
    rules = contract.rules
    return ops.Target(contract.schemas[0], rules.tenant_column,
                      rules.tenant_settings[0] if rules.tenant_settings else ops.REFERENCE.tenant_setting)


def _plan_group(catalog: Catalog, contract: Contract, group: str, registry: str | None) -> GroupPlan:
    findings = check(catalog, contract, (group,), expanded=True)  # an old name kept in sync is the expand's, done
    gains = _gains_tenant(catalog, contract, group, registry)
    moves = contract.moves.get(group)
    settled = [f for f in findings if moves and moves.settle(f.table, f.column)]
    manual: list[Finding] = []
    for f in findings:
        if f in settled:
            continue  # the contract names the hand-written file that moves this data
        if f.rule not in PLANNED_RULES or (_unplannable(f) and f.table not in gains):
            manual.append(_manual(f.group, f.table, f"the contract does not say how to fix: {f.message}", f.column,
                                  f.constraint, f.expected, f.actual))
    tables: list[ops.Table] = []
    gin: list[ops.Gin] = []
    contracted, contracted_moves = _left_to_contract(catalog, contract, group, manual)
    for spec in sorted(contract.tables_in({group}), key=lambda s: s.name):
        table_findings = [f for f in findings if f.table == spec.name]

        def add(message: str, column: str | None = None, constraint: str | None = None, expected: str | None = None,
                actual: str | None = None, spec: TableSpec = spec) -> None:
            manual.append(_manual(group, spec.name, message, column, constraint, expected, actual))

        planned = _plan_table(catalog, contract, spec, table_findings, add, gains.get(spec.name))
        if planned is not None:
            tables.append(planned)
        guarded = {col for col, _ in planned.parents} if planned else set()
        for f in table_findings:
            if f.rule == "G7" and f.column not in guarded:
                add(f"{f.message}: no FK from {f.column} to a tenant table to guard", column=f.column,
                    expected=f.expected, actual=f.actual)
        gin += [ops.Gin(spec.name, f.column) for f in table_findings if f.rule == "G6" and f.column]
    if moves and settled:
        tables = sorted((*tables, *_for_moves(moves, tables)), key=lambda t: t.name)
    rules = contract.rules
    archive: tuple[str, ...] = ()
    if group == rules.backup_group:
        archive = tuple(sorted(f.table for f in findings if f.rule == "G9"))
    counters = _counters(catalog, contract, group, manual)
    views = _views(catalog, contract, group, manual)
    return GroupPlan(group, tuple(tables), tuple(gin), archive, tuple(manual), counters, views,
                     moves if settled else None, contracted, contracted_moves)


def _left_to_contract(catalog: Catalog, contract: Contract, group: str,
                      manual: list[Finding]) -> tuple[tuple[ops.Table, ...], str | None]:
    """The group's tables an earlier expand left for the contract, and the moves file they need, if any: the moves
    extend their settled tables (a carried column, a fill trigger, a compatibility view's columns), so each of
    those is declared for them; a column kept by a move's trigger without a moves file is manual."""
    found = [_contracted(catalog, contract, spec) for spec in sorted(contract.tables_in({group}), key=lambda s: s.name)]
    contracted = [t for t, _ in found if t]
    moved = [t.name for t, needs_moves in found if t and needs_moves]
    moves = contract.moves.get(group)
    if moves and (moved or {t for t, _ in moves.settles} & {t.name for t in contracted}):
        return tuple(sorted((*contracted, *_for_moves(moves, contracted)), key=lambda t: t.name)), moves.file
    manual += [_manual(group, name, f"an earlier expand keeps a column of {name} for the old application by a "
                       "trigger of its data move; the contract can remove it only with the file of that move: name "
                       "it in `moves:`", expected="a moves file", actual="none") for name in moved]
    return tuple(contracted), None


def _for_moves(moves: MoveSpec, declared: Iterable[ops.Table]) -> list[ops.Table]:
    """Empty declarations of the tables the moves settle that are not declared yet: ``Moves.declare`` extends
    tables by name, and every table it names must be among them."""
    return [ops.Table(t, timestamps=()) for t in sorted({t for t, _ in moves.settles} - {t.name for t in declared})]


def _contracted(catalog: Catalog, contract: Contract, spec: TableSpec) -> tuple[ops.Table | None, bool]:
    """What an earlier expand left of ``spec`` for the contract (its old names, kept in sync by the ops engine's
    triggers), as the declaration the contract revision reads; and whether a data move's trigger keeps some of it
    (a column carried to another table, a new column filled for the old application): that needs its moves file."""
    table = catalog.table(spec.name)
    if table is None:
        return None, False
    rules = contract.rules
    kept = kept_until_contract(table, spec, rules)
    renames = tuple((old, new) for old, new in _wanted_renames(spec, contract).items() if old in kept and table.column(new))
    in_place = tuple((d.column, d.moved_to.split(".", 1)[1]) for d in spec.dropped.values()
                     if d.column in kept and d.moved_to and d.moved_to.startswith(f"{spec.name}."))
    json = tuple(old for old, _ in renames if (c := table.column(old)) is not None and c.type == "json")
    view = spec.legacy_name if spec.legacy_name and any(v.name == spec.legacy_name for v in catalog.views) else None
    moved = bool(kept - {old for old, _ in (*renames, *in_place)}) or any(
        ops.fill_name(table.name, c) in table.triggers for c in spec.columns)
    if not (renames or in_place or view or moved):
        return None, False
    return ops.Table(spec.name, legacy_name=view, json=json, renames=renames, kept=in_place, timestamps=()), moved


def _views(catalog: Catalog, contract: Contract, group: str, manual: list[Finding]) -> tuple[str, ...]:
    """Views over tenant tables that run with their owner's rights (RLS010), with the group of their first tenant
    table: a view is made ``security_invoker``; a materialized view holds every tenant's rows and is manual."""
    if "G5" not in contract.rules.enabled:
        return ()
    tenant = {t.name: t.group for t in contract.tables.values() if t.tenant != "none"}
    out: list[str] = []
    for view in catalog.views:
        sources = sorted(set(tenant) & view_sources(view))
        if view.security_invoker or not sources or tenant[sources[0]] != group:
            continue
        if view.materialized:
            manual.append(_manual(group, view.name, f"materialized view {view.name} holds the rows of every tenant of "
                                  f"{', '.join(sources)}: revoke it from the application role or scope it by hand",
                                  expected="no tenant rows to the application", actual="materialized view"))
        else:
            out.append(view.name)
    return tuple(out)


def _counters(catalog: Catalog, contract: Contract, group: str, manual: list[Finding]) -> tuple[ops.Counter, ...]:
    """G8: one ``Counter`` per (counter table, counted table, FK column) whose counted table is in ``group``.

    The counter's trigger lives on the counted table, so it is declared with the counted table's group (as
    the reference revisions do: ``workflow_templates``' counters are kept by the templates group). A
    counted table that already has a trigger the contract's ``G8.trigger_pattern`` accepts is left alone,
    as the checker judges it.
    """
    if "G8" not in contract.rules.enabled:
        return ()
    pattern = re.compile(contract.rules.counter_trigger_pattern, re.IGNORECASE)
    mapping = contract.mapping()
    found: dict[tuple[str, str, str], list[tuple[str, str]]] = {}
    for parent in contract.tables.values():
        table = catalog.table(parent.name) or catalog.table(parent.legacy_name or "")
        for counter in parent.counters.values():
            source_spec = contract.tables.get(counter.source or "")
            if source_spec is None or source_spec.group != group or table is None or table.column(counter.column) is None:
                continue  # no counted table, another group's, or the counter is gone (T/G8 manual where judged)
            source = catalog.table(source_spec.name) or catalog.table(source_spec.legacy_name or "")
            if source is None or any(pattern.search(t) for t in source.triggers):
                continue
            names = {parent.name, table.name}
            fk = counter.via or next((f.columns[0] for f in source.foreign_keys if len(f.columns) == 1
                                      and (mapping.new_table(f.target_table) or f.target_table) in names), None)
            if fk is None:
                manual.append(_manual(group, source_spec.name, f"{parent.name}.{counter.column} counts {source.name}, "
                                      f"which has no FK to {parent.name}: state `via:` in the contract",
                                      column=counter.column, expected=f"FK to {parent.name}", actual="none"))
                continue
            found.setdefault((parent.name, source_spec.name, fk), []).append((counter.column, counter.aggregate))
    out = []
    for (parent_name, child, fk), assignments in found.items():
        watch = tuple(dict.fromkeys(c for _, expr in assignments for c in re.findall(r"\bc\.(\w+)", expr) if c != fk))
        out.append(ops.Counter(parent_name, child, fk, tuple(assignments), watch))
    return tuple(out)


def _tenant_registry(catalog: Catalog, contract: Contract) -> str | None:
    """The one table every existing tenant-column FK references; None when they disagree or there are none: which
    table holds the tenants is then a person's call."""
    tc = contract.rules.tenant_column
    registries = {fk.target_table for t in catalog.tables.values() for fk in t.foreign_keys if fk.columns == (tc,)}
    return registries.pop() if len(registries) == 1 and "G5" in contract.rules.enabled else None


def _gains_tenant(catalog: Catalog, contract: Contract, group: str, registry: str | None) -> dict[str, str]:
    """The group's ``tenant: nullable`` tables without the tenant column, each with the registry it will reference
    (NULL = global, so the rows need no source of data); none without a registry."""
    if registry is None:
        return {}
    tc = contract.rules.tenant_column
    out = {}
    for spec in contract.tables_in({group}):
        table = catalog.table(spec.name) or catalog.table(spec.legacy_name or "")
        if spec.tenant == "nullable" and table is not None and table.column(tc) is None and tc not in spec.dropped:
            out[spec.name] = registry
    return out


def _unplannable(f: Finding) -> bool:
    """Findings of planned rules that no declaration fixes: a missing FK or one to another table, a lost tenant
    column or counter."""
    if f.rule == "T-FK":
        return f.expected not in ON_DELETE_ACTIONS
    return f.rule in ("G5", "G8") and f.actual == "absent"


def _manual(group: str, table: str, message: str, column: str | None = None, constraint: str | None = None,
            expected: str | None = None, actual: str | None = None) -> Finding:
    return Finding("PLAN-MANUAL", group, table, f"{message} (PLAN-MANUAL)", column, constraint, expected, actual)


def _plan_table(catalog: Catalog, contract: Contract, spec: TableSpec, findings: list[Finding],
                manual: Manual, registry: str | None = None) -> ops.Table | None:
    """The declaration of one table, or None when it is in its target state (or cannot be planned at all)."""
    rules = contract.rules
    target = catalog.table(spec.name)
    legacy = catalog.table(spec.legacy_name) if spec.legacy_name else None
    if target is None and legacy is None:
        return None  # T-MISSING, already handed on as manual
    if target is not None and legacy is not None:
        manual(f"both {legacy.name} and {spec.name} exist: merge them by hand, then plan again",
               expected=spec.name, actual=f"{legacy.name}, {spec.name}")
    table = target or legacy
    assert table is not None
    # a column to drop is neither converted nor renamed, nor is an old name an earlier expand keeps in sync
    names = set(table.column_names) - set(spec.dropped) - kept_until_contract(table, spec, rules)
    kept = [c for c in table.columns if c.name in names]
    json = tuple(c.name for c in kept if "G1" in rules.enabled and c.type == "json")
    timestamps = tuple(c.name for c in kept if "G2" in rules.enabled and c.type == "timestamp without time zone")
    renames = _renames(table, spec, contract, names, manual)
    fks = _foreign_keys(catalog, contract, spec, table, manual)
    tenant, parents = _tenant(catalog, contract, spec, table, findings, manual)
    if registry is not None:  # the tenant column is gained: nullable, its FK new, RLS as any GLOBAL table's
        tc = contract.rules.tenant_column
        action = _unstated_action(contract, tc, registry, True, [], f"{table.name}.{tc}", "none", manual)
        if action is None:
            return None
        fks = tuple(sorted((*fks, ops.Fk(tc, registry, action, "")), key=lambda fk: fk.column))
        tenant = {"tenant": ops.GLOBAL, "tenant_added": True, **_legacy_rls(table)}
    declared = ops.Table(
        spec.name, legacy_name=spec.legacy_name if target is None else None, json=json, renames=renames,
        timestamps=timestamps, fks=fks, parents=parents, tenant_keys=_tenant_keys(spec, table, parents, fks),
        indexes=tuple(f.expected for f in findings if f.rule == "T-INDEX" and f.expected), **tenant)
    if declared == ops.Table(spec.name, timestamps=()):
        return None
    return declared


def _tenant_keys(spec: TableSpec, table: CatalogTable, parents: tuple[tuple[str, str], ...],
                 fks: tuple[ops.Fk, ...]) -> tuple[str, ...]:
    """The contract's ``tenant_keys`` among the parents to guard whose FK ends CASCADE (declared, or already so):
    the composite FK must delete what the column's FK deletes; any other stays a guard trigger."""
    def action(column: str) -> str | None:
        declared = next((fk.on_delete for fk in fks if fk.column == column), None)
        return declared or next((fk.on_delete for fk in table.foreign_keys if fk.columns == (column,)), None)

    return tuple(c for c in spec.tenant_keys if c in dict(parents) and action(c) == ops.CASCADE)


def _wanted_renames(spec: TableSpec, contract: Contract) -> dict[str, str]:
    """Old column name -> new: G3's renamed columns and the contract's ``renamed`` for this table."""
    wanted = dict(contract.rules.renamed_columns) if "G3" in contract.rules.enabled else {}
    wanted.update({c.legacy_name: c.name for c in spec.columns.values() if c.legacy_name})
    return wanted


def _renames(table: CatalogTable, spec: TableSpec, contract: Contract, names: set[str],
             manual: Manual) -> tuple[tuple[str, str], ...]:
    """G3's renamed columns and the contract's ``renamed``, for each old name still present without the new one."""
    out: list[tuple[str, str]] = []
    for old, new in _wanted_renames(spec, contract).items():
        if old not in names:
            continue
        if new in names:
            manual(f"{table.name} has both {old} and {new}: merge them by hand", column=old, expected=new,
                   actual=f"{old}, {new}")
            continue
        out.append((old, new))
    return tuple(out)


def _foreign_keys(catalog: Catalog, contract: Contract, spec: TableSpec, table: CatalogTable,
                  manual: Manual) -> tuple[ops.Fk, ...]:
    """One ``Fk`` per single-column FK whose constraints are not already one with the decided action.

    Constraints are grouped by their column and the table they reference, never by name: two constraints
    on one column are a duplicate whatever they are called, and an FK already right under another name is
    left alone.
    """
    rules = contract.rules
    by_columns: dict[tuple[str, ...], list[ForeignKey]] = {}
    for fk in table.foreign_keys:
        by_columns.setdefault(fk.columns, []).append(fk)
    out: list[ops.Fk] = []
    for cols, fks in sorted(by_columns.items()):
        if set(cols) & set(spec.dropped):
            continue  # goes with its column
        label = f"{table.name}.{', '.join(cols)}"
        listing = ", ".join(f"{fk.name} {fk.on_delete}" for fk in fks)
        refs = {fk.target_table for fk in fks}
        redeclarable = (len(cols) == 1 and len(refs) == 1 and all(fk.target_columns == ("id",) for fk in fks)
                        and all(fk.target_schema in contract.schemas for fk in fks))
        stated = expected_action(contract, spec, fks[0])
        if not redeclarable:
            broken = len(fks) > 1 or any(fk.on_delete not in rules.allowed_actions for fk in fks) or \
                (stated is not None and any(fk.on_delete != stated for fk in fks))
            if broken:
                manual(f"{label} ({listing}) is not a single-column FK to an id in the contract's schemas: the ops "
                       "engine cannot redeclare it", column=cols[0], constraint=", ".join(fk.name for fk in fks),
                       expected=stated or "/".join(rules.allowed_actions), actual=listing)
            continue
        column = table.column(cols[0])
        nullable = column.nullable if column else True
        ref = _reference(catalog, contract, spec, fks[0].target_table)
        action = stated or _unstated_action(contract, cols[0], ref, nullable, fks, label, listing, manual)
        if action is None:
            continue
        if action == "SET NULL" and not nullable:
            manual(f"{label} → {ref} must be ON DELETE SET NULL but {cols[0]} is NOT NULL: make it nullable or state "
                   "another action", column=cols[0], constraint=fks[0].name, expected="nullable column", actual="NOT NULL")
            continue
        if len(fks) == 1 and fks[0].on_delete == action:
            continue  # already in its target state, whatever its name
        legacy = " ".join(f"{fk.name}:{ops.ACTION_CODES[fk.on_delete]}" for fk in sorted(fks, key=lambda f: f.name))
        out.append(ops.Fk(cols[0], ref, action, legacy))
    return tuple(out)


def _unstated_action(contract: Contract, column: str, ref: str, nullable: bool, fks: list[ForeignKey], label: str,
                     listing: str, manual: Manual) -> str | None:
    """The action of an FK the contract does not state: the one allowed action its constraints already carry,
    else the first matching ``rules.G4.defaults``; None (and a manual finding) when neither decides."""
    rules = contract.rules
    present = sorted({fk.on_delete for fk in fks} & set(rules.allowed_actions))
    if len(present) == 1:
        return present[0]
    if len(present) > 1:
        manual(f"{label} has conflicting FK constraints ({listing}) and the contract states no action: state one",
               column=column, constraint=", ".join(fk.name for fk in fks), expected="one action", actual=listing)
        return None
    default = next((d for d in rules.fk_defaults if d.matches(column, ref, nullable, rules.tenant_column)), None)
    if default is None or default.action == MANUAL:
        why = "a G4 default says a person decides" if default else "no G4 default matches it"
        manual(f"{label} → {ref} is ON DELETE {fks[0].on_delete}; the contract states no action and {why}",
               column=column, constraint=", ".join(fk.name for fk in fks),
               expected="/".join(rules.allowed_actions), actual=listing)
        return None
    return default.action


def _reference(catalog: Catalog, contract: Contract, spec: TableSpec, current: str) -> str:
    """The name an FK's parent has when the revision runs: renamed only if its rename runs first (same group)."""
    new = contract.mapping().new_table(current)
    if new is None or new == current:
        return current
    renamed_here = contract.tables[new].group == spec.group
    return new if renamed_here or catalog.table(new) is not None else current


def _tenant(catalog: Catalog, contract: Contract, spec: TableSpec, table: CatalogTable, findings: list[Finding],
            manual: Manual) -> tuple[dict[str, Any], tuple[tuple[str, str], ...]]:
    """G5's declaration (tenant mode, legacy NOT NULL, legacy RLS frozen) and G7's parents to guard."""
    rules = contract.rules
    tc = rules.tenant_column
    if table.column(tc) is None or tc in spec.dropped:
        return {}, ()
    g5 = [f for f in findings if f.rule == "G5" and f.expected != ROLE_EXPECTED]
    for f in findings:
        if f.rule == "G5" and f.expected == ROLE_EXPECTED:
            manual(f"{f.message}: change the role by hand", expected=f.expected, actual=f.actual)
    parents = tuple((col, parent) for col, parent in _parent_columns(catalog, contract, spec, table)
                    if not _guarded(table, col, tc))
    col = table.column(tc)
    assert col is not None
    if (g5 or parents) and col.type != TENANT_TYPE:
        manual(f"{table.name}.{tc} is {col.type}: the ops engine's policies and guards compare the tenant as "
               f"{TENANT_TYPE}", column=tc, expected=TENANT_TYPE, actual=col.type)
        return {}, ()
    if not g5:
        return {}, parents
    return {"tenant": ops.REQUIRED if spec.tenant == "required" else ops.GLOBAL, "tenant_was_not_null": not col.nullable,
            **_legacy_rls(table)}, parents


def _legacy_rls(table: CatalogTable) -> dict[str, Any]:
    """The RLS flags and policies a downgrade restores, frozen as the catalog has them."""
    legacy_rls = "forced" if table.rls_forced else "enabled" if table.rls_enabled else None
    policies = tuple(ops.Policy(p.name, p.command, p.using, p.with_check, p.permissive, p.roles) for p in table.policies)
    return {"legacy_rls": legacy_rls, "legacy_policies": policies}


def _parent_columns(catalog: Catalog, contract: Contract, spec: TableSpec, table: CatalogTable) -> list[tuple[str, str]]:
    """(column, parent) of each single-column FK to a table that keeps a required tenant column: G7's pairs.

    A ``shared`` table (a catalogue other tenants' rows may reference) is neither a parent nor a child of
    such a pair unless the contract states it in ``tenant_parents``, which always counts.
    """
    tc = contract.rules.tenant_column
    out: list[tuple[str, str]] = []
    for fk in table.foreign_keys:
        if len(fk.columns) != 1 or fk.columns[0] == tc:
            continue
        stated = fk.columns[0] in spec.tenant_parents
        if spec.shared and not stated:
            continue
        ref = _reference(catalog, contract, spec, fk.target_table)
        parent_spec = contract.tables.get(contract.mapping().new_table(fk.target_table) or fk.target_table)
        parent = catalog.table(fk.target_table)
        if parent is None or parent.column(tc) is None or parent_spec is None or parent_spec.tenant != "required" \
                or tc in parent_spec.dropped or parent_spec.shared and not stated:
            continue
        if (fk.columns[0], ref) not in out:
            out.append((fk.columns[0], ref))
    return sorted(out)


def _guarded(table: CatalogTable, column: str, tc: str) -> bool:
    """A guard trigger of the ops engine's name, or a composite FK (column, tenant) already ties the pair."""
    if ops.guard_name(table.name, column) in table.triggers:
        return True
    return any({column, tc} <= set(fk.columns) for fk in table.foreign_keys)
