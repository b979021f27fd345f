"""Properties of the reference conversion code (synapscale/migrations/ops/), with generated values.

JSON texts from a strategy that produces what legacy ``json`` columns hold (duplicate keys, escapes,
NUL, lone surrogates, deep nesting, huge, precise and exponent numbers, empty containers, odd
whitespace) and naive timestamps around DST gaps and overlaps under random session TimeZones go into
a scratch legacy table, through ``ops.apply_json_and_time`` — the code every group revision runs —
inside a transaction that is rolled back after each example. Property: each document is equivalent
by meaning (:mod:`synap_verify.integrity.jsonsem`) or quarantined with its original text; each
instant is unchanged. A counterexample is shown as the json text or timestamp that broke it.

The properties call the reference's conversion function directly, so they verify the system under
test only when it is the reference: for other migrations (``--synap-alembic``) they skip and say so;
the integrity suite checks what those migrations did to the loaded data.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, create_engine
from sqlalchemy.pool import NullPool

from synap_verify import migrate
from synap_verify.datagen.values import ALL_JSON_CASES, DST_TIMESTAMPS
from synap_verify.integrity import jsonsem
from synap_verify.pipeline import Pipeline
from synap_verify.resources import REFERENCE_MIGRATIONS
from synap_verify.server import sqlalchemy_url
from synap_verify.settings import Settings
from synapscale.migrations import ops

SCRATCH = "property_scratch"
ZONES = ("UTC", "America/New_York", "Europe/Berlin", "America/Sao_Paulo", "Australia/Lord_Howe", "Asia/Kathmandu",
         "Pacific/Chatham", "America/St_Johns", "Etc/GMT+12", "Pacific/Kiritimati")
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# ---------------------------------------------------------------------------------------------------
# json text as legacy columns hold it: built as text, so duplicate keys, escapes and number spellings survive

space = st.sampled_from(("", "", " ", "\n\t", "  "))
escapes = st.sampled_from(("\\u0000", "\\ud800", "\\udfff", "\\ud83d\\ude00", "\\u00e9", "\\n", "\\\"", "\\\\",
                           "\\/", "\\t", "\\\\u0000"))
plain = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters='"\\'), max_size=8)
strings = st.lists(st.one_of(plain, escapes), max_size=4).map(lambda parts: '"' + "".join(parts) + '"')
numbers = st.one_of(
    st.integers(-(10**40), 10**40).map(str),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
    st.tuples(st.sampled_from(("1", "-2.5", "0", "-0", "9.99")), st.sampled_from(("e", "E", "e+", "e-", "E-")),
              st.sampled_from((0, 2, 308, 1000, 99999, 131072, 400000))).map(lambda t: f"{t[0]}{t[1]}{t[2]}"),
    st.sampled_from(("-0", "-0.0", "0.1000000000000000055511151231257827", "1e308", "123456789012345678901234567890")),
)
keys = st.one_of(st.sampled_from(('"a"', '"b"', '"a"', '"\\u0000"', '""')), strings)
scalars = st.one_of(strings, numbers, st.sampled_from(("true", "false", "null")))


def _containers(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    arrays = st.tuples(st.lists(children, max_size=4), space).map(lambda t: "[" + (t[1] + "," + t[1]).join(t[0]) + "]")
    members = st.lists(st.tuples(keys, space, children), max_size=4)
    objects = members.map(lambda ms: "{" + ",".join(f"{k}{s}:{s}{v}" for k, s, v in ms) + "}")
    return st.one_of(arrays, objects)


documents = st.one_of(
    st.recursive(scalars, _containers, max_leaves=12),
    st.tuples(st.integers(1, 80), scalars).map(lambda t: "[" * t[0] + t[1] + "]" * t[0]),  # deep nesting
    st.sampled_from(sorted(ALL_JSON_CASES.values())),
).filter(lambda text: _is_json(text))


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return False
    return True


naive = st.one_of(
    st.sampled_from(DST_TIMESTAMPS).map(datetime.fromisoformat),
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 12, 31)),
)

# ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scratch(synap_settings: Settings, request: pytest.FixtureRequest) -> Iterator[Connection]:
    """A schema clone with the reference foundation (quarantine table, json functions) and one scratch table.

    Skipped before any server starts when the system under test is not the reference.
    """
    reference = REFERENCE_MIGRATIONS
    if Path(migrate.script_directory(synap_settings.alembic).dir).resolve() != reference.resolve():
        pytest.skip(f"these properties exercise the reference's conversion code ({reference}), not the system "
                    f"under test ({synap_settings.alembic}); the integrity suite checks what its migrations did")
    synap_pipeline: Pipeline = request.getfixturevalue("synap_pipeline")
    if not synap_pipeline.server.disposable:
        pytest.skip("needs a disposable server (pass --synap-dsn-disposable)")
    db = synap_pipeline.clone("schema")
    migrate.upgrade(db.dsn, reference, ["foundation"])
    with db.connect() as conn:
        conn.execute(f"CREATE TABLE {ops.q(SCRATCH)} (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), doc json, "
                     "at timestamp without time zone)")
    engine = create_engine(sqlalchemy_url(db.dsn), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()
        db.drop()


def _convert(conn: Connection, zone: str, docs: Sequence[str | None], instants: Sequence[datetime | None]) -> list[tuple]:
    """Insert legacy rows, run the reference conversion in a session ``zone``, read the result, roll back."""
    raw = conn.connection.dbapi_connection
    assert raw is not None
    with conn.begin() as txn, Operations.context(MigrationContext.configure(conn)):
        cur = raw.cursor()
        cur.execute(f"SET LOCAL TimeZone = '{zone}'")
        cur.executemany(f"INSERT INTO {ops.q(SCRATCH)} (doc, at) VALUES (%s, %s)", list(zip(docs, instants, strict=True)))
        cur.execute(f"SELECT id, doc::text, extract(epoch FROM at) FROM {ops.q(SCRATCH)}")
        before = {r[0]: r[1:] for r in cur.fetchall()}
        ops.begin()
        try:
            ops.apply_json_and_time(ops.Table(SCRATCH, json=("doc",)))
        except psycopg.Error as exc:  # the migration would abort on these legacy rows: a failure, named
            raise AssertionError(f"the conversion failed: {str(exc).strip().splitlines()[0]}") from None
        cur.execute(f"SET LOCAL TimeZone = '{zone}'")  # read back under the caller's zone: an instant is an instant
        cur.execute(f"SELECT s.id, s.doc::text, extract(epoch FROM s.at), array_remove(array_agg(q.original_text), NULL) "
                    f"FROM {ops.q(SCRATCH)} s LEFT JOIN {ops.q('migration_quarantine')} q ON q.table_name = %s "
                    "AND q.primary_key = s.id::text AND q.column_name = 'doc' GROUP BY s.id, s.doc::text, s.at",
                    (SCRATCH,))
        rows = [(*before[r[0]], *r[1:]) for r in cur.fetchall()]
        txn.rollback()
    return rows


@PROPERTY
@given(docs=st.lists(st.one_of(documents, st.none()), min_size=1, max_size=6), zone=st.sampled_from(ZONES))
def test_json_becomes_equivalent_jsonb_or_is_quarantined(scratch: Connection, docs: list[str | None], zone: str) -> None:
    """json → jsonb keeps each document's meaning; one jsonb cannot hold is quarantined verbatim, never altered silently."""
    note(f"legacy json documents: {docs!r} (session TimeZone {zone})")
    for old, _, new, _, quarantined in _convert(scratch, zone, docs, [None] * len(docs)):
        note(f"legacy json {old!r} became jsonb {new!r}; quarantined: {quarantined!r}")
        assert jsonsem.equivalent(old, new) or old in quarantined, \
            f"json {old!r} became {new!r} with no quarantine entry holding the original"


@PROPERTY
@given(instants=st.lists(naive, min_size=1, max_size=6), zone=st.sampled_from(ZONES))
def test_naive_timestamps_keep_their_instant(scratch: Connection, instants: list[datetime], zone: str) -> None:
    """timestamp → timestamptz reads every legacy value as UTC, whatever the session TimeZone (DST gaps included)."""
    note(f"legacy naive timestamps: {[str(i) for i in instants]} (session TimeZone {zone})")
    for _, epoch_before, _, epoch_after, _ in _convert(scratch, zone, [None] * len(instants), instants):
        note(f"session TimeZone {zone}: epoch {epoch_before} became {epoch_after}")
        assert epoch_after == epoch_before, \
            f"under TimeZone {zone} the instant {datetime.fromtimestamp(float(epoch_before), UTC)} moved by " \
            f"{(float(epoch_after) - float(epoch_before)) / 3600:+g} h"
