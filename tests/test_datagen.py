"""datagen against a real embedded PostgreSQL: integrity, determinism, edge cases, scenarios, foreign schemas."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from synap_verify.catalog import Catalog, read_catalog
from synap_verify.datagen import LoadReport, fill
from synap_verify.datagen.scenarios import UNKNOWN_PERMISSION
from synap_verify.datagen.schema import load_schema_file
from synap_verify.datagen.values import ALL_JSON_CASES, DST_TIMESTAMPS
from synap_verify.errors import SynapError
from synap_verify.resources import LEGACY_SCHEMA
from synap_verify.server import Server

LEGACY = LEGACY_SCHEMA
FOREIGN = Path(__file__).parent / "data" / "foreign_schema.sql"


@pytest.fixture(scope="module")
def server(pg_factory: Callable[[], Server]) -> Server:
    return pg_factory()


def _filled(server: Server, db: str, schema_file: Path, schemas: list[str], seed: int,
            scale: str = "tiny") -> tuple[psycopg.Connection, Catalog, LoadReport]:
    server.connect().execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
    load_schema_file(server.dsn(db), schema_file)
    conn = server.connect(db)
    catalog = read_catalog(conn, schemas)
    return conn, catalog, fill(server.dsn(db), catalog, scale, seed)


@pytest.fixture(scope="module")
def legacy(server: Server) -> tuple[psycopg.Connection, Catalog, LoadReport]:
    return _filled(server, "legacy_1", LEGACY, ["synapscale_db"], seed=1)


def _one(conn: psycopg.Connection, query: str, *args: object) -> object:
    return conn.execute(query, args or None).fetchone()[0]  # type: ignore[index]


def _fk_violations(conn: psycopg.Connection, catalog: Catalog) -> list[str]:
    """Every FK of the catalog, checked with an anti-join (NULL in any column = no reference)."""
    bad = []
    for t in catalog.tables.values():
        for fk in t.foreign_keys:
            target = catalog.tables.get(fk.target_table)
            if target is None:
                continue
            q = sql.SQL("SELECT count(*) FROM {c} c WHERE {notnull} AND NOT EXISTS "
                        "(SELECT 1 FROM {p} p WHERE {match})").format(
                c=sql.Identifier(t.schema, t.name), p=sql.Identifier(target.schema, target.name),
                notnull=sql.SQL(" AND ").join(sql.SQL("c.{} IS NOT NULL").format(sql.Identifier(c))
                                              for c in fk.columns),
                match=sql.SQL(" AND ").join(sql.SQL("p.{} = c.{}").format(sql.Identifier(p), sql.Identifier(c))
                                            for c, p in zip(fk.columns, fk.target_columns, strict=True)))
            if n := conn.execute(q).fetchone()[0]:  # type: ignore[index]
                bad.append(f"{t.name}.{fk.name}: {n} orphans")
    return bad


def _checksum(conn: psycopg.Connection, catalog: Catalog) -> str:
    parts = []
    for name in sorted(catalog.tables):
        t = catalog.tables[name]
        parts.append(conn.execute(sql.SQL("SELECT coalesce(md5(string_agg(md5(x::text), '' ORDER BY md5(x::text))), '')"
                                          " FROM {} x").format(sql.Identifier(t.schema, name))).fetchone()[0])  # type: ignore[index]
    return "".join(parts)


def test_every_table_has_rows_and_every_fk_holds(legacy: tuple[psycopg.Connection, Catalog, LoadReport]) -> None:
    conn, catalog, report = legacy
    empty = [n for n in catalog.tables if n != "alembic_version" and report.rows.get(n, 0) < 3]
    assert not empty, f"tables with fewer than 3 rows at tiny: {empty}"
    for name, count in report.rows.items():
        t = catalog.tables[name]
        assert _one(conn, sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t.schema, name))) == count
    assert _fk_violations(conn, catalog) == []
    assert report.seconds < 30 and report.bytes > 0


def test_same_seed_same_data_other_seed_other_data(server: Server,
                                                   legacy: tuple[psycopg.Connection, Catalog, LoadReport]) -> None:
    conn, catalog, _ = legacy
    again, _, _ = _filled(server, "legacy_1_again", LEGACY, ["synapscale_db"], seed=1)
    other, _, _ = _filled(server, "legacy_2", LEGACY, ["synapscale_db"], seed=2)
    assert _checksum(again, catalog) == _checksum(conn, catalog)
    assert _checksum(other, catalog) != _checksum(conn, catalog)


def test_every_json_edge_case_and_dst_instant_is_present(legacy: tuple[psycopg.Connection, Catalog, LoadReport]) -> None:
    conn, catalog, _ = legacy
    found: set[str] = set()
    for t, c in catalog.columns_of_type("json"):
        q = sql.SQL("SELECT DISTINCT {c}::text FROM {t} WHERE {c}::text = ANY(%s)").format(
            c=sql.Identifier(c.name), t=sql.Identifier(t.schema, t.name))
        found.update(r[0] for r in conn.execute(q, [list(ALL_JSON_CASES.values())]))
    missing = [name for name, text in ALL_JSON_CASES.items() if text not in found]
    assert not missing, f"edge cases absent from every json column: {missing}"
    # \u0000 stays rare: a few rows, never most of a column
    nul = sum(_one(conn, sql.SQL("SELECT count(*) FROM {t} WHERE {c}::text LIKE '%%\\u0000%%'").format(  # type: ignore[misc]
        c=sql.Identifier(c.name), t=sql.Identifier(t.schema, t.name))) for t, c in catalog.columns_of_type("json"))
    assert 0 < nul < 100
    stamps: set[str] = set()
    for t, c in catalog.columns_of_type("timestamp without time zone"):
        q = sql.SQL("SELECT DISTINCT {c}::text FROM {t} WHERE {c} = ANY(%s::timestamp[])").format(
            c=sql.Identifier(c.name), t=sql.Identifier(t.schema, t.name))
        stamps.update(r[0] for r in conn.execute(q, [list(DST_TIMESTAMPS)]))
    assert len(stamps) == len(set(DST_TIMESTAMPS))


def test_spec_scenarios_are_present(legacy: tuple[psycopg.Connection, Catalog, LoadReport]) -> None:
    conn, _, report = legacy
    assert all(report.scenarios.values()), report.scenarios
    q = "SELECT count(*) FROM synapscale_db."
    assert _one(conn, q + "workflows WHERE workspace_id IS NULL")
    assert _one(conn, q + "agents WHERE workspace_id IS NULL")
    assert _one(conn, q + "rbac_roles WHERE permissions::text LIKE %s", f'%"{UNKNOWN_PERMISSION}"%')
    assert not _one(conn, q + "rbac_permissions WHERE key = %s", UNKNOWN_PERMISSION)
    assert _one(conn, q + "rbac_roles WHERE tenant_id IS NULL") and _one(conn, q + "rbac_roles WHERE tenant_id IS NOT NULL")
    assert _one(conn, q + "llms_messages WHERE rating IS NOT NULL AND feedback IS NOT NULL")
    assert _one(conn, q + "llms_messages WHERE rating IS NULL")
    assert _one(conn, q + "agents WHERE provider IS NULL AND model_provider IS NOT NULL")
    assert _one(conn, q + "users WHERE tenant_id IS NULL") == 0
    authors = ("marketplace_components m JOIN synapscale_db.users u ON u.id = m.author_id WHERE m.author_name {} "
               "u.full_name")
    assert 0 < _one(conn, q + authors.format("<>")) < _one(conn, q + authors.format("="))  # type: ignore[operator]
    assert _one(conn, q + "marketplace_components WHERE tags LIKE '%%,%%'")
    drift = ("workspace_projects c JOIN synapscale_db.workspaces p ON p.id = c.workspace_id "
             "WHERE c.tenant_id IS DISTINCT FROM p.tenant_id")
    assert 0 < _one(conn, q + drift) < _one(conn, q + "workspace_projects") / 4  # type: ignore[operator]
    counted = ("workspaces w WHERE member_count {} (SELECT count(*) FROM synapscale_db.workspace_members m "
               "WHERE m.workspace_id = w.id)")
    assert 0 < _one(conn, q + counted.format("<>")) < _one(conn, q + counted.format("="))  # type: ignore[operator]


def test_children_mostly_share_their_parents_tenant(legacy: tuple[psycopg.Connection, Catalog, LoadReport]) -> None:
    conn, _, _ = legacy
    same, total = conn.execute(
        "SELECT count(*) FILTER (WHERE e.tenant_id = w.tenant_id), count(*) FROM synapscale_db.analytics_events e "
        "JOIN synapscale_db.workspaces w ON w.id = e.workspace_id").fetchone()  # type: ignore[misc]
    assert total and same / total > 0.8
    sizes = [r[0] for r in conn.execute("SELECT count(*) FROM synapscale_db.users GROUP BY tenant_id ORDER BY 1 DESC")]
    assert sizes[0] > 2 * sizes[-1]  # skewed tenants


def test_a_foreign_schema_loads_and_fills(server: Server) -> None:
    conn, catalog, report = _filled(server, "foreign", FOREIGN, ["shop", "shop_audit"], seed=7)
    assert set(report.rows) == {"stores", "categories", "customers", "orders", "order_lines", "changes"}
    assert all(n >= 3 for n in report.rows.values()), report.rows
    assert _fk_violations(conn, catalog) == []
    assert _one(conn, "SELECT count(*) FROM shop.categories WHERE parent_id IS NOT NULL")
    assert _one(conn, "SELECT count(DISTINCT state) FROM shop.orders")
    assert _one(conn, "SELECT max(length(handle)) FROM shop.customers") <= 20  # type: ignore[operator]
    assert not any(report.scenarios.values())
    # the identity sequence continues after the generated ids
    conn.execute("INSERT INTO shop.customers (store_code, handle, email, tier, signed_up) "
                 "SELECT store_code, 'new-handle', 'x@y.z', 'gold', now() FROM shop.stores LIMIT 1")


def test_progress_reports_every_table(server: Server) -> None:
    server.connect().execute("CREATE DATABASE progress")
    load_schema_file(server.dsn("progress"), FOREIGN)
    with server.connect("progress") as conn:
        catalog = read_catalog(conn, ["shop", "shop_audit"])
    calls: list[tuple[str, int, int]] = []
    report = fill(server.dsn("progress"), catalog, "tiny", 3, progress=lambda *a: calls.append(a))
    last = {name: (done, total) for name, done, total in calls}
    assert last == {name: (n, n) for name, n in report.rows.items()}


def test_a_broken_schema_file_names_file_line_and_statement(server: Server, tmp_path: Path) -> None:
    server.connect().execute("CREATE DATABASE broken")
    path = tmp_path / "broken.sql"
    path.write_text("-- a comment; with a semicolon\nCREATE TABLE a (id int PRIMARY KEY);\n\n"
                    "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$\n  SELECT 1; -- inner ;\n$$;\n"
                    "CREATE TABLE b (\n    id int PRIMARY KEY,\n    a_id int REFERENCES missing (id)\n);\n")
    with pytest.raises(SynapError) as caught:
        load_schema_file(server.dsn("broken"), path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith('broken.sql:7: ERROR: relation "missing" does not exist')
    assert "CREATE TABLE b (" in message
