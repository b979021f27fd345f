"""G4 foreign keys: part of the restructure's shared mechanics (see the package docstring)."""

from __future__ import annotations

from functools import partial

from synapscale.migrations.ops.declarations import ACTION_CODES, LEGACY_ACTIONS, Fk, Table
from synapscale.migrations.ops.plumbing import q, run, step


def fk_name(table: str, column: str) -> str:
    return f"{table}_{column}_fkey"[:63]


def apply_fks(t: Table) -> None:
    """Per FK: drop every legacy constraint on the column (duplicates collapse) and add one with its action.

    Drop + ``ADD ... NOT VALID`` in one short transaction that locks the table, then its parent
    (dropping an FK takes ACCESS EXCLUSIVE on both, no scan); ``VALIDATE`` in a transaction of its
    own, which takes only SHARE UPDATE EXCLUSIVE / ROW SHARE (data are unchanged, so validation
    cannot fail on a legacy-valid FK). A constraint already in its target shape is left alone.
    """
    for fk in t.fks:
        name = fk_name(t.name, fk.column)
        if step(partial(_swap_fk, t, fk, name), t.name, fk.ref):
            step(f'ALTER TABLE {q(t.name)} VALIDATE CONSTRAINT "{name}"')


def _swap_fk(t: Table, fk: Fk, name: str) -> bool:
    """The constraint in its target shape, ``NOT VALID`` if it was not already: whether it is left to validate."""
    have = {n: (action, valid) for n, action, valid in run(
        "SELECT conname, confdeltype::text, convalidated FROM pg_constraint WHERE conrelid = %(t)s::regclass "
        "AND contype = 'f'", {"t": q(t.name)})}
    done = name in have and have[name][0] == ACTION_CODES[fk.on_delete]
    names = [item.split(":")[0] for item in fk.legacy.split()]
    if name not in names and name in have and not done:
        names.append(name)
    changes = [f'DROP CONSTRAINT IF EXISTS "{n}"' for n in names if n in have and not (n == name and done)]
    if not done:
        changes.append(f'ADD CONSTRAINT "{name}" FOREIGN KEY ({fk.column}) REFERENCES {q(fk.ref)} (id) '
                       f"ON DELETE {fk.on_delete} NOT VALID")
    if changes:
        run(f"ALTER TABLE {q(t.name)} " + ", ".join(changes))
    return not done or not have[name][1]


def revert_fks(t: Table) -> None:
    """The legacy constraints, duplicates and actions included: one statement per FK."""
    for fk in t.fks:
        legacy = [item.split(":") for item in fk.legacy.split()]
        run(f'ALTER TABLE {q(t.name)} DROP CONSTRAINT IF EXISTS "{fk_name(t.name, fk.column)}"'
            + "".join(f', ADD CONSTRAINT "{name}" FOREIGN KEY ({fk.column}) REFERENCES {q(fk.ref)} (id) '
                      f"ON DELETE {LEGACY_ACTIONS[code]}" for name, code in legacy))
