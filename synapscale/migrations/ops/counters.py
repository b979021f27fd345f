"""G8 counters: part of the restructure's shared mechanics (see the package docstring)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import replace
from functools import partial

from synapscale.migrations.ops.declarations import DEFAULT_RECOUNT_BATCH, Counter
from synapscale.migrations.ops.plumbing import exists_table, lit, q, quarantine, run, scalar, schema, step


def counter_trigger(c: Counter) -> str:
    return f"{c.child}_sync_{c.parent}_counters"[:63]


def _set_clause(c: Counter) -> str:
    return ", ".join(f"{col} = (SELECT {expr} FROM {q(c.child)} c WHERE c.{c.fk} = p.id)" for col, expr in c.assignments)


def counter_function(c: Counter) -> str:
    """The counter trigger's own function, named like its trigger."""
    return f"{schema()}.{counter_trigger(c)}"


def _is_count(expr: str) -> bool:
    return re.fullmatch(r"count\(\s*\*\s*\)", expr.strip(), re.IGNORECASE) is not None


def _counter_update(c: Counter, ids: str, delta: str | None, indent: str) -> str:
    """Statements changing the parents ``ids``: ``count(*)`` columns by ``delta``, the others recomputed.

    A recomputation first locks the parents, then counts in a statement of its own: under READ
    COMMITTED that statement's snapshot is taken after the lock, so it sees every child a concurrent
    writer committed before releasing the parent.
    """
    exact = replace(c, assignments=tuple((col, e) for col, e in c.assignments if not _is_count(e)))
    sets = [f"{col} = coalesce(p.{col}, 0) {delta}" for col, e in c.assignments if delta and _is_count(e)]
    if exact.assignments:
        sets.append(_set_clause(exact))
    if not sets:
        return f"{indent}NULL;\n"
    lock = f"{indent}PERFORM FROM {q(c.parent)} p WHERE p.id IN ({ids}) ORDER BY p.id FOR NO KEY UPDATE;\n"
    return (lock if exact.assignments else "") + f"{indent}UPDATE {q(c.parent)} p SET {', '.join(sets)} WHERE p.id IN ({ids});\n"


def counter_function_sql(c: Counter) -> str:
    """One counter trigger's function: static SQL, each write touching only its own parent row(s).

    ``count(*)`` columns move by +1 on insert, -1 on delete, -1/+1 when the row changes parent (a NULL
    parent counts for nothing): no recount of the parent's children, and two concurrent inserts
    serialise on the parent row instead of each counting without the other. Other aggregates (avg,
    sum) are recomputed for the parents concerned only, and only when the foreign key or a watched
    column changed value. SECURITY DEFINER: a public parent may belong to another tenant (RLS would
    hide it from the caller); every name is schema-qualified and search_path is pinned.
    """
    fk, i2, i3 = c.fk, " " * 8, " " * 12
    watched = [w for w in c.watch if w != fk]
    body = (f"    IF TG_OP = 'INSERT' THEN\n{i2}IF NEW.{fk} IS NOT NULL THEN\n"
            f"{_counter_update(c, f'NEW.{fk}', '+ 1', i3)}{i2}END IF;\n"
            f"    ELSIF TG_OP = 'DELETE' THEN\n{i2}IF OLD.{fk} IS NOT NULL THEN\n"
            f"{_counter_update(c, f'OLD.{fk}', '- 1', i3)}{i2}END IF;\n"
            f"    ELSIF NEW.{fk} IS DISTINCT FROM OLD.{fk} THEN\n"
            f"{_counter_update(c, f'OLD.{fk}, NEW.{fk}', f'+ CASE WHEN p.id = NEW.{fk} THEN 1 ELSE -1 END', i2)}")
    if watched:
        new, old = (", ".join(f"{side}.{w}" for w in watched) for side in ("NEW", "OLD"))
        body += f"    ELSIF ROW({new}) IS DISTINCT FROM ROW({old}) THEN\n{_counter_update(c, f'NEW.{fk}', None, i2)}"
    return (f"CREATE OR REPLACE FUNCTION {counter_function(c)}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER "
            f"SET search_path = pg_catalog AS $$\nBEGIN\n{body}    END IF;\n    RETURN NULL;\nEND $$")


def apply_counters(counters: Iterable[Counter]) -> None:
    """Keep every counter in sync with a trigger, then recompute it once (drift reported as 'counter_drift').

    Trigger first, recount after, so no child write falls between the two. The recount goes through
    the parents in keyset batches of :func:`recount_batch` ids, each batch its own short transaction
    (report + correction, atomic per batch) holding row locks on that batch's parents only.
    """
    for c in counters:
        name = counter_trigger(c)
        watched = ", ".join(dict.fromkeys((c.fk, *c.watch)))
        step("; ".join((
            counter_function_sql(c), f"DROP TRIGGER IF EXISTS {name} ON {q(c.child)}",
            f"CREATE TRIGGER {name} AFTER INSERT OR DELETE OR UPDATE OF {watched} ON {q(c.child)} FOR EACH ROW "
            f"EXECUTE FUNCTION {counter_function(c)}()")),
             c.child, mode="SHARE ROW EXCLUSIVE")
        for col, expr in c.assignments:
            calc = f"(SELECT {expr} FROM {q(c.child)} c WHERE c.{c.fk} = p.id)"
            for batch in id_batches(c.parent, recount_batch()):
                step(partial(_recount, c, col, calc, batch))


def recount_batch() -> int:
    return max(1, int(os.environ.get("SYNAPSCALE_RECOUNT_BATCH", DEFAULT_RECOUNT_BATCH)))


def id_batches(table: str, size: int) -> Iterator[str]:
    """Predicates on ``p.id`` covering ``table`` in id order, ``size`` ids each (keyset: each bound read as it is reached).

    A parent inserted behind the keyset is new: its counters start at its (zero) children and the
    trigger keeps them from then on.
    """
    after = "true"
    while True:
        hi = scalar(f"SELECT id::text FROM (SELECT p.id FROM {q(table)} p WHERE {after} ORDER BY p.id LIMIT %(n)s) s "
                    "ORDER BY id DESC LIMIT 1", {"n": size})
        if hi is None:
            return
        yield f"{after} AND p.id <= {lit(hi)}"
        after = f"p.id > {lit(hi)}"


def _recount(c: Counter, col: str, calc: str, batch: str) -> None:
    """Report one batch of parents' drifted values and correct them, atomically.

    The batch's parent rows are locked first (FOR NO KEY UPDATE: FK checks of child inserts still
    pass), so the counts below are read after every child write that already updated one of them
    committed, and a child write still to come recounts its parent after this batch commits.
    """
    run(f"SELECT count(*) FROM (SELECT 1 FROM {q(c.parent)} p WHERE {batch} ORDER BY p.id FOR NO KEY UPDATE) s")
    quarantine(c.parent, col, "counter_drift", f"SELECT p.id, json_build_object('stored', p.{col}, 'counted', {calc})::text "
                                               f"FROM {q(c.parent)} p WHERE ({batch}) AND p.{col} IS DISTINCT FROM {calc}")
    run(f"UPDATE {q(c.parent)} p SET {col} = {calc} WHERE ({batch}) AND p.{col} IS DISTINCT FROM {calc}")


def revert_counters(counters: Iterable[Counter]) -> None:
    for c in counters:
        if exists_table(c.child):
            run(f"DROP TRIGGER IF EXISTS {counter_trigger(c)} ON {q(c.child)}")
        run(f"DROP FUNCTION IF EXISTS {counter_function(c)}()")
