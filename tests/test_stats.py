"""Statistics-shaped data against a real PostgreSQL: a source with known statistics, a copy generated from
its exported statistics alone, measured column by column and plan by plan; bad statistics input."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
import yaml
from psycopg import sql

from synap_verify import cli
from synap_verify.bench.workload import Query
from synap_verify.catalog import Catalog, read_catalog
from synap_verify.datagen import LoadReport, fill
from synap_verify.datagen.fidelity import GOALS, compare_columns, compare_plans, summary
from synap_verify.datagen.stats import Stats, id_columns, load_stats, read_stats
from synap_verify.errors import SynapError
from synap_verify.pipeline import Pipeline, loaded_inputs
from synap_verify.resources import LEGACY_SCHEMA
from synap_verify.server import Server
from synap_verify.settings import Settings

SCHEMA = """
CREATE SCHEMA shop;
CREATE TABLE shop.customers (
    id bigint PRIMARY KEY,
    tier text NOT NULL CHECK (tier IN ('gold', 'silver', 'bronze')),
    country text,
    age integer CHECK (age BETWEEN 18 AND 99),
    note text,
    signed_up timestamptz
);
CREATE TABLE shop.orders (
    id bigint PRIMARY KEY,
    customer_id bigint REFERENCES shop.customers (id),
    amount numeric(10,2) NOT NULL CHECK (amount >= 0),
    status text NOT NULL,
    placed date,
    created timestamptz NOT NULL
);
CREATE INDEX ix_orders_customer ON shop.orders (customer_id);
CREATE INDEX ix_orders_status ON shop.orders (status);
"""
# known statistics: skewed tiers and statuses, 30% NULL notes, 10% NULL customers, 500 of 3000 customers ordering
ROWS = """
INSERT INTO shop.customers
SELECT i, CASE WHEN i % 10 < 7 THEN 'gold' WHEN i % 10 < 9 THEN 'silver' ELSE 'bronze' END,
       'C' || least(i % 100, i % 17), 18 + (i * 7919) % 62,
       CASE WHEN i % 10 >= 3 THEN 'note ' || (i % 400) END,
       timestamptz '2024-01-01 00:00+00' + (i * 37 % 1000) * interval '1 hour'
  FROM generate_series(1, 3000) i;
INSERT INTO shop.orders
SELECT i, CASE WHEN i % 10 <> 0 THEN 1 + (i * 31) % 500 END, (i * 13 % 10000) / 100.0,
       CASE WHEN i % 20 = 0 THEN 'refunded' WHEN i % 20 < 4 THEN 'pending' ELSE 'paid' END,
       date '2024-01-01' + i % 300, timestamptz '2024-01-01 00:00+00' + i * interval '1 minute'
  FROM generate_series(1, 6000) i;
ANALYZE;
"""
QUERIES = [Query("orders_of_customer", "shop", *["SELECT * FROM shop.orders WHERE customer_id = %(c)s"] * 2, ""),
           Query("refunds", "shop", *["SELECT count(*) FROM shop.orders o JOIN shop.customers c ON c.id = o.customer_id "
                                      "WHERE o.status = 'refunded' AND c.tier = %(t)s"] * 2, "")]


def _database(server: Server, name: str, rows: bool) -> tuple[psycopg.Connection, Catalog]:
    server.connect().execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    conn = server.connect(name)
    conn.execute(SCHEMA + (ROWS if rows else ""))
    return conn, read_catalog(conn, ["shop"])


@pytest.fixture(scope="module")
def source(pg: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[psycopg.Connection, Path]]:
    """The stand-in production, and its statistics exported to a file by the command."""
    conn, _ = _database(pg, "stats_source", rows=True)
    path = tmp_path_factory.mktemp("stats") / "stats.json"
    assert cli.main(["stats", "export", "--dsn", pg.dsn("stats_source"), "--out", str(path)]) == 0
    yield conn, path
    conn.close()


def _copy(pg: Server, name: str, stats: Stats | None) -> tuple[psycopg.Connection, Catalog, LoadReport]:
    conn, catalog = _database(pg, name, rows=False)
    return conn, catalog, fill(pg.dsn(name), catalog, "tiny", 5, stats=stats)


def _measure(source: psycopg.Connection, copy: psycopg.Connection, catalog: Catalog) -> dict[str, float]:
    return summary(compare_columns(read_stats(source, ["shop"]), read_stats(copy, ["shop"]), id_columns(catalog)),
                   compare_plans(source, copy, QUERIES))


def test_a_copy_from_statistics_alone_has_the_sources_statistics_and_plans(
        pg: Server, source: tuple[psycopg.Connection, Path]) -> None:
    conn, path = source
    stats = load_stats(path)
    assert stats.tables["shop.customers"].reltuples == 3000
    assert set(stats.tables["shop.customers"].columns["tier"].mcv) == {"gold", "silver", "bronze"}
    copy, catalog, report = _copy(pg, "stats_copy", stats)
    assert report.rows == {"customers": 3000, "orders": 6000}
    assert not report.fallback and not report.unmade
    s = _measure(conn, copy, catalog)
    assert s["null_frac_within"] == 1 and s["null_frac_diff_worst"] <= GOALS["null_frac"], s
    assert s["n_distinct_within"] == 1, s
    assert s["mcv_columns"] >= 5 and s["mcv_within"] == 1, s
    assert s["plans_comparable"] == 2 and s["plans_same"] == 1, s
    # orders.created rises with the rows (tier and status show only the correlation ties make: 0.54, 0.66)
    assert s["ordered_columns"] == 1 and s["correlation_within"] == 1, s
    # FK fan-out: 500 of the 3000 customers have orders, in the copy as in the source
    referenced = copy.execute("SELECT count(DISTINCT customer_id) FROM shop.orders").fetchone()[0]  # type: ignore[index]
    assert 250 <= referenced <= 1000


def test_shaping_ignored_is_caught_by_the_measurement(pg: Server, source: tuple[psycopg.Connection, Path]) -> None:
    """Seeded defect: a copy filled without the statistics (the profile's own shapes) fails the bars."""
    conn, _ = source
    copy, catalog, _ = _copy(pg, "stats_unshaped", None)
    s = _measure(conn, copy, catalog)
    assert s["null_frac_within"] < 1 and s["null_frac_diff_worst"] > 0.1, s
    assert s["mcv_within"] < 1, s
    assert s["plans_same"] < 1, s  # the profile's row counts plan the workload differently
    assert s["correlation_within"] < 1, s


def test_null_shares_ignored_are_caught(pg: Server, source: tuple[psycopg.Connection, Path]) -> None:
    """Seeded defect: the statistics' NULL shares lost on the way (all zero) -> the note column is far off."""
    conn, path = source
    stats = load_stats(path)
    customers = stats.tables["shop.customers"]
    lost = replace(customers, columns={k: replace(v, null_frac=0.0) for k, v in customers.columns.items()})
    copy, catalog, _ = _copy(pg, "stats_nonulls", replace(stats, tables={**stats.tables, "shop.customers": lost}))
    far = [c for c in compare_columns(read_stats(conn, ["shop"]), read_stats(copy, ["shop"]), id_columns(catalog))
           if c.null_diff > GOALS["null_frac"]]
    assert [(c.table, c.column) for c in far] == [("shop.customers", "note")]


def test_a_common_value_that_violates_a_check_is_dropped_and_noted(
        pg: Server, source: tuple[psycopg.Connection, Path]) -> None:
    _, path = source
    stats = load_stats(path)
    customers = stats.tables["shop.customers"]
    tier = customers.columns["tier"]
    age = customers.columns["age"]
    bad = {**customers.columns,
           "tier": replace(tier, mcv=("platinum", *tier.mcv), mcf=(0.3, *(f * 0.7 for f in tier.mcf))),
           "age": replace(age, mcv=("7", *age.mcv), mcf=(0.2, *age.mcf))}
    edited = replace(stats, tables={**stats.tables, "shop.customers": replace(customers, columns=bad)})
    copy, _, report = _copy(pg, "stats_badmcv", edited)
    notes = [n for n in report.notes if "dropped" in n]
    assert any("customers.tier" in n and "'platinum'" in n for n in notes), notes
    assert any("customers.age" in n and "'7'" in n for n in notes), notes
    assert not report.fallback  # no row refused: the value never reached COPY
    assert copy.execute("SELECT count(*) FROM shop.customers WHERE tier = 'platinum' OR age < 18").fetchone() == (0,)


def test_statistics_of_another_schema_are_refused(pg: Server, source: tuple[psycopg.Connection, Path]) -> None:
    _, path = source
    stats = load_stats(path)
    other = replace(stats, tables={f"crm.{k.split('.')[1]}": v for k, v in stats.tables.items()})
    pg.connect().execute("CREATE DATABASE stats_other")
    conn = pg.connect("stats_other")
    conn.execute(SCHEMA)
    with pytest.raises(SynapError, match=r"describe another schema .* export them from the database the baseline"):
        fill(pg.dsn("stats_other"), read_catalog(conn, ["shop"]), "tiny", 1, stats=other)


@pytest.mark.parametrize(("content", "why"), [("not json", "is not a statistics file"),
                                              ('{"format": "other"}', "is not a statistics file"),
                                              ('{"format": "synap-verify statistics 1", "tables": {"a": 1}}',
                                               "is not a statistics file")])
def test_a_malformed_statistics_file_is_one_line_naming_the_fix(tmp_path: Path, content: str, why: str,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "stats.json"
    path.write_text(content)
    with pytest.raises(SynapError) as caught:
        load_stats(path)
    assert why in str(caught.value) and "synap-verify stats export" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_the_statistics_key_the_loaded_state(pg: Server, source: tuple[psycopg.Connection, Path]) -> None:
    """A state built from statistics is never taken (from the cache, or a server's earlier templates) for one
    built without them, from other statistics or at another factor."""
    _, path = source
    given = ({}, {"stats": str(path)}, {"stats": str(path), "stats_scale": "0.5"})
    assert len({Pipeline(Settings.resolve(g), pg).tag for g in given}) == 3
    keys = {loaded_inputs(Settings.resolve(given), LEGACY_SCHEMA)["stats"]
            for given in ({}, {"stats": str(path)}, {"stats": str(path), "stats_scale": "0.5"})}
    with_factor = {loaded_inputs(Settings.resolve({"stats": str(path), "stats_scale": f}), LEGACY_SCHEMA)["stats_scale"]
                   for f in ("1", "0.5")}
    assert len(keys) == 2 and len(with_factor) == 2


def test_unreachable_dsn_is_exit_2_and_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "stats.json"
    code = cli.main(["stats", "export", "--dsn", "postgresql://someone:secret@127.0.0.1:1/prod", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert err.count("\n") == 1 and "check the DSN" in err and "secret" not in err
    assert cli.main(["stats", "compare", "--source", str(tmp_path / "missing.json"), "--copy", str(out)]) == 2
    assert "synap-verify stats export" in capsys.readouterr().err


def test_generate_shapes_by_a_statistics_file_or_dsn(pg: Server, source: tuple[psycopg.Connection, Path],
                                                     tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The command end to end: a dump and statistics (a file, or a DSN) in, production's row counts times the
    factor out."""
    _, path = source
    dump = tmp_path / "shop.sql"
    dump.write_text(SCHEMA)
    assert cli.main(["generate", "--baseline", str(dump), "--stats", str(path), "--stats-scale", "0.5",
                     "--scale", "tiny"]) == 0
    out = capsys.readouterr().out
    assert "statistics: data shaped by the statistics of 2 tables, row counts production's x 0.5 (only reltuples " \
           "and pg_stats were read, never a row)" in out
    assert re.search(r"^customers\s+1,500$", out, re.M) and re.search(r"^orders\s+3,000$", out, re.M), out
    assert cli.main(["generate", "--baseline", str(dump), "--stats", pg.dsn("stats_source"), "--scale", "tiny"]) == 0
    assert re.search(r"^orders\s+6,000$", capsys.readouterr().out, re.M)  # read from the DSN: production's counts
    assert cli.main(["generate", "--baseline", str(dump), "--stats", str(tmp_path / "none.json")]) == 2
    assert "--synap-stats" in capsys.readouterr().err


def test_compare_command_passes_the_shaped_copy_and_fails_the_unshaped(
        pg: Server, source: tuple[psycopg.Connection, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, path = source
    workload = tmp_path / "workload.yaml"
    workload.write_text(yaml.safe_dump({"queries": {q.name: {"group": "shop", "sql": q.legacy, "params": "SELECT 1"}
                                                    for q in QUERIES}}))
    _copy(pg, "stats_cmp_shaped", load_stats(path))
    _copy(pg, "stats_cmp_unshaped", None)
    for name, code in (("stats_cmp_shaped", 0), ("stats_cmp_unshaped", 1)):
        assert cli.main(["stats", "compare", "--source", pg.dsn("stats_source"), "--copy", pg.dsn(name),
                         "--workload", str(workload)]) == code
        out = capsys.readouterr().out
        assert "2 comparable queries" in out, out
    assert "plan differs: orders_of_customer" in out or "plan differs: refunds" in out
