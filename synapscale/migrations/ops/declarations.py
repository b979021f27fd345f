"""declarations the revisions use: part of the restructure's shared mechanics (see the package docstring)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any

import psycopg

from synapscale.models import SCHEMA as SCHEMA  # the reference's schema: Target's default, re-exported as ops.SCHEMA

log = logging.getLogger(__name__)

APP_ROLE = "synapscale_app"
CASCADE, SET_NULL, RESTRICT = "CASCADE", "SET NULL", "RESTRICT"
REQUIRED, GLOBAL = "required", "global"  # tenant modes: NOT NULL where possible / NULL means global
LEGACY_ACTIONS = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}
# json text jsonb may reject: NUL escapes, lone surrogates, exponents beyond numeric's range (either sign:
# 1e-99999 overflows numeric as much as 1e99999 does).
JSONB_SUSPECT = r"\\u0000|\\u[dD][89a-fA-F]|[eE][+-]?[0-9]{5,}"
AUDIT_TABLES = ("migration_quarantine", "migration_undo", "migration_archive", "alembic_version")
DEFAULT_EXPAND_CONTRACT_ROWS = 20_000
DEFAULT_LOCK_TIMEOUT = "500ms"  # below deadlock_timeout (1 s): in a lock cycle the migration gives up first
DEFAULT_LOCK_RETRIES = 6
DEFAULT_RECOUNT_BATCH = 100  # parents per recount transaction: its row locks last one short batch (docs/load.md)
ACTION_CODES = {action: code for code, action in LEGACY_ACTIONS.items()}
RETRYABLE = (psycopg.errors.LockNotAvailable, psycopg.errors.DeadlockDetected)
SHADOW = "__jsonb"
TARGET_OPTION = "synapscale_target"  # the key of the run's Target in ``context.configure`` (env.py)


@dataclass(frozen=True)
class Target:
    """Where a migrations folder restructures: its schema, tenant column and tenant setting.

    One per run, stated once in the folder's env.py (``context.configure(synapscale_target=...)``) and
    made current by :func:`begin`, so the same revisions and ops serve any database the planner reads;
    the defaults are the reference's.
    """

    schema: str = SCHEMA
    tenant_column: str = "tenant_id"
    tenant_setting: str = "app.current_tenant_id"

    @property
    def tenant_context(self) -> str:
        """The policies' tenant, written out: the planner inlines a SQL function by parsing its body again on
        every plan, +6 us per statement planned (measured on a by-id SELECT: 27.4 us as the owner, 33.3 us with
        this expression, 38.9 us through ``current_tenant_id()``). NULL without a setting: no rows (fail closed)."""
        setting = self.tenant_setting.replace("'", "''")
        return f"NULLIF(current_setting('{setting}', true), '')::uuid"


REFERENCE = Target()
_CURRENT: ContextVar[Target] = ContextVar("synapscale_target", default=REFERENCE)


def target() -> Target:
    """The target of the revision running now (the reference's outside a run)."""
    return _CURRENT.get()


def use(t: Target) -> None:
    """Make ``t`` the current target (:func:`begin` does, at the start of every revision)."""
    _CURRENT.set(t)


@contextmanager
def using(t: Target) -> Iterator[None]:
    """``t`` current for a block outside a run (the planner's dry run prints the SQL a run would issue)."""
    token = _CURRENT.set(t)
    try:
        yield
    finally:
        _CURRENT.reset(token)


@dataclass(frozen=True)
class Fk:
    """One foreign key in its target shape, plus the legacy constraint(s) it replaces.

    ``legacy`` is ``"name:code name:code"`` with the pg_constraint ``confdeltype`` code of each legacy
    constraint on the same column (two when the legacy schema duplicated it).
    """

    column: str
    ref: str
    on_delete: str
    legacy: str


@dataclass(frozen=True)
class Policy:
    """A legacy policy exactly as it was, so a downgrade can create it again (``Table.legacy_policies``)."""

    name: str
    command: str  # SELECT / INSERT / UPDATE / DELETE / ALL
    using: str | None = None
    with_check: str | None = None
    permissive: bool = True
    roles: tuple[str, ...] = ("public",)


@dataclass(frozen=True)
class Table:
    """One table of a group and what the global rules need to know about it."""

    name: str
    legacy_name: str | None = None
    json: tuple[str, ...] = ()
    renames: tuple[tuple[str, str], ...] = ()
    tenant: str | None = None
    tenant_was_not_null: bool = False
    # the tenant column is new (GLOBAL only: NULL = the platform-wide row): added nullable with its index before the
    # FKs, dropped by the downgrade
    tenant_added: bool = False
    parents: tuple[tuple[str, str], ...] = ()
    # 'policy' (enabled, unforced, the legacy fixture's policy) or 'no_policy'; 'enabled' / 'forced' restore
    # those flags and then exactly ``legacy_policies`` (what a generated revision freezes)
    legacy_rls: str | None = None
    legacy_policies: tuple[Policy, ...] = ()
    # the naive timestamp columns to convert and, on downgrade, to convert back; None: every naive column
    # found at upgrade and every timestamptz column at downgrade (the hand-written revisions' legacy state)
    timestamps: tuple[str, ...] | None = None
    fks: tuple[Fk, ...] = ()
    # parent columns (of ``parents``) tied to the parent's tenant by a composite FK instead of a guard
    # trigger: high-volume insert paths (see apply_tenant_keys)
    tenant_keys: tuple[str, ...] = ()
    # wider indexes the application reads through, each in place of the plain indexes whose columns lead
    # it, e.g. "tenant_id, conversation_id" or "tenant_id, created_at INCLUDE model" (see apply_indexes)
    indexes: tuple[str, ...] = ()
    # columns the expand drops that the old application reads through the compatibility view under
    # ``legacy_name``: (column, read-only SQL expression over the new table aliased ``x``)
    legacy_columns: tuple[tuple[str, str], ...] = ()
    # dropped columns the expand keeps for the old application, each kept in sync with the column of this
    # table its data moved to, e.g. ("model_provider", "provider"); the contract drops them
    kept: tuple[tuple[str, str], ...] = ()
    # dropped columns the expand keeps for the old application whose data moved elsewhere (rows of another
    # table, another table's column), each kept in sync by the trigger its Carried states
    carried: tuple[Carried, ...] = ()
    # new NOT NULL columns the old application does not know, each with the value a row it writes gets
    # (column, SQL expression over NEW): filled by a trigger until the contract, e.g. rbac_roles.scope
    filled: tuple[tuple[str, str], ...] = ()

    @property
    def expanded(self) -> bool:
        """Whether the expand keeps this table working for the old application (the contract removes what does)."""
        return bool(self.legacy_name or self.renames or self.kept or self.carried or self.filled)


@dataclass(frozen=True)
class Carried:
    """A dropped column whose values moved elsewhere (rows of another table, another table's column), kept for the
    old application until the contract: one trigger function (``sync``, a plpgsql body; ``TG_TABLE_NAME`` tells
    the side) keeps the column and its destination in sync, on each table of ``on`` with its timing and events.
    The group's data move is the backfill of the destination. ``restore``: when the contract is undone, what its
    ``DROP COLUMN`` took besides the journaled values (rows written since, filled from the destination; the
    column's legacy constraints and indexes)."""

    column: str
    type: str
    sync: str
    restore: tuple[str, ...]
    on: tuple[tuple[str, str], ...]  # (table, "AFTER INSERT OR UPDATE"): where the sync trigger runs, and when

    @property
    def tables(self) -> tuple[str, ...]:
        return tuple(table for table, _ in self.on)


@dataclass(frozen=True)
class Counter:
    """A denormalised counter on ``parent`` computed from ``child`` rows linked by ``fk``.

    ``assignments`` maps each parent column to an aggregate over the child rows aliased ``c``.
    """

    parent: str
    child: str
    fk: str
    assignments: tuple[tuple[str, str], ...]
    watch: tuple[str, ...] = ()  # child columns besides ``fk`` whose change alters the aggregate


@dataclass(frozen=True)
class Gin:
    table: str
    column: str

    @property
    def name(self) -> str:
        return f"ix_{self.table}_{self.column}_gin"[:63]


@dataclass(frozen=True)
class Moves:
    """A group's data moves written by hand: what the contract cannot state as a target shape (a json list into
    rows, a column into another table, NULLs that need a home), named by the contract's ``moves:`` so the planner
    calls them instead of reporting them ``PLAN-MANUAL`` (pgroll's ``up``/``down`` SQL, as Python).

    ``up`` runs after the group's expand and before its declarations (data before drops, NOT NULL after its
    values); ``down`` after the declarations are undone. ``tables`` adds to the planned ``Table``s the fields
    only these moves explain (``kept``, ``carried``, ``filled``, ``legacy_columns``), by table name.
    """

    up: Callable[[Group], None]
    down: Callable[[Group], None]
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)

    def declare(self, tables: tuple[Table, ...]) -> tuple[Table, ...]:
        """The planned tables with these moves' fields; a table the moves name must be among them."""
        missing = sorted(set(self.tables) - {t.name for t in tables})
        if missing:
            raise ValueError(f"the group's moves add fields to {', '.join(missing)}, which its revision does not declare")
        return tuple(replace(t, **self.tables.get(t.name, {})) for t in tables)


@dataclass
class Group:
    """Everything a group revision applies; ``upgrade_group``/``downgrade_group`` run it."""

    tables: tuple[Table, ...]
    counters: tuple[Counter, ...] = ()
    gin: tuple[Gin, ...] = ()
    # views reading the group's tenant tables that ran with their owner's rights: made security_invoker, so the
    # tables' RLS applies to whoever reads them (the downgrade resets the option)
    views: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    def table(self, name: str) -> Table:
        """The declaration of ``name`` (a hand-written move finds the table it extends by name)."""
        return next(t for t in self.tables if t.name == name)
