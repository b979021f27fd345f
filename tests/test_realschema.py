"""Any real schema in: dumps that use what they do not define, every CHECK shape the generator reads, the
server-validated fallback for the rest, and the ``generate`` command's exits on good and bad input."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from synap_verify.catalog import Catalog, read_catalog, user_schemas
from synap_verify.datagen import LoadReport, fill, fk_violations
from synap_verify.datagen.schema import load_schema_file
from synap_verify.errors import SynapError
from synap_verify.server import Server, embedded

ROOT = Path(__file__).resolve().parents[1]
# ../shared/corpus beside the checkout (CI), or beside the folder holding checkouts side by side
CORPUS = next((p for p in (ROOT.parent / "shared" / "corpus", ROOT.parent.parent / "shared" / "corpus") if p.is_dir()),
              ROOT.parent / "shared" / "corpus")
FOREIGN = Path(__file__).parent / "data" / "foreign_schema.sql"

# One table per CHECK shape the generator reads: each must be filled by the generator itself, never by
# the validated fallback (a shape it stopped reading would send its table there and fail the test).
SHAPES = """
CREATE SCHEMA gen;
CREATE TYPE gen.mood AS ENUM ('calm', 'busy', 'away');
CREATE DOMAIN gen.percent AS integer CHECK (VALUE BETWEEN 0 AND 100);
CREATE TABLE gen.parents (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL);
CREATE TABLE gen.others (id serial PRIMARY KEY, label text);
CREATE TABLE gen.in_list (id serial PRIMARY KEY, kind text NOT NULL CHECK (kind IN ('a', 'b', 'c')));
CREATE TABLE gen.any_array (id serial PRIMARY KEY,
    status varchar(10) NOT NULL CHECK (status = ANY (ARRAY['open'::varchar, 'shut'::varchar])));
CREATE TABLE gen.range_between (id serial PRIMARY KEY, qty integer NOT NULL CHECK (qty BETWEEN 5 AND 9));
CREATE TABLE gen.compare_constant (id serial PRIMARY KEY, price numeric(8, 2) NOT NULL CHECK (price > 100),
    units numeric NOT NULL CHECK (units >= (0)::numeric));
CREATE TABLE gen.lengths (id serial PRIMARY KEY, code varchar(40) NOT NULL CHECK (char_length(code) <= 3),
    description text CHECK (length(description) <= 8));
CREATE TABLE gen.regex (id serial PRIMARY KEY, slug text NOT NULL CHECK (slug ~ '^[a-z0-9_]{1,40}$'),
    code varchar(20) NOT NULL UNIQUE CHECK ((code)::text ~ '^[a-z0-9_]+$'));
CREATE TABLE gen.exactly_one (id serial PRIMARY KEY, parent_id bigint REFERENCES gen.parents (id),
    other_id integer REFERENCES gen.others (id), CHECK (num_nonnulls(parent_id, other_id) = 1));
CREATE TABLE gen.xor_pair (id serial PRIMARY KEY, parent_id bigint REFERENCES gen.parents (id),
    other_id integer REFERENCES gen.others (id), CHECK ((parent_id IS NOT NULL) <> (other_id IS NOT NULL)));
CREATE TABLE gen.nulls_together (id serial PRIMARY KEY, a_note text, b_note text,
    CHECK ((a_note IS NULL) = (b_note IS NULL)));
CREATE TABLE gen.column_order (id serial PRIMARY KEY, starts_at timestamptz NOT NULL, ends_at timestamptz,
    low_mark integer NOT NULL, high_mark integer NOT NULL,
    CHECK (ends_at > starts_at), CHECK (ends_at IS NULL OR starts_at <= ends_at), CHECK (low_mark <= high_mark));
CREATE TABLE gen.json_structure (id serial PRIMARY KEY, definition jsonb NOT NULL
    CHECK (definition ? 'nodes' AND jsonb_typeof(definition -> 'nodes') = 'array'),
    meta jsonb CHECK (jsonb_typeof(meta) = 'object'));
CREATE TABLE gen.enum_domain (id serial PRIMARY KEY, mood gen.mood NOT NULL, pct gen.percent NOT NULL);
CREATE TABLE gen.arrays_ranges (id serial PRIMARY KEY, tags text[] NOT NULL, counts integer[],
    during tstzrange NOT NULL, span int4range NOT NULL, days daterange);
CREATE TABLE gen.self_ref (id serial PRIMARY KEY, parent_id integer REFERENCES gen.self_ref (id));
CREATE TABLE gen.cycle_a (id serial PRIMARY KEY, b_id integer);
CREATE TABLE gen.cycle_b (id serial PRIMARY KEY, a_id integer NOT NULL REFERENCES gen.cycle_a (id));
ALTER TABLE gen.cycle_a ADD FOREIGN KEY (b_id) REFERENCES gen.cycle_b (id);
CREATE TABLE gen.partial_unique (id serial PRIMARY KEY, parent_id bigint NOT NULL REFERENCES gen.parents (id),
    is_default boolean NOT NULL);
CREATE UNIQUE INDEX ON gen.partial_unique (parent_id) WHERE is_default;
"""
SHAPE_TABLES = ["in_list", "any_array", "range_between", "compare_constant", "lengths", "regex", "exactly_one",
                "xor_pair", "nulls_together", "column_order", "json_structure", "enum_domain", "arrays_ranges",
                "self_ref", "cycle_a", "cycle_b", "partial_unique"]

# The dump's own machinery: a trigger, a partitioned table whose partitions cover only part of the
# generated time span, identity and generated columns, an exclusion constraint, and a CHECK no pattern reads.
MACHINERY = """
CREATE EXTENSION IF NOT EXISTS btree_gist;
CREATE SCHEMA m;
CREATE FUNCTION m.touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.note := 'set by the trigger'; RETURN NEW; END $$;
CREATE TABLE m.items (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, name text NOT NULL,
    name_length integer GENERATED ALWAYS AS (length(name)) STORED, note text);
CREATE TRIGGER items_touch BEFORE INSERT ON m.items FOR EACH ROW EXECUTE FUNCTION m.touch();
CREATE TABLE m.events (id bigint NOT NULL, created_at timestamp NOT NULL, payload jsonb,
    PRIMARY KEY (id, created_at)) PARTITION BY RANGE (created_at);
CREATE TABLE m.events_2023 PARTITION OF m.events FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
CREATE TABLE m.events_2024 PARTITION OF m.events FOR VALUES FROM ('2024-01-01') TO ('2024-07-01');
CREATE TABLE m.bookings (id serial PRIMARY KEY, room integer NOT NULL CHECK (room BETWEEN 1 AND 3),
    during tsrange NOT NULL, EXCLUDE USING gist (room WITH =, during WITH &&));
CREATE TABLE m.unreadable (id serial PRIMARY KEY, name text NOT NULL, CHECK (md5(name) < '8'));
"""


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    server = embedded.start()
    yield server
    server.stop()


def _load(server: Server, db: str, text: str, folder: Path, **options: object) -> tuple[str, list[object]]:
    path = folder / f"{db}.sql"
    path.write_text(text)
    server.connect().execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
    return server.dsn(db), list(load_schema_file(server.dsn(db), path, **options))  # type: ignore[arg-type]


def _fill(dsn: str, scale: str = "tiny") -> tuple[psycopg.Connection, Catalog, LoadReport]:
    conn = psycopg.connect(dsn, autocommit=True)
    catalog = read_catalog(conn, user_schemas(conn))
    return conn, catalog, fill(dsn, catalog, scale, 11)


@pytest.fixture(scope="module")
def shapes(server: Server, tmp_path_factory: pytest.TempPathFactory) -> tuple[psycopg.Connection, Catalog, LoadReport]:
    dsn, _ = _load(server, "shapes", SHAPES, tmp_path_factory.mktemp("shapes"))
    return _fill(dsn)


@pytest.mark.parametrize("table", SHAPE_TABLES)
def test_each_check_shape_is_met_by_the_generator_itself(
        shapes: tuple[psycopg.Connection, Catalog, LoadReport], table: str) -> None:
    conn, catalog, report = shapes
    assert table not in report.fallback, report.fallback[table].describe()
    assert report.rows[table] > 0
    assert fk_violations(conn, catalog) == []


def test_the_shapes_are_met_with_varied_values_not_by_leaving_columns_empty(
        shapes: tuple[psycopg.Connection, Catalog, LoadReport]) -> None:
    conn = shapes[0]

    def one(query: str) -> object:
        return conn.execute(query).fetchone()[0]  # type: ignore[index]

    assert one("SELECT count(parent_id) > 0 AND count(other_id) > 0 FROM gen.exactly_one")
    assert one("SELECT count(parent_id) > 0 AND count(other_id) > 0 FROM gen.xor_pair")
    assert one("SELECT count(a_note) > 0 AND count(*) > count(a_note) FROM gen.nulls_together")
    assert one("SELECT count(ends_at) > 0 FROM gen.column_order")
    assert one("SELECT count(DISTINCT low_mark) > 1 FROM gen.column_order")
    assert one("SELECT count(DISTINCT jsonb_array_length(definition -> 'nodes')) > 1 FROM gen.json_structure")
    assert one("SELECT count(DISTINCT slug) > 1 FROM gen.regex")
    assert one("SELECT count(*) FILTER (WHERE NOT isempty(during)) > 0 FROM gen.arrays_ranges")
    assert one("SELECT count(parent_id) > 0 FROM gen.self_ref")
    assert one("SELECT count(b_id) > 0 FROM gen.cycle_a")  # the cycle's FK is filled, not left NULL
    assert one("SELECT count(DISTINCT pct) > 1 FROM gen.enum_domain")


def test_the_dumps_machinery_loads_and_fills_and_the_fallback_meets_what_no_pattern_reads(
        server: Server, tmp_path: Path) -> None:
    dsn, left = _load(server, "machinery", MACHINERY, tmp_path)
    assert left == []
    conn, catalog, report = _fill(dsn)
    assert fk_violations(conn, catalog) == []
    assert report.unmade == 0, report.constraint_report()
    assert "unreadable" in report.fallback and "unreadable_name_check" in report.fallback["unreadable"].refused
    assert "events" in report.fallback  # rows outside every partition were drawn again
    assert "partition bounds" in report.fallback["events"].refused
    leaves = conn.execute("SELECT (SELECT count(*) FROM m.events_2023) + (SELECT count(*) FROM m.events_2024)")
    assert leaves.fetchone()[0] == report.rows["events"] > 0  # type: ignore[index]
    assert conn.execute("SELECT count(*) FROM m.items WHERE note = 'set by the trigger'").fetchone()[0] == 0  # type: ignore[index]
    assert conn.execute("SELECT bool_and(name_length = length(name)) FROM m.items").fetchone()[0]  # type: ignore[index]
    assert report.rows["bookings"] == 12 and "bookings" in report.fallback  # overlaps drawn again


def test_a_check_nothing_can_meet_is_reported_as_rows_not_made(server: Server, tmp_path: Path) -> None:
    dsn, _ = _load(server, "impossible", "CREATE TABLE t (id serial PRIMARY KEY, n int NOT NULL CHECK (n < 0 AND n > 0));"
                                         "CREATE TABLE fine (id serial PRIMARY KEY);", tmp_path)
    _, _, report = _fill(dsn)
    assert report.rows["t"] == 0 and report.rows["fine"] > 0
    assert report.unmade == report.fallback["t"].wanted > 0
    assert "t_n_check" in report.constraint_report()[0]


MISSING_FUNCTION = """CREATE TABLE docs (id serial PRIMARY KEY, tenant_id integer NOT NULL);
ALTER TABLE docs ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_docs ON docs USING (tenant_id = public.current_tenant_id());
CREATE TABLE notes (id serial PRIMARY KEY, body text);
"""
PRELUDE = "CREATE FUNCTION public.current_tenant_id() RETURNS integer LANGUAGE sql AS $$ SELECT 1 $$;\n"


def test_a_missing_function_is_one_line_with_the_ways_out(server: Server, tmp_path: Path) -> None:
    with pytest.raises(SynapError) as caught:
        _load(server, "nofunc", MISSING_FUNCTION, tmp_path)
    message = str(caught.value)
    assert message.startswith("nofunc.sql:3: ERROR: function public.current_tenant_id() does not exist")
    assert "--synap-baseline-prelude" in message and "--synap-baseline-skip-missing" in message


def test_a_prelude_defines_what_the_dump_uses(server: Server, tmp_path: Path) -> None:
    prelude = tmp_path / "prelude.sql"
    prelude.write_text(PRELUDE)
    dsn, left = _load(server, "withprelude", MISSING_FUNCTION, tmp_path, prelude=prelude)
    assert left == []
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM pg_policy").fetchone()[0] == 1  # type: ignore[index]


def test_skip_missing_loads_the_rest_and_lists_exactly_what_was_left_out(server: Server, tmp_path: Path) -> None:
    dsn, left = _load(server, "skipfunc", MISSING_FUNCTION, tmp_path, skip_missing=True)
    assert [str(x) for x in left] == [
        "skipfunc.sql:3: CREATE POLICY tenant_docs ON docs USING (tenant_id = public.current_tenant_id()); "
        "-- function public.current_tenant_id() does not exist"]
    _, _, report = _fill(dsn)
    assert report.rows["docs"] > 0 and report.rows["notes"] > 0


MISSING_EXTENSION = """CREATE EXTENSION IF NOT EXISTS postgis WITH SCHEMA public;
CREATE TABLE zones (id serial PRIMARY KEY, area public.geometry);
CREATE INDEX zones_area ON zones USING gist (area);
CREATE TABLE places (id serial PRIMARY KEY, name text NOT NULL);
SET made_up_timeout = 0;
"""


def test_a_missing_extension_names_it_and_the_backends_that_may_have_it(server: Server, tmp_path: Path) -> None:
    with pytest.raises(SynapError) as caught:
        _load(server, "noext", MISSING_EXTENSION, tmp_path)
    message = str(caught.value)
    assert message.startswith('noext.sql:1: ERROR: extension "postgis" is not available')
    assert "--synap-backend=system|docker|dsn" in message and "--synap-baseline-skip-missing" in message


def test_skip_missing_leaves_out_the_extension_and_what_depends_on_it(server: Server, tmp_path: Path) -> None:
    dsn, left = _load(server, "skipext", MISSING_EXTENSION, tmp_path, skip_missing=True)
    where = [str(x).split(" -- ")[0] for x in left]
    assert where == ["skipext.sql:5: SET made_up_timeout = 0;",
                     "skipext.sql:1: CREATE EXTENSION IF NOT EXISTS postgis WITH SCHEMA public;",
                     "skipext.sql:2: CREATE TABLE zones (id serial PRIMARY KEY, area public.geometry);",
                     "skipext.sql:3: CREATE INDEX zones_area ON zones USING gist (area);"]
    assert "newer than PostgreSQL" in str(left[0])
    _, catalog, report = _fill(dsn)
    assert set(catalog.tables) == {"places"} and report.rows["places"] > 0


def test_an_error_that_is_not_a_missing_object_still_stops_skip_missing(server: Server, tmp_path: Path) -> None:
    with pytest.raises(SynapError, match=r"^broken\.sql:2: ERROR: syntax error"):
        _load(server, "broken", "CREATE TABLE a (id int);\nCREATE TABLE b (id int,);\n", tmp_path, skip_missing=True)


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"the corpus of real dumps is not at {CORPUS}")
def test_a_real_dump_loads_and_fills_at_tiny(server: Server, tmp_path: Path) -> None:
    dump = CORPUS / "openstreetmap-website" / "structure.sql"
    dsn, left = _load(server, "osm", dump.read_text(), tmp_path, skip_missing=True)
    assert any("CREATE TABLE public.moderation_zones" in str(x) for x in left)
    conn, catalog, report = _fill(dsn)
    assert fk_violations(conn, catalog) == [] and report.unmade == 0
    assert all(report.rows.values()), [t for t, n in report.rows.items() if not n]


# ------------------------------------------------------------------------------------- the command

def _generate(*argv: str, tmpdir: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **({"TMPDIR": tmpdir} if tmpdir else {})}
    return subprocess.run([sys.executable, "-m", "synap_verify.cli", "generate", "--scale", "tiny", *argv],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)


def test_generate_fills_a_foreign_schema_and_exits_0() -> None:
    done = _generate("--baseline", str(FOREIGN))
    assert done.returncode == 0, done.stderr
    assert "6/6 tables filled" in done.stdout and "0 constraint violations" in done.stdout


def test_generate_exits_1_when_rows_cannot_be_made(tmp_path: Path) -> None:
    path = tmp_path / "impossible.sql"
    path.write_text("CREATE TABLE t (id serial PRIMARY KEY, n int NOT NULL CHECK (n < 0 AND n > 0));\n")
    done = _generate("--baseline", str(path))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "t: 0/12 rows by the validated fallback; t_n_check" in done.stdout


@pytest.mark.parametrize("case", ["archive", "text", "dsn", "extension"])
def test_generate_bad_input_is_one_line_exit_2_and_nothing_left_behind(case: str, tmp_path: Path) -> None:
    path = tmp_path / "input.sql"
    baseline = str(path)
    if case == "archive":
        path.write_bytes(b"PGDMP\x01\x0e\x00\x04\x08\x01\x01" + bytes(64))
        expect = "input.sql is a pg_dump archive (custom/tar format), not SQL: pg_restore --schema-only"
    elif case == "text":
        path.write_text("# Release notes\n\nNothing to see here.\n")
        expect = "input.sql:1: ERROR: syntax error at or near \"#\""
    elif case == "dsn":
        baseline = "postgresql://ops:T0pS3cret@127.0.0.1:9/prod"
        expect = "cannot dump the baseline schema of ops@127.0.0.1:9/prod"
    else:
        path.write_text(MISSING_EXTENSION)
        expect = 'input.sql:1: ERROR: extension "postgis" is not available'
    private = tempfile.mkdtemp(prefix="sv-")  # short: the server's socket lives in its data folder
    done = _generate("--baseline", baseline, tmpdir=private)
    assert done.returncode == 2
    progress = ("synap-verify: embedded PostgreSQL", "synap-verify: taking the baseline schema")
    errors = [line for line in done.stderr.splitlines() if not line.startswith(progress)]
    assert len(errors) == 1 and errors[0].startswith(f"synap-verify: {expect}"), done.stderr
    assert "T0pS3cret" not in done.stdout + done.stderr and "Traceback" not in done.stderr
    assert list(Path(private).iterdir()) == []  # no server folder, dump copy or temporary file remains
    Path(private).rmdir()
