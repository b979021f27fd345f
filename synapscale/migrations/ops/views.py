"""Views reading a table (the compatibility views under the old names of renamed tables, and the database's
own): found, locked first, lifted around a change.

Part of the zero-downtime renames (see :mod:`synapscale.migrations.ops.compat`); kept apart so the G1/G2
conversions, which must lift these views around a type change, need nothing else of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from synapscale.migrations.ops.declarations import APP_ROLE
from synapscale.migrations.ops.plumbing import lit, q, run, run_all, scalar, schema

COMPAT = "synapscale compat: old name kept for the application still deployed; removed by the contract revision"


def is_view(name: str) -> bool:
    return scalar("SELECT relkind::text FROM pg_class WHERE oid = to_regclass(%(n)s)", {"n": q(name)}) == "v"


def reading_views(table: str) -> list[str]:
    """Every view of the schema reading ``table``, directly or through another view (compatibility views and the
    database's own), each after the views it reads: the order to create them in."""
    return [r[0] for r in run(  # none when ``table`` does not exist (to_regclass is NULL)
        "WITH RECURSIVE r(oid, depth) AS ("
        "SELECT w.ev_class, 1 FROM pg_depend d JOIN pg_rewrite w ON w.oid = d.objid "
        "WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = to_regclass(%(t)s) AND w.ev_class <> d.refobjid "
        "UNION SELECT w.ev_class, r.depth + 1 FROM r JOIN pg_depend d ON d.refobjid = r.oid JOIN pg_rewrite w "
        "ON w.oid = d.objid WHERE d.classid = 'pg_rewrite'::regclass AND w.ev_class <> r.oid AND r.depth < 32) "
        "SELECT c.relname::text FROM r JOIN pg_class c ON c.oid = r.oid WHERE c.relkind = 'v' "
        "AND c.relnamespace = %(s)s::regnamespace GROUP BY c.relname ORDER BY max(r.depth), 1",
        {"t": q(table), "s": schema()})]


def with_views(table: str) -> tuple[str, ...]:
    """``table`` preceded by the views reading it: the lock order of a step that changes it.

    A query on a view locks the view, then the table: a step that locked the table first and the
    view second (to drop it) would deadlock with it.
    """
    return (*reading_views(table), table)


def grant_view(view: str) -> None:
    if scalar("SELECT 1 FROM pg_roles WHERE rolname = %(r)s", {"r": APP_ROLE}):
        run(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {q(view)} TO {APP_ROLE}")


def create_view(name: str, select: str) -> None:
    run(f"CREATE VIEW {q(name)} WITH (security_invoker = true) AS {select}")
    run(f"COMMENT ON VIEW {q(name)} IS {lit(COMPAT)}")
    grant_view(name)


@contextmanager
def lifted(table: str) -> Iterator[None]:
    """Drop the views reading ``table`` and create them again as they were: definition, options (a compatibility
    view's ``security_invoker``), comment, owner and grants.

    For a change PostgreSQL refuses on a column a view uses (``TYPE jsonb``, ``TYPE timestamptz``,
    dropping the json column a shadow replaces); inside the step doing it, which holds the views'
    locks first (:func:`with_views`), so no statement ever finds a view missing.
    """
    views = reading_views(table)
    saved = [run("SELECT pg_get_viewdef(c.oid), c.reloptions, obj_description(c.oid, 'pg_class'), c.relowner::regrole::text, "
                 "ARRAY(SELECT format('GRANT %%s ON %%s TO %%s', a.privilege_type, c.oid::regclass, CASE WHEN a.grantee = 0 "
                 "THEN 'PUBLIC' ELSE a.grantee::regrole::text END) FROM aclexplode(c.relacl) a "
                 "WHERE a.grantee <> c.relowner) FROM pg_class c WHERE c.oid = %(v)s::regclass", {"v": q(v)})[0]
             for v in views]
    for view in reversed(views):
        run(f"DROP VIEW {q(view)}")
    yield
    for view, (definition, options, comment, owner, grants) in zip(views, saved, strict=True):
        with_options = f" WITH ({', '.join(options)})" if options else ""
        run(f"CREATE VIEW {q(view)}{with_options} AS {definition.rstrip().rstrip(';')}")
        if comment is not None:
            run(f"COMMENT ON VIEW {q(view)} IS {lit(comment)}")
        run(f"ALTER VIEW {q(view)} OWNER TO {owner}")
        run_all(*grants)
