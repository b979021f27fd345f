"""The migration stage: run a system's Alembic revisions step by step and record what each step did.

Uses Alembic's API in-process (no subprocess): the harness opens the connection and hands it to the
migration environment through ``config.attributes["connection"]``, and runs the user's ``env.py`` with
one :class:`ScriptDirectory` per content of the migrations folder (as pytest-alembic's executor does):
Alembic's commands read and compile every revision file again on each call. While a step runs, a second
connection samples ``pg_locks`` so each step reports the strongest lock it held on every relation and
for how long it was seen holding it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import RevisionStep
from alembic.script import Script, ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from synap_verify.errors import SynapError
from synap_verify.groups import SCHEMA
from synap_verify.server import sqlalchemy_url

LOCK_STRENGTH = ("AccessShareLock", "RowShareLock", "RowExclusiveLock", "ShareUpdateExclusiveLock", "ShareLock",
                 "ShareRowExclusiveLock", "ExclusiveLock", "AccessExclusiveLock")


@dataclass
class LockSeen:
    """The strongest lock a step was seen holding on one relation, and for how long."""

    relation: str
    mode: str
    seconds: float


@dataclass
class Step:
    """One revision applied (or reverted)."""

    revision: str
    direction: str
    doc: str
    seconds: float
    locks: list[LockSeen] = field(default_factory=list)
    rows_touched: int = 0  # tuples inserted + updated + deleted, from pg_stat_user_tables deltas
    busiest: str | None = None  # the table with the most of them

    def longest_exclusive(self) -> LockSeen | None:
        held = [lk for lk in self.locks if lk.mode == "AccessExclusiveLock"]
        return max(held, key=lambda lk: lk.seconds, default=None)


def alembic_config(location: Path) -> Config:
    """An Alembic Config for an ``alembic.ini`` file or a script folder."""
    if location.is_file():
        cfg = Config(str(location))
        script_location = cfg.get_main_option("script_location")
        if not script_location:
            raise SynapError(f"{location} has no script_location: point --synap-alembic at the migrations folder")
    elif (location / "env.py").exists():
        cfg = Config()
        cfg.set_main_option("script_location", str(location))
    else:
        raise SynapError(f"{location} is neither an alembic.ini nor a folder with env.py (--synap-alembic)")
    return cfg


# (script folder, its *.py files' names, sizes and mtimes) -> the ScriptDirectory that read them
_READ: dict[tuple[str, tuple[tuple[str, int, int], ...]], ScriptDirectory] = {}


def script_directory(location: Path) -> ScriptDirectory:
    """The migrations of ``location``, read once per content of their folder: building a revision map imports every
    revision file (35 ms for the reference's 18, with no bytecode written); a run asks for it at every step. A file
    added, removed or rewritten in the folder (revisions, ``env.py``, helpers) reads them again."""
    try:
        scripts = ScriptDirectory.from_config(alembic_config(location))
    except CommandError as exc:
        raise SynapError(f"cannot read migrations in {location}: {exc}") from None
    folder = Path(scripts.dir).resolve()
    files = tuple(sorted((str(f.relative_to(folder)), st.st_size, st.st_mtime_ns)
                         for f in folder.rglob("*.py") for st in (f.stat(),)))
    return _READ.setdefault((str(folder), files), scripts)


def script_folder(location: Path) -> Path:
    """The folder holding ``env.py`` and the revisions, for an ``alembic.ini`` or the folder itself."""
    return Path(script_directory(location).dir)


def single_head(location: Path) -> str:
    """The one head revision; two heads is a broken history, named with its fix."""
    heads = script_directory(location).get_heads()
    if len(heads) != 1:
        raise SynapError(f"{location} has {len(heads)} heads ({', '.join(sorted(heads))}): "
                         "join them with `alembic merge heads` so the restructure has one end state")
    return heads[0]


def group_target(location: Path, groups: Iterable[str], every_group: bool) -> list[str]:
    """Alembic targets for the selected groups: the revision each group's branch label names.

    A bare label (``analytics``) means the newest revision that carries it *before* the merge that
    joins the branches; ``analytics@head`` would resolve to that merge and migrate every group. With
    every group selected (or a history without group labels) the target is the single head.
    """
    head = single_head(location)
    if every_group:
        return [head]
    scripts = script_directory(location)
    labels = {label for rev in scripts.walk_revisions() for label in rev.branch_labels}
    wanted = list(groups)
    if not all(g in labels for g in wanted):
        return [head]
    return wanted


def stops_before_head(location: Path, groups: Iterable[str], every_group: bool) -> bool:
    """Whether the selected groups' targets stop before the single head: in a three-phase history, after the
    groups' expand revisions and before the switch and the contract, so the old names are still kept."""
    return group_target(location, groups, every_group) != [single_head(location)]


def resolve(location: Path, targets: Iterable[str]) -> set[str]:
    """The revision ids that symbolic targets (``heads``, ``analytics@head``) stand for."""
    scripts = script_directory(location)
    return {rev.revision for t in targets for rev in scripts.get_revisions(t) if rev is not None}


def revisions_between(location: Path, target: str, base: str = "base") -> list[Script]:
    """Revisions from ``base`` (exclusive) up to ``target``, oldest first, in a valid apply order."""
    scripts = script_directory(location)
    revs = list(scripts.iterate_revisions(target, base))
    return [r for r in reversed(revs) if isinstance(r, Script)]


def upgrade(dsn: str, location: Path, targets: Iterable[str], on_step: Callable[[Step], None] | None = None) -> list[Step]:
    """Apply every revision needed for ``targets``, one at a time, timing and lock-sampling each."""
    steps: list[Step] = []
    seen = _applied(dsn, location)
    for target in targets:
        for rev in revisions_between(location, target):
            if rev.revision in seen:
                continue
            seen.add(rev.revision)
            step = _timed(dsn, location, rev, "up")
            steps.append(step)
            if on_step:
                on_step(step)
    return steps


def downgrade(dsn: str, location: Path, target: str = "base") -> Step:
    """Revert to ``target`` in one call (Alembic orders the reverts); returns the whole as one step."""
    began = time.perf_counter()
    _run(dsn, location, target, "down")
    return Step(target, "down", f"downgrade to {target}", time.perf_counter() - began)


def current(dsn: str, location: Path) -> set[str]:
    from alembic.runtime.migration import MigrationContext

    engine = create_engine(sqlalchemy_url(dsn), poolclass=NullPool)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"version_table_schema": SCHEMA})
        return set(ctx.get_current_heads())


def _applied(dsn: str, location: Path) -> set[str]:
    """Every revision already in the database: the current heads and all their ancestors."""
    scripts = script_directory(location)
    return {r.revision for h in current(dsn, location) for r in scripts.iterate_revisions(h, "base") if r is not None}


def _timed(dsn: str, location: Path, rev: Script, direction: str) -> Step:
    before = _tuple_counters(dsn)
    sampler = LockSampler(dsn)
    sampler.start()
    began = time.perf_counter()
    try:
        _run(dsn, location, rev.revision, direction)
    finally:
        locks = sampler.finish()
    seconds = time.perf_counter() - began
    touched = {rel: n - before.get(oid, (rel, 0))[1] for oid, (rel, n) in _tuple_counters(dsn).items()}
    busiest = max(touched, key=lambda rel: touched[rel], default=None)
    doc = (rev.doc or "").strip().splitlines()[0] if rev.doc else ""
    return Step(rev.revision, direction, doc, seconds, locks, sum(max(n, 0) for n in touched.values()),
                busiest if busiest and touched[busiest] > 0 else None)


def _tuple_counters(dsn: str) -> dict[int, tuple[str, int]]:
    """relid -> (name, tuples inserted + updated + deleted so far): keyed by oid, so a renamed table still counts."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute("SELECT relid::int, relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables")
        return {oid: (name, int(n)) for oid, name, n in rows}


def _run(dsn: str, location: Path, target: str, direction: str) -> None:
    """``alembic upgrade|downgrade target`` on our connection: the user's ``env.py`` runs as under Alembic's command,
    with the revisions :func:`script_directory` already read."""
    cfg = alembic_config(location)
    scripts = script_directory(location)

    def revisions(current: str, _context: object) -> list[RevisionStep]:
        return (scripts._upgrade_revs if direction == "up" else scripts._downgrade_revs)(target, current)

    engine = create_engine(sqlalchemy_url(dsn), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            cfg.attributes["connection"] = conn
            with EnvironmentContext(cfg, scripts, fn=revisions, destination_rev=target):
                scripts.run_env()
            conn.commit()
            if (conn.dialect.server_version_info or (0,)) >= (15,):  # report this session's counters now, not up to 1 s later
                conn.exec_driver_sql("SELECT pg_stat_force_next_flush()")
                conn.commit()
    except CommandError as exc:
        raise SynapError(f"alembic: {exc}") from None
    finally:
        engine.dispose()


class LockSampler(threading.Thread):
    """Samples ``pg_locks`` of other sessions on the migrated database every few milliseconds.

    A hold is continuous: it ends at the first sample that no longer sees the lock, so a revision made of
    many short transactions reports its longest single hold, not the span from its first lock to its last.
    """

    def __init__(self, dsn: str, interval: float = 0.02) -> None:
        super().__init__(daemon=True)
        self._dsn, self._interval = dsn, interval
        self._stop_event = threading.Event()
        self._open: dict[tuple[str, str], tuple[float, float]] = {}  # (relation, mode) -> (first seen, last seen)
        self._longest: dict[tuple[str, str], float] = {}
        self._ready = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self._dsn, autocommit=True) as conn:
            self._ready.set()
            while not self._stop_event.is_set():
                now = time.perf_counter()
                seen = set(conn.execute(
                    "SELECT c.relname, l.mode FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE l.granted AND l.pid <> pg_backend_pid() AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
                    "AND c.relkind IN ('r', 'p')"
                ).fetchall())
                for key in seen:
                    first, _ = self._open.get(key, (now, now))
                    self._open[key] = (first, now)
                for key in [k for k in self._open if k not in seen]:
                    self._close(key)
                self._stop_event.wait(self._interval)
            for key in list(self._open):
                self._close(key)

    def _close(self, key: tuple[str, str]) -> None:
        first, last = self._open.pop(key)
        self._longest[key] = max(self._longest.get(key, 0.0), last - first)

    def start(self) -> None:
        super().start()
        self._ready.wait(5)

    def finish(self) -> list[LockSeen]:
        """Per relation, the strongest mode seen and its longest continuous hold."""
        self._stop_event.set()
        self.join(5)
        strongest: dict[str, str] = {}
        for rel, mode in self._longest:
            if rel not in strongest or LOCK_STRENGTH.index(mode) > LOCK_STRENGTH.index(strongest[rel]):
                strongest[rel] = mode
        return sorted((LockSeen(rel, mode, self._longest[(rel, mode)]) for rel, mode in strongest.items()),
                      key=lambda lk: (-LOCK_STRENGTH.index(lk.mode), -lk.seconds))
