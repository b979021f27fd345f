"""Compatibility views under the old names of renamed tables: found, locked first, lifted around a change.

Part of the zero-downtime renames (see :mod:`synapscale.migrations.ops.compat`); kept apart so the G1/G2
conversions, which must lift these views around a type change, need nothing else of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from synapscale.migrations.ops.declarations import APP_ROLE
from synapscale.migrations.ops.plumbing import exists_table, lit, q, run, scalar

COMPAT = "synapscale compat: old name kept for the application still deployed; removed by the contract revision"


def is_view(name: str) -> bool:
    return scalar("SELECT relkind::text FROM pg_class WHERE oid = to_regclass(%(n)s)", {"n": q(name)}) == "v"


def compat_views(table: str) -> list[str]:
    """Names of the compatibility views that read ``table`` (their own table, or a source of a legacy column)."""
    if not exists_table(table):
        return []
    return [r[0] for r in run(
        "SELECT DISTINCT v.relname::text FROM pg_depend d JOIN pg_rewrite w ON w.oid = d.objid "
        "JOIN pg_class v ON v.oid = w.ev_class WHERE d.classid = 'pg_rewrite'::regclass "
        "AND d.refobjid = %(t)s::regclass AND v.oid <> %(t)s::regclass AND obj_description(v.oid, 'pg_class') = %(c)s "
        "ORDER BY 1", {"t": q(table), "c": COMPAT})]


def with_views(table: str) -> tuple[str, ...]:
    """``table`` preceded by its compatibility views: the lock order of a step that changes it.

    A query on a view locks the view, then the table: a step that locked the table first and the
    view second (to drop it) would deadlock with it.
    """
    return (*compat_views(table), table)


def grant_view(view: str) -> None:
    if scalar("SELECT 1 FROM pg_roles WHERE rolname = %(r)s", {"r": APP_ROLE}):
        run(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {q(view)} TO {APP_ROLE}")


def create_view(name: str, select: str) -> None:
    run(f"CREATE VIEW {q(name)} WITH (security_invoker = true) AS {select}")
    run(f"COMMENT ON VIEW {q(name)} IS {lit(COMPAT)}")
    grant_view(name)


@contextmanager
def lifted(table: str) -> Iterator[None]:
    """Drop the compatibility views reading ``table`` and create them again from their own definition.

    For a change PostgreSQL refuses on a column a view uses (``TYPE jsonb``, ``TYPE timestamptz``,
    dropping the json column a shadow replaces); inside the step doing it, which holds the views'
    locks first (:func:`with_views`), so no statement ever finds the old name missing.
    """
    saved = [(v, str(scalar("SELECT pg_get_viewdef(%(v)s::regclass)", {"v": q(v)}))) for v in compat_views(table)]
    for view, _ in saved:
        run(f"DROP VIEW {q(view)}")
    yield
    for view, definition in saved:
        create_view(view, definition.rstrip().rstrip(";"))


