"""The restructure contract as plain, immutable data, and the legacy→new mapping it implies.

The contract is the single statement of the target schema: the checker reads it, and the
data-equivalence and benchmark code read :meth:`Contract.mapping` instead of restating renames.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from synap_verify.rules import family

if TYPE_CHECKING:
    from synap_verify.catalog import Catalog

# the rules a contract file configures (``rules: {G5: {...}}``): the contract rules that take parameters
RULE_IDS: tuple[str, ...] = tuple(r.id for r in family("contract") if r.params)
ON_DELETE_ACTIONS: tuple[str, ...] = ("CASCADE", "SET NULL", "RESTRICT", "NO ACTION", "SET DEFAULT")
TENANT_MODES: tuple[str, ...] = ("required", "nullable", "none")


@dataclass(frozen=True)
class ColumnSpec:
    """A column the target must have; ``type``/``nullable`` are checked only when stated."""

    name: str
    type: str | None = None
    nullable: bool | None = None
    legacy_name: str | None = None


@dataclass(frozen=True)
class DropSpec:
    """A column the target must not have, and where its data went (for the equivalence checks)."""

    column: str
    moved_to: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class ForeignKeySpec:
    column: str
    references: str
    on_delete: str  # an action name; classes are resolved at load time


@dataclass(frozen=True)
class CheckSpec:
    """A CHECK constraint that must exist: one whose definition mentions every listed column."""

    columns: tuple[str, ...]


@dataclass(frozen=True)
class CounterSpec:
    """A denormalised counter that must stay, kept in sync by a trigger on ``source`` (if any).

    After migration it must equal ``aggregate`` (SQL over the source rows aliased ``c``) over the source
    rows whose ``via`` column (default: the source's single-column FK to the counter's table) points at it.
    """

    column: str
    source: str | None = None
    aggregate: str = "count(*)"
    via: str | None = None


@dataclass(frozen=True)
class TableSpec:
    name: str
    group: str
    legacy_name: str | None = None
    tenant: str = "required"
    columns: dict[str, ColumnSpec] = field(default_factory=dict)
    dropped: dict[str, DropSpec] = field(default_factory=dict)
    foreign_keys: dict[str, ForeignKeySpec] = field(default_factory=dict)
    on_delete: str | None = None  # default action for FKs not listed (financial/audit tables)
    gin: tuple[str, ...] = ()
    checks: tuple[CheckSpec, ...] = ()
    counters: dict[str, CounterSpec] = field(default_factory=dict)
    tenant_parents: tuple[str, ...] = ()
    shared: bool = False  # a catalogue other tenants' rows may reference: no G7 guard to or from it (the planner)
    # B-tree indexes the workload reads through, each its key (and INCLUDE) as ops.Table.indexes spells it, e.g.
    # "tenant_id, created_at DESC, id": T-INDEX when no index has that key; the planner declares the missing ones
    indexes: tuple[str, ...] = ()
    # tenant_parents tied by a composite FK (column, tenant) instead of a guard trigger (the planner; G7 accepts either)
    tenant_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class FkDefault:
    """How the planner decides an FK the contract does not state (``rules.G4.defaults``, first match wins).

    Each condition is checked only when set: the FK's column (``$tenant_column``: G5's tenant column), the
    table it references (target name) and whether the column is nullable. ``action`` is an ON DELETE
    action, or ``manual`` for "a person decides".
    """

    action: str
    column: str | None = None
    references: str | None = None
    nullable: bool | None = None

    def matches(self, column: str, references: str, nullable: bool, tenant_column: str) -> bool:
        wanted = tenant_column if self.column == TENANT_COLUMN else self.column
        return ((wanted is None or wanted == column) and (self.references is None or self.references == references)
                and (self.nullable is None or self.nullable == nullable))


MANUAL = "manual"  # an FkDefault action: the planner reports the FK (PLAN-MANUAL) instead of choosing
TENANT_COLUMN = "$tenant_column"  # an FkDefault column: whatever G5.tenant_column names


@dataclass(frozen=True)
class Rules:
    """The parameters of the global rules G1–G9; ``enabled`` lists the rules that run."""

    enabled: frozenset[str] = frozenset(RULE_IDS)
    json_types: tuple[str, ...] = ("json",)
    json_expected: str = "jsonb"
    naive_types: tuple[str, ...] = ("timestamp without time zone",)
    naive_expected: str = "timestamp with time zone"
    renamed_columns: dict[str, str] = field(default_factory=lambda: {"meta_data": "metadata"})
    allowed_actions: tuple[str, ...] = ("CASCADE", "SET NULL", "RESTRICT")
    action_classes: dict[str, str] = field(default_factory=dict)
    target_actions: dict[str, str] = field(default_factory=dict)  # referenced table -> action
    fk_defaults: tuple[FkDefault, ...] = ()  # the planner's choice for FKs stated nowhere else
    tenant_column: str = "tenant_id"
    tenant_settings: tuple[str, ...] = ("app.current_tenant_id",)
    tenant_functions: tuple[str, ...] = ("current_tenant_id",)
    app_role: str | None = None
    index_method: str = "gin"
    parent_trigger_pattern: str = "tenant"
    drift_visible_to_child: bool = False  # may a drifted child stay visible to its own tenant (never the parent's)?
    counter_trigger_pattern: str = "count|counter|rating|stat|sync"
    backup_pattern: str = "^backup_"
    backup_group: str = "backup"


@dataclass(frozen=True)
class DroppedColumn:
    table: str
    legacy_table: str
    column: str
    moved_to: str | None
    note: str | None


@dataclass(frozen=True)
class Mapping:
    """Legacy names and types → target names and types, as the contract states them."""

    tables: dict[str, str]  # legacy table -> target table (identity when not renamed)
    columns: dict[str, dict[str, str]]  # target table -> {legacy column: target column}
    dropped: tuple[DroppedColumn, ...]
    types: dict[tuple[str, str], str]  # (target table, target column) -> target type

    def new_table(self, legacy: str) -> str | None:
        return self.tables.get(legacy)

    def legacy_table(self, new: str) -> str | None:
        return next((old for old, target in self.tables.items() if target == new), None)

    def new_column(self, legacy_table: str, column: str) -> tuple[str, str] | None:
        """Where a legacy column lives now, or None when it was dropped (see :attr:`dropped`)."""
        table = self.tables.get(legacy_table)
        if table is None:
            return None
        if any(d.legacy_table == legacy_table and d.column == column for d in self.dropped):
            return None
        return table, self.columns.get(table, {}).get(column, column)


@dataclass(frozen=True)
class Unlisted:
    """How tables the contract does not list are judged (``unlisted:``): as generic tables of ``group``.

    ``tenant`` is the mode of those that have the tenant column; those without it are not tenant tables.
    """

    group: str
    tenant: str = "required"


@dataclass(frozen=True)
class MoveSpec:
    """A group's data moves written by hand (``moves:``): the file in the migrations folder that holds them and
    the ``(table, column)`` findings they settle, which the planner then leaves to that file instead of reporting
    them ``PLAN-MANUAL``. What the file does is still checked like any revision: contract, equivalence, RLS."""

    group: str
    file: str  # relative to the migrations folder, e.g. moves/rbac.py
    settles: tuple[tuple[str, str], ...]

    def settle(self, table: str, column: str | None) -> bool:
        return (table, column or "") in self.settles


@dataclass(frozen=True)
class Contract:
    path: Path
    schemas: tuple[str, ...]
    rules: Rules
    tables: dict[str, TableSpec]  # by target name, in file order
    groups: tuple[str, ...]  # the groups the file names, in file order
    unlisted: Unlisted | None = None
    moves: dict[str, MoveSpec] = field(default_factory=dict)  # by group

    def covering(self, catalog: Catalog) -> Contract:
        """This contract plus a generic entry for each table of ``catalog`` it does not list (``unlisted``).

        Without ``unlisted`` the contract itself: tables it does not list are ignored. Backup tables (G9),
        partitions (their parent's rules apply) and Alembic's version table are never listed.
        """
        if self.unlisted is None:
            return self
        known = set(self.tables) | {t.legacy_name for t in self.tables.values() if t.legacy_name}
        backup = re.compile(self.rules.backup_pattern)
        extra = {name: TableSpec(name, self.unlisted.group,
                                 tenant=self.unlisted.tenant if table.column(self.rules.tenant_column) else "none")
                 for name, table in catalog.tables.items()
                 if name not in known and table.partition_of is None and not backup.search(name)
                 and name != "alembic_version"}
        if not extra:
            return self
        groups = self.groups if self.unlisted.group in self.groups else (*self.groups, self.unlisted.group)
        return replace(self, tables={**self.tables, **extra}, groups=groups, unlisted=None)

    def tables_in(self, groups: set[str] | frozenset[str]) -> list[TableSpec]:
        return [t for t in self.tables.values() if t.group in groups]

    @cached_property
    def _mapping(self) -> Mapping:
        return self._build_mapping()

    def mapping(self) -> Mapping:
        """The legacy→target mapping the data-equivalence checks and the benchmark workload reuse."""
        return self._mapping

    def _build_mapping(self) -> Mapping:
        tables: dict[str, str] = {}
        columns: dict[str, dict[str, str]] = {}
        dropped: list[DroppedColumn] = []
        types: dict[tuple[str, str], str] = {}
        for spec in self.tables.values():
            legacy = spec.legacy_name or spec.name
            tables[legacy] = spec.name
            renames = {c.legacy_name: c.name for c in spec.columns.values() if c.legacy_name}
            if renames:
                columns[spec.name] = renames
            dropped += [DroppedColumn(spec.name, legacy, d.column, d.moved_to, d.note) for d in spec.dropped.values()]
            types.update({(spec.name, c.name): c.type for c in spec.columns.values() if c.type})
        return Mapping(tables, columns, tuple(dropped), types)
