"""The legacy states the spec asks the fixture to reproduce, applied after the bulk load.

Each scenario is a small function that touches only the tables and columns it names and does nothing
when they are absent, so a foreign schema is left as generated. Rows are chosen by ``md5(key || seed)``
order: deterministic for a seed, spread over tenants. Each returns how many rows it touched.
"""

from __future__ import annotations

from collections.abc import Callable

import psycopg
from psycopg import sql

from synap_verify.catalog import Catalog, Table
from synap_verify.datagen.profiles import Profile

UNKNOWN_PERMISSION = "legacy.unknown_permission"  # in rbac_roles.permissions, matches no rbac_permissions.key
DRIFT_PARENTS = ("workspaces", "workflows", "workspace_projects", "agents", "llms_conversations")
COUNTED_ALIASES = {"rating": ("rating", "review")}  # ratings may live in a reviews table
Scenario = Callable[[psycopg.Connection, Catalog, Profile, int], int]


def _has(cat: Catalog, table: str, *columns: str) -> Table | None:
    t = cat.table(table)
    return t if t is not None and all(t.column(c) is not None for c in columns) else None


def _key(t: Table) -> sql.Composable:
    return sql.Identifier(t.primary_key[0]) if len(t.primary_key) == 1 else sql.SQL("ctid")


def _some(conn: psycopg.Connection, t: Table, seed: int, share: float, at_least: int = 1,
          where: str = "true") -> sql.Composable:
    """``key IN (...)`` for a deterministic share of the rows (at least ``at_least``) matching ``where``."""
    count = conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE " + where).format(_name(t))).fetchone()[0]  # type: ignore[index]
    n = max(at_least, round(count * share)) if count else 0
    return sql.SQL("{k} IN (SELECT {k} FROM {t} WHERE " + where + " ORDER BY md5({k}::text || {s}) LIMIT {n})").format(
        k=_key(t), t=_name(t), s=sql.Literal(str(seed)), n=sql.Literal(n))


def _name(t: Table) -> sql.Composable:
    return sql.Identifier(t.schema, t.name)


def _update(conn: psycopg.Connection, query: sql.Composed) -> int:
    return conn.execute(query).rowcount


def null_workspace(conn: psycopg.Connection, cat: Catalog, profile: Profile, seed: int) -> int:
    """workflows/agents with NULL workspace_id: the migration re-homes them to the tenant's default workspace."""
    touched = 0
    for name in ("workflows", "agents"):
        t = _has(cat, name, "workspace_id")
        if t is not None and t.column("workspace_id").nullable:  # type: ignore[union-attr]
            touched += _update(conn, sql.SQL("UPDATE {} SET workspace_id = NULL WHERE {}").format(
                _name(t), _some(conn, t, seed, 0.02, 2)))
    return touched


def global_rbac(conn: psycopg.Connection, cat: Catalog, profile: Profile, seed: int) -> int:
    """Some roles and permissions are global (tenant_id NULL), the rest belong to a tenant."""
    touched = 0
    for name in ("rbac_roles", "rbac_permissions"):
        t = _has(cat, name, "tenant_id")
        if t is not None and t.column("tenant_id").nullable:  # type: ignore[union-attr]
            touched += _update(conn, sql.SQL("UPDATE {} SET tenant_id = NULL WHERE {}").format(
                _name(t), _some(conn, t, seed, 0.3, 2)))
    return touched


def role_permission_lists(conn: psycopg.Connection, cat: Catalog, profile: Profile, seed: int) -> int:
    """rbac_roles.permissions: json lists of real permission keys, one role also holding a key that no
    rbac_permissions row has (the migration must report it)."""
    roles, perms = _has(cat, "rbac_roles", "permissions"), _has(cat, "rbac_permissions", "key")
    if roles is None or perms is None:
        return 0
    typ = sql.SQL(roles.column("permissions").type)  # type: ignore[union-attr]
    touched = _update(conn, sql.SQL(
        "UPDATE {r} r SET permissions = coalesce((SELECT json_agg(k ORDER BY k) FROM (SELECT p.key AS k FROM {p} p "
        "ORDER BY md5(p.key || r.id::text) LIMIT 1 + abs(hashtext(r.id::text)) % 4) s), '[]')::text::{typ}"
    ).format(r=_name(roles), p=_name(perms), typ=typ))
    _update(conn, sql.SQL("UPDATE {r} SET permissions = (permissions::jsonb || {u}::jsonb)::text::{typ} WHERE {some}")
            .format(r=_name(roles), u=sql.Literal(f'["{UNKNOWN_PERMISSION}"]'), typ=typ,
                    some=_some(conn, roles, seed, 0.0, 1)))
    return touched


def message_feedback(conn: psycopg.Connection, cat: Catalog, profile: Profile, seed: int) -> int:
    """llms_messages.rating/feedback set on a few rows (mostly NULL): carried into message_feedbacks."""
    t = _has(cat, "llms_messages", "rating", "feedback")
    if t is None:
        return 0
    _update(conn, sql.SQL("UPDATE {} SET rating = 5, feedback = 'Great answer, thanks!' WHERE {}").format(
        _name(t), _some(conn, t, seed, 0.0, 2)))
    return conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE rating IS NOT NULL OR feedback IS NOT NULL")
                        .format(_name(t))).fetchone()[0]  # type: ignore[index]


def agent_model_provider(conn: psycopg.Connection, cat: Catalog, profile: Profile, seed: int) -> int:
    """agents.model_provider set where provider is NULL: its value must move into provider."""
    t = _has(cat, "agents", "model_provider", "provider")
    if t is None or not t.column("provider").nullable:  # type: ignore[union-attr]
        return 0
    return _update(conn, sql.SQL(
        "UPDATE {} SET provider = NULL, model_provider = coalesce(model_provider, 'anthropic') WHERE {}"
    ).format(_name(t), _some(conn, t, seed, 0.1, 2)))


def marketplace_authors(conn: psycopg.Connection, cat: Catalog, profile: Profile, seed: int) -> int:
    """author_name equals users.full_name of author_id except on a few rows; tags are messy CSV text."""
    t, users = _has(cat, "marketplace_components", "author_name", "author_id"), _has(cat, "users", "full_name")
    if t is None or users is None:
        return 0
    _update(conn, sql.SQL("UPDATE {m} m SET author_name = u.full_name FROM {u} u WHERE u.id = m.author_id")
            .format(m=_name(t), u=_name(users)))
    touched = _update(conn, sql.SQL("UPDATE {} SET author_name = coalesce(author_name, '') || ' (former name)' "
                                    "WHERE {}").format(_name(t), _some(conn, t, seed, 0.02, 2)))
    if t.column("tags") is not None and t.column("tags").type in ("text", "character varying"):  # type: ignore[union-attr]
        _update(conn, sql.SQL("UPDATE {} SET tags = ' ai, automation ,,crm ' WHERE {}").format(
            _name(t), _some(conn, t, seed + 1, 0.0, 1)))
    return touched


def tenant_drift(conn: psycopg.Connection, cat: Catalog, profile: Profile, seed: int) -> int:
    """A small share of child rows whose tenant_id is not their parent's (G7: reported, never leaked)."""
    tenants = cat.table("tenants")
    if tenants is None or len(tenants.primary_key) != 1:
        return 0
    touched = 0
    for child in cat.tables.values():
        if child.column("tenant_id") is None:
            continue
        for fk in child.foreign_keys:
            parent = cat.table(fk.target_table)
            if (fk.target_table not in DRIFT_PARENTS or len(fk.columns) != 1 or parent is None
                    or parent.column("tenant_id") is None or fk.target_table == child.name):
                continue
            touched += _update(conn, sql.SQL(
                "UPDATE {c} SET tenant_id = (SELECT ids[array_position(ids, tenant_id) % cardinality(ids) + 1] "
                "FROM (SELECT array_agg({tk} ORDER BY {tk}) ids FROM {t}) a) WHERE tenant_id IS NOT NULL AND {some}"
            ).format(c=_name(child), tk=sql.Identifier(tenants.primary_key[0]), t=_name(tenants),
                     some=_some(conn, child, seed, profile.drift_share, 1, f"{fk.columns[0]} IS NOT NULL")))
            break
    return touched


def _counted_child(cat: Catalog, parent: Table, counter: str) -> tuple[Table, str] | None:
    """The child table a counter counts: ``member_count`` of workspaces -> workspace_members."""
    stem = counter.removesuffix("_count").removesuffix("_average")
    stem = stem[:-1] if stem.endswith("y") else stem.removesuffix("s")
    stems = COUNTED_ALIASES.get(stem, (stem,))
    found = {(t.name, fk.columns[0]): t for t in cat.tables.values() for fk in t.foreign_keys
             if fk.target_table == parent.name and len(fk.columns) == 1 and t is not parent
             and any(word.startswith(stems) for word in t.name.split("_"))}
    if len(found) != 1:  # none, or ambiguous: leave the counter as generated
        return None
    (_, column), child = next(iter(found.items()))
    return child, column


def counters(conn: psycopg.Connection, cat: Catalog, profile: Profile, seed: int) -> int:
    """Counters equal what they count, except a few drifted rows (G8)."""
    touched = 0
    for parent in cat.tables.values():
        if len(parent.primary_key) != 1:
            continue
        pk = sql.Identifier(parent.primary_key[0])
        for col in parent.columns:
            if not (col.name.endswith("_count") or col.name == "rating_average"):
                continue
            found = _counted_child(cat, parent, col.name)
            if found is None:
                continue
            child, fk_col = found
            if col.name == "rating_average":
                if child.column("rating") is None:
                    continue
                agg = sql.SQL("round(avg(rating)::numeric, 2)")
            else:
                agg = sql.SQL("count(*)")
            c = sql.Identifier(col.name)
            conn.execute(sql.SQL(
                "UPDATE {p} p SET {c} = coalesce(s.n, 0) FROM {p} p2 LEFT JOIN "
                "(SELECT {f} AS k, {agg} AS n FROM {ch} GROUP BY {f}) s ON s.k = p2.{pk} WHERE p2.{pk} = p.{pk}"
            ).format(p=_name(parent), c=c, f=sql.Identifier(fk_col), agg=agg, ch=_name(child), pk=pk))
            touched += _update(conn, sql.SQL("UPDATE {p} SET {c} = coalesce({c}, 0) + 1 WHERE {some}").format(
                p=_name(parent), c=c, some=_some(conn, parent, seed + len(col.name), 0.01, 2)))
    return touched


SCENARIOS: tuple[Scenario, ...] = (null_workspace, global_rbac, role_permission_lists, message_feedback,
                                   agent_model_provider, marketplace_authors, tenant_drift, counters)


def apply(conn: psycopg.Connection, cat: Catalog, profile: Profile, seed: int) -> dict[str, int]:
    """Run every scenario in order; the result maps each scenario's name to the rows it touched."""
    return {s.__name__: s(conn, cat, profile, seed) for s in SCENARIOS}
