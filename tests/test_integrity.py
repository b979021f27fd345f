"""The integrity checks themselves: JSON by meaning, the commands' exit codes, and seeded defects they must catch.

Each seeded defect (tests/seeded) is a copy of the reference migrations with one realistic bug; the
integrity suite runs on it in a pytest subprocess, exactly as a user would run it, and must fail with
a message that points at the bug.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from seeded import DEFECTS, Defect

from synap_verify import cli
from synap_verify.catalog import read_catalog
from synap_verify.contract import Contract
from synap_verify.integrity import equivalence, jsonsem, preflight
from synap_verify.pipeline import Pipeline
from synap_verify.resources import REFERENCE_MIGRATIONS, suites_dir
from synap_verify.server import Server
from synap_verify.server.templates import Database, build_template, clone
from synap_verify.suites.test_json_properties import documents, naive

ROOT = Path(__file__).resolve().parents[1]
SUITE = suites_dir() / "test_integrity.py"


@pytest.mark.parametrize(("old", "new"), [
    ('{"a":1,"a":2}', '{"a": 2}'),
    ('{"zeta":1,"alpha":2}', '{"alpha": 2, "zeta": 1}'),
    ('{"e":1E+2,"z":-0.0}', '{"e": 100, "z": 0}'),
    ('  [ 1 ,\t2 ]  ', "[1, 2]"),
    ('{"name":"caf\\u00e9"}', '{"name": "café"}'),
])
def test_json_equivalent_by_meaning(old: str, new: str) -> None:
    """Formatting, key order, number spelling and escapes are not differences; jsonb keeps the last duplicate."""
    assert jsonsem.equivalent(old, new)


@pytest.mark.parametrize(("old", "new"), [
    ('{"a":1,"a":2}', '{"a": 1}'),
    ('{"p":0.1000000000000000055511151231257827}', '{"p": 0.1}'),
    ('{"n":"before\\u0000after"}', '{"n": "beforeafter"}'),
    ("[1]", '"[1]"'),
    ("true", "1"),
])
def test_json_differences_that_are_losses(old: str, new: str) -> None:
    """Lost precision, a dropped NUL, a wrong duplicate or a changed type are differences."""
    assert not jsonsem.equivalent(old, new)


def test_duplicate_keys_are_counted() -> None:
    assert jsonsem.duplicate_keys('{"outer":{"k":"first","k":"second"},"outer":null}') == 2
    assert jsonsem.duplicate_keys("not json") == 0


def test_equivalence_needs_both_databases() -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["equivalence", "--before", "dbname=x"])
    assert exc.value.code == 2


def test_equivalence_unreachable_database_is_a_connection_error(pg: Server, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["equivalence", "--before", "host=/nonexistent dbname=x", "--after", pg.dsn("postgres")])
    assert code == 2
    assert "cannot connect to host=/nonexistent" in capsys.readouterr().err


def test_a_value_moved_to_another_column_or_to_null_changes_the_row_hash(pg: Server) -> None:
    """The row hash XORs one hash per column, each seeded by the column's position: swapping two columns' values,
    or a value becoming NULL or an empty text, is a different row. Seeded: one unseeded hash per column would call
    the swapped row equal."""
    rows = {"same": "'1', 'a', 'b'", "swapped": "'1', 'b', 'a'", "null": "'1', NULL, 'b'", "empty": "'1', '', 'b'"}
    relation = equivalence.Relation("g", "t", "", "", ("x", "y"))
    with psycopg.connect(pg.dsn("postgres")) as conn:
        sums = {name: equivalence._buckets(conn, f"SELECT * FROM (VALUES ({row})) v(k, x, y)", relation)
                for name, row in rows.items()}
        unseeded = {name: conn.execute(f"SELECT hashtextextended(k, 0) # hashtextextended(x, 0) # hashtextextended(y, 0) "
                                       f"FROM (VALUES ({row})) v(k, x, y)").fetchone() for name, row in rows.items()}
    assert len({str(v) for v in sums.values()}) == 4
    assert unseeded["same"] == unseeded["swapped"]  # what the seeds are for


@given(old=documents, new=documents, hours=st.integers(1, 30).flatmap(lambda h: st.sampled_from((h, -h))), instant=naive)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_equal_digests_mean_the_same_value(scan_conn: psycopg.Connection, old: str, new: str, hours: int,
                                           instant: datetime) -> None:
    """The scan sums column digests (:func:`equivalence.digest`), not rendered text: a legacy json text and a migrated
    jsonb value digest alike only when :mod:`jsonsem` calls them the same document, and always when the jsonb is the
    text's own conversion; a naive UTC timestamp and a timestamptz digest alike exactly when they are one instant.
    Documents that differ only in a number's spelling (1.0, 1.00) digest apart and are judged in Python.

    Seeded defects it fails on: digesting a document by ``jsonb_hash_extended`` (``""`` and ``[""]`` alike: a lost
    array level goes unseen), or by the json's own text (one document's two spellings apart: a false alarm for
    every row jsonb respells)."""
    texts: list[str] = []
    for text in (old, new):
        try:
            texts.append(scan_conn.execute("SELECT %s::jsonb::text", (text,)).fetchone()[0])  # type: ignore[index]
        except psycopg.DataError:
            assume(False)  # jsonb rejects it: the guard keeps it verbatim, judged in Python (tested above)
    # the json side digested as the scan first does, unguarded: a text holding \u0000 is kept verbatim (judged in Python)
    a, b, c = (equivalence.digest(name, own, other, 2, guarded=False) for name, own, other in
               (("a", "json", "jsonb"), ("b", "jsonb", "json"), ("c", "jsonb", "json")))
    [(same, respelled)] = scan_conn.execute(f"SELECT {a} = {b}, {a} = {c} FROM (SELECT %s::json AS a, %s::jsonb AS b, "
                                            "%s::jsonb AS c) t", (old, new, texts[0])).fetchall()
    assert respelled or "\\u0000" in old, f"{old!r} and its jsonb spelling {texts[0]!r} digest apart"
    assert not same or jsonsem.equivalent(old, texts[1]), f"{old!r} and {new!r} digest alike but mean different things"
    t, z = (equivalence.digest(name, own, other, 3) for name, own, other in
            (("t", "timestamp without time zone", "timestamp with time zone"),
             ("z", "timestamp with time zone", "timestamp without time zone")))
    same_instant = f"SELECT {t} = {z} FROM (SELECT %s::timestamp AS t, %s::timestamptz AS z) s"
    for shift, equal in ((0, True), (hours, False)):  # every example checks both: one instant, and one moved
        [(digested_alike,)] = scan_conn.execute(same_instant, (instant, (instant + timedelta(hours=shift)).replace(tzinfo=UTC)))
        assert digested_alike == equal, (instant, shift)


@pytest.fixture(scope="module")
def scan_conn(pg: Server) -> Iterator[psycopg.Connection]:
    """A session with the scan's settings (TimeZone UTC), read-only."""
    with equivalence.connect(pg.dsn("postgres")) as conn:
        yield conn


@contextmanager
def twins(pg: Server, name: str, ddl: str) -> Iterator[tuple[Database, Database]]:
    """Two clones of a database that ``ddl`` built once (a template): a comparison's before and after sides."""

    def fill(dsn: str) -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(ddl)

    build_template(pg, name, fill)
    before, after = clone(pg, name), clone(pg, name)
    try:
        yield before, after
    finally:
        before.drop()
        after.drop()


def test_json_is_cast_unguarded_first_and_a_rejected_value_rescans_its_range(pg: Server,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The scan casts json without the guard's regex (a NUL escape told apart by strpos); the page range holding a
    value jsonb still rejects (an exponent beyond numeric's range) is scanned again with the guard, the others keep
    the fast result. Two identical json tables compare clean (an escaped emoji, suspect to the guard, and a NUL
    included) and a document changed in another range is still found.

    Seeded defect: without the rescan the exponent's DataError makes the whole table a comparison that cannot run."""
    monkeypatch.setattr(equivalence, "SPLIT_PAGES", 8)

    ddl = ("CREATE SCHEMA synapscale_db; CREATE TABLE synapscale_db.t (id int PRIMARY KEY, doc json); "
           "INSERT INTO synapscale_db.t SELECT i, json_build_object('n', i, 's', md5(i::text)) "
           "FROM generate_series(1, 20000) i; "
           """UPDATE synapscale_db.t SET doc = '{"s": "\\u0000"}' WHERE id = 5; """
           """UPDATE synapscale_db.t SET doc = '{"n": 1e999999}' WHERE id = 7; """
           """UPDATE synapscale_db.t SET doc = '{"s": "\\ud83d\\ude00"}' WHERE id = 15000""")

    def query(guarded: bool) -> str:
        return f"SELECT id::text AS k, {equivalence.render('doc', 'json', 'json', guarded)} AS doc FROM synapscale_db.t"

    relation = equivalence.Relation("g", "t", query(True), query(True), ("doc",), frozenset({"doc"}),
                                    unguarded=(query(False), query(False)))
    with twins(pg, "json_ranges_template", ddl) as (before, after):
        # the fast query alone cannot read this table, for the exponent (the NUL, stored first, it reads)
        with equivalence.connect(before.dsn) as b, pytest.raises(psycopg.DataError, match="numeric"):
            b.execute(query(False)).fetchall()
        clean = equivalence.scan(before.dsn, after.dsn, [relation], jobs=2)
        with after.connect() as conn:
            conn.execute("""UPDATE synapscale_db.t SET doc = '{"n": 19990}' WHERE id = 19990""")
        changed = equivalence.scan(before.dsn, after.dsn, [relation], jobs=2)
        with equivalence.connect(before.dsn) as b, equivalence.connect(after.dsn) as a:
            outs = [equivalence.compare(b, a, relation, equivalence.Expectations(), scanned=s) for s in (*clean, *changed)]
    assert not isinstance(clean[0], psycopg.Error), clean[0]
    assert outs[0].findings == [] and outs[0].rows_before == outs[0].rows_after == 20000
    assert [f.rule for f in outs[1].findings] == ["EQ-VALUE"] and "19990" in outs[1].findings[0].message


@pytest.mark.parametrize("narrow_rows", [equivalence.NARROW_ROWS, 0], ids=["rows-read-while-hashed", "rows-read-by-key"])
def test_parallel_page_ranges_add_up_to_the_whole_table(pg: Server, monkeypatch: pytest.MonkeyPatch,
                                                        narrow_rows: int) -> None:
    """A table cut into page ranges over three connections gives the bucket sums of one whole scan, and the
    comparison still finds a row lost from the first range and a value changed in the last, whether the differing
    buckets' rows are read in the pass that hashes them or (more than NARROW_ROWS) read again by key.

    Seeded defect: a range bound that skips or repeats a page changes the sums (and hides or doubles rows)."""
    monkeypatch.setattr(equivalence, "SPLIT_PAGES", 8)
    monkeypatch.setattr(equivalence, "NARROW_ROWS", narrow_rows)
    query = "SELECT id::text AS k, v::text AS v FROM synapscale_db.t"

    ddl = ("CREATE SCHEMA synapscale_db; CREATE TABLE synapscale_db.t (id int PRIMARY KEY, v text); "
           "INSERT INTO synapscale_db.t SELECT i, md5(i::text) FROM generate_series(1, 20000) i")
    with twins(pg, "ranges_template", ddl) as (before, after):
        with after.connect() as conn:
            conn.execute("DELETE FROM synapscale_db.t WHERE id = 3; UPDATE synapscale_db.t SET v = 'x' WHERE id = 19990")
        relation = equivalence.Relation("g", "t", query, query, ("v",))
        assert len(list(equivalence._tasks(before.dsn, [relation], "before", jobs=3))) > 4
        [split] = equivalence.scan(before.dsn, after.dsn, [relation], jobs=3)
        with equivalence.connect(before.dsn) as b, equivalence.connect(after.dsn) as a:
            assert split == (equivalence._buckets(b, query, relation), equivalence._buckets(a, query, relation))
            out = equivalence.compare(b, a, relation, equivalence.Expectations(), scanned=split)
    messages = " | ".join(f.message for f in out.findings)
    assert out.rows_before == 20000 and out.rows_after == 19999
    assert "1 of 20000 rows of t are missing after the migration (keys 3)" in messages
    assert "t.v: 1 values changed" in messages and "19990" in messages


@pytest.mark.parametrize("shape", ["keys", "another-shape"])
def test_keys_the_migration_changed_are_compared_by_key_not_by_bucket(pg: Server, monkeypatch: pytest.MonkeyPatch,
                                                                       shape: str) -> None:
    """Rows the quarantine or the journal names are left out of the scan and read by key: no bucket differs for them
    (narrowing would read the table again on both sides), yet each is still compared row by row; a row lost that
    nothing names is narrowed as before, and its bucket's narrowing reads no row set aside. ``another-shape``: a
    journal key that is no integer names no row and is not set aside (its cast would fail the read by key).

    Seeded defects: the quarantined row 7 with another column changed too, the journaled row 9 deleted, and row 12
    deleted; the quarantined value of row 5 is explained and stays quiet."""
    query = "SELECT id::text AS k, v, w FROM synapscale_db.t"

    ddl = ("CREATE SCHEMA synapscale_db; CREATE TABLE synapscale_db.t (id int PRIMARY KEY, v text, w text); "
           "INSERT INTO synapscale_db.t SELECT i, md5(i::text), 'w' FROM generate_series(1, 20000) i")
    expected = equivalence.Expectations(
        quarantined={("t", "5", "v"): {_md5("5")}, ("t", "7", "v"): {_md5("7")}}, journaled={("t", "9", "v")})
    if shape == "another-shape":
        expected.journaled |= {("t", "a|b", "v"), ("t", "2147483648", "v"), ("t", "007", "v")}
    relation = equivalence._set_aside(equivalence.Relation("g", "t", query, query, ("v", "w"),
                                                           key=(("id", "integer"), ("id", "integer")), buckets=1),
                                      expected.keys())  # one bucket: narrowing row 12 reads every other row

    narrowing = equivalence._narrowed
    seen: list[str] = []  # the keys narrowing read

    def narrowed(*args: Any) -> equivalence.Keyed:
        found = narrowing(*args)
        seen.extend(found[0])
        return found

    monkeypatch.setattr(equivalence, "_narrowed", narrowed)
    with twins(pg, "aside_template", ddl) as (before, after):
        with after.connect() as conn:
            conn.execute("UPDATE synapscale_db.t SET v = 'new' WHERE id IN (5, 7); "
                         "UPDATE synapscale_db.t SET w = 'changed' WHERE id = 7; DELETE FROM synapscale_db.t WHERE id IN (9, 12)")
        [sides] = equivalence.scan(before.dsn, after.dsn, [relation], jobs=1)
        with equivalence.connect(before.dsn) as b, equivalence.connect(after.dsn) as a:
            out = equivalence.compare(b, a, relation, expected, scanned=sides)
    assert set(relation.aside) == {"5", "7", "9"}
    assert seen and not set(seen) & set(relation.aside), seen
    assert (out.rows_before, out.rows_after) == (20000, 19998)
    assert [(f.rule, f.column) for f in out.findings] == [("EQ-ROWS", None), ("EQ-VALUE", "w")], out.findings
    assert "(keys 12, 9)" in out.findings[0].message and "7: w → changed" in out.findings[1].message


def compared(pg: Server, name: str, table: str, query: str, change: str,
             expected: equivalence.Expectations | None = None) -> equivalence.Outcome:
    """The comparison of ``query`` (columns ``k`` and ``v``) between two clones of a template holding ``table``,
    the second one altered by ``change``; with ``expected``, the keys it names set aside (an integer ``id`` key)."""
    relation = equivalence.Relation("g", "t", query, query, ("v",))
    expected = expected or equivalence.Expectations()
    if expected.journaled:
        relation = equivalence._set_aside(dataclasses.replace(relation, key=(("id", "integer"),) * 2), expected.keys())
    with twins(pg, name, f"CREATE SCHEMA synapscale_db; {table}") as (before, after):
        with after.connect() as conn:
            conn.execute(change)
        with equivalence.connect(before.dsn) as b, equivalence.connect(after.dsn) as a:
            return equivalence.compare(b, a, relation, expected)


def test_a_copy_of_an_identical_row_lost_or_added_is_found(pg: Server) -> None:
    """A table without a key: a row's key is its own hash, so identical rows share one, and the comparison counts
    how many rows hold each key. Seeded defects: one of two identical rows deleted, a third copy of another added
    (the narrowing read them by key, once each, and saw nothing)."""
    out = compared(pg, "keyless_template", "CREATE TABLE synapscale_db.t (v text); "
                   "INSERT INTO synapscale_db.t SELECT 'v' || (i % 500) FROM generate_series(1, 1000) i",
                   "SELECT md5(row(v)::text) AS k, v FROM synapscale_db.t",
                   "DELETE FROM synapscale_db.t WHERE ctid = (SELECT min(ctid) FROM synapscale_db.t WHERE v = 'v7'); "
                   "INSERT INTO synapscale_db.t VALUES ('v9')")
    messages = [f.message for f in out.findings]
    assert (out.rows_before, out.rows_after) == (1000, 1000)
    assert len(messages) == 2, messages
    assert messages[0].startswith("1 of 1000 rows of t are missing after the migration"), messages
    assert messages[1].startswith("1 rows of t appeared that the legacy database did not have"), messages


@pytest.mark.parametrize("aside", [False, True], ids=["all-scanned", "keys-set-aside"])
def test_rows_without_a_key_are_a_finding_not_a_crash(pg: Server, aside: bool) -> None:
    """A migrated table whose key column lost NOT NULL can hold rows with no key: they fall in no bucket narrowing
    can read. Seeded defect: two such rows added (and a keyed row deleted, still found); before, their NULL row hash
    failed the bucket sums with a TypeError and the whole comparison ended in a traceback. ``keys-set-aside``: with
    a journaled key set aside, the scan's ``NOT IN`` (NULL for a NULL key) must not drop them either."""
    out = compared(pg, "null_keys_template", "CREATE TABLE synapscale_db.t (id int, v text); "
                   "INSERT INTO synapscale_db.t SELECT i, md5(i::text) FROM generate_series(1, 1000) i",
                   "SELECT id::text AS k, v FROM synapscale_db.t",
                   "INSERT INTO synapscale_db.t VALUES (NULL, 'x'), (NULL, 'y'); DELETE FROM synapscale_db.t WHERE id = 3",
                   equivalence.Expectations(journaled={("t", "5", "v")}) if aside else None)
    messages = [f.message for f in out.findings]
    assert (out.rows_before, out.rows_after) == (1000, 1001)
    assert any(m.startswith("1 of 1000 rows of t are missing after the migration (keys 3)") for m in messages), messages
    assert "2 rows of t have no key after the migration" in " | ".join(messages), messages


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def test_preflight_reports_the_legacy_fixture(capsys: pytest.CaptureFixture[str]) -> None:
    """The legacy fixture holds every kind of row the restructure must handle: preflight lists them, exit 1."""
    code = cli.main(["preflight", "--scale", "tiny", "--group", "rbac,workflows,workspaces"])
    out, err = capsys.readouterr()
    assert code == 1, err
    for rule in ("PF-PERMISSION", "PF-NULL", "PF-DRIFT", "PF-COUNTER", "PF-JSONB", "PF-DUPKEYS"):
        assert f"[{rule}]" in out, f"{rule} missing from:\n{out}"
    assert re.search(r"\d+ finding\(s\): [\d,]+ rows in \d+ table\(s\)", err)


@pytest.mark.parametrize("defect", DEFECTS, ids=[d.name for d in DEFECTS])
def test_seeded_defect_fails_the_suite(defect: Defect, pytester: pytest.Pytester, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The integrity suite on the defective migrations fails, and its message names the bug."""
    migrations = defect.apply(tmp_path)
    for name, value in defect.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SYNAPSCALE_ARCHIVE_DIR", str(tmp_path / "archive"))
    result = pytester.runpytest_subprocess(str(SUITE), "-p", "no:cacheprovider", "-q", f"--rootdir={ROOT}",
                                           f"--synap-alembic={migrations}", f"--synap-group={defect.group}",
                                           "--synap-scale=tiny", f"--synap-report={tmp_path / 'report.html'}")
    output = result.stdout.str()
    assert result.ret == 1, f"{defect.name}: the suite did not fail:\n{output[-3000:]}"
    assert re.search(rf"\[{re.escape(defect.rule)}\] .*{defect.expect}", output), \
        f"{defect.name}: no {defect.rule} failure points at the bug ({defect.expect}):\n" \
        + "\n".join(line for line in output.splitlines() if "EQ-" in line)[:4000]
    reported = json.loads((tmp_path / "report.json").read_text())["findings"].get("nothing-lost", [])
    assert defect.rule in {f["rule"] for f in reported}, f"{defect.name}: the report lacks the {defect.rule} finding"


def test_json_properties_skip_for_another_system_under_test(pytester: pytest.Pytester, tmp_path: Path) -> None:
    """The json properties exercise the reference's conversion code: for other migrations they say so and skip.

    The migrations are a copy of the reference's, so only the path tells them apart: that is the point,
    the suite cannot know which conversion code another system runs.
    """
    migrations = shutil.copytree(REFERENCE_MIGRATIONS, tmp_path / "migrations",
                                 ignore=shutil.ignore_patterns("__pycache__"))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", "-rs", f"--rootdir={ROOT}",
                                           "--synap-suites=json", f"--synap-alembic={migrations}",
                                           "--synap-group=analytics", "--synap-scale=tiny")
    output = result.stdout.str()
    result.assert_outcomes(skipped=2)
    assert f"the system under test ({migrations})" in output, output[-3000:]


@pytest.fixture(scope="module")
def empty_legacy(pipeline: Pipeline) -> Iterator[psycopg.Connection]:
    """The legacy schema with no row (the pipeline's schema state), dropped after the module."""
    db = pipeline.clone("schema")
    with psycopg.connect(db.dsn) as conn:
        yield conn
        conn.rollback()
    db.drop()


def test_preflight_reports_a_null_tenant(empty_legacy: psycopg.Connection, contract: Contract) -> None:
    """A contact source with no tenant (the legacy column is nullable, the target's is not) is PF-TENANT."""
    assert preflight.check(empty_legacy, contract, ["contacts"]) == []
    with empty_legacy.transaction(force_rollback=True):
        empty_legacy.execute("INSERT INTO synapscale_db.contact_sources (name) VALUES ('web')")
        found = preflight.check(empty_legacy, contract, ["contacts"])
    assert [(f.rule, f.table, f.actual) for f in found] == [("PF-TENANT", "contact_sources", "1")], found


def test_equivalence_reports_a_table_gone_without_archive(empty_legacy: psycopg.Connection, contract: Contract) -> None:
    catalog = read_catalog(empty_legacy)
    assert equivalence.plan(catalog, catalog, contract, ["contacts"], rollback=True)[1] == []
    gone = dataclasses.replace(catalog, tables={n: t for n, t in catalog.tables.items() if n != "contact_sources"})
    findings = equivalence.plan(catalog, gone, contract, ["contacts"], rollback=True)[1]
    assert [(f.rule, f.table) for f in findings] == [("EQ-TABLE", "contact_sources")], findings


def test_equivalence_reports_a_comparison_that_cannot_run(empty_legacy: psycopg.Connection) -> None:
    """A comparison query that fails (here: a column missing on one side) is EQ-ERROR, not a silent pass."""
    rows = "SELECT id::text AS k, {} FROM synapscale_db.contact_sources"
    good = equivalence.Relation("contacts", "contact_sources", rows.format("name"), rows.format("name"), ("name",))
    with empty_legacy.transaction(force_rollback=True):
        empty_legacy.execute("INSERT INTO synapscale_db.contact_sources (name) VALUES ('web')")
        assert equivalence.compare(empty_legacy, empty_legacy, good, equivalence.Expectations()).findings == []
    broken = dataclasses.replace(good, after_sql=rows.format("no_such_column"))
    with empty_legacy.transaction(force_rollback=True):
        findings = equivalence.compare(empty_legacy, empty_legacy, broken, equivalence.Expectations()).findings
    assert [f.rule for f in findings] == ["EQ-ERROR"] and "no_such_column" in findings[0].message, findings
