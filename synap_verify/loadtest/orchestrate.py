"""Start the API and Locust, run the migration while the load runs, and collect what happened.

Traffic only goes to 127.0.0.1 (the API this module starts) or to a staging URL given explicitly.
Every wait here has a deadline, and Locust always runs with ``-t``, so a run ends by itself even when
the early stop (a stop file the locustfile watches) is never reached.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from alembic.script import Script

from synap_verify import migrate
from synap_verify.errors import SynapError, first_line
from synap_verify.groups import SCHEMA as S
from synap_verify.loadtest import blocking, config
from synap_verify.loadtest.blocking import StepWindow, Wait
from synap_verify.loadtest.config import LOCUSTFILE
from synap_verify.server import sqlalchemy_url

Say = Callable[[str], None]
MASTER_PORT = 5557  # Locust's own default, for a master and workers on different machines

POOL_SQL = f"""
WITH t AS (
    SELECT r.tenant_id, min(r.user_id::text) AS user_id
    FROM {S}.user_tenant_roles r JOIN {S}.users u ON u.id = r.user_id
    WHERE r.is_active GROUP BY r.tenant_id)
SELECT t.tenant_id::text, t.user_id,
    ARRAY(SELECT w.id::text FROM {S}.workspaces w WHERE w.tenant_id = t.tenant_id ORDER BY w.id LIMIT 5),
    ARRAY(SELECT wf.id::text FROM {S}.workflows wf JOIN {S}.workspaces w ON w.id = wf.workspace_id
          AND w.tenant_id = wf.tenant_id WHERE wf.tenant_id = t.tenant_id ORDER BY wf.id LIMIT 5),
    ARRAY(SELECT c.id::text FROM {S}.llms_conversations c WHERE c.tenant_id = t.tenant_id AND (c.workspace_id IS NULL
          OR EXISTS (SELECT 1 FROM {S}.workspaces w WHERE w.id = c.workspace_id AND w.tenant_id = c.tenant_id))
          ORDER BY c.id LIMIT 5)
FROM t ORDER BY t.tenant_id
"""

# The seeded unsafe step: what a naive migration of the largest table does (a full rewrite under
# ACCESS EXCLUSIVE). ``context`` is used because the fixture puts no \u0000 in it, so the cast succeeds
# and the step blocks instead of failing.
UNSAFE_STEP = ("unsafe: ALTER analytics_events.context TYPE jsonb",
               f"ALTER TABLE {S}.analytics_events ALTER COLUMN context TYPE jsonb USING context::jsonb")

GROW_EVENTS_SQL = f"""
INSERT INTO {S}.analytics_events (event_type, category, action, label, user_id, session_id, tenant_id, workspace_id,
                                  workflow_id, properties, context, value, occurred_at, created_at)
SELECT e.event_type, e.category, e.action, e.label, e.user_id, e.session_id, e.tenant_id, e.workspace_id,
       e.workflow_id, e.properties, e.context, e.value, e.occurred_at, e.created_at
FROM generate_series(1, %(copies)s) g,
     (SELECT * FROM {S}.analytics_events WHERE coalesce(properties::text, '') NOT LIKE '%%\\u0000%%'
      AND coalesce(context::text, '') NOT LIKE '%%\\u0000%%') e
LIMIT %(rows)s
"""


def tenant_pool(dsn: str, limit: int) -> list[dict[str, Any]]:
    """Tenants with a member, workspaces, workflows and conversations: the ids load users act on.

    Read with SQL valid on the legacy and the migrated schema; only rows whose parent has the same
    tenant (legacy drift would be refused by the migrated schema's guards, which is not the load's point).
    """
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(POOL_SQL).fetchall()  # type: ignore[arg-type]
    pool = [{"tenant": t, "user": u, "workspaces": ws, "workflows": wf, "conversations": cv}
            for t, u, ws, wf, cv in rows if ws and wf and cv][:limit]
    if not pool:
        raise SynapError("no tenant has a member, a workspace, a workflow and a conversation: nothing to load")
    return pool


def grow_events(dsn: str, rows: int) -> int:
    """Copy existing analytics_events rows until ``rows`` more exist, then ANALYZE (row estimates drive expand/contract)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        have = conn.execute(f"SELECT count(*) FROM {S}.analytics_events").fetchone()
        copies = -(-rows // max(1, int(have[0] if have else 0)))
        # copies of rows already there reference parents that exist: the per-row FK checks (four lookups a row,
        # most of the copy's time) are skipped on this disposable server
        conn.execute("SET session_replication_role = replica")
        cur = conn.execute(GROW_EVENTS_SQL, {"copies": copies, "rows": rows})  # type: ignore[arg-type]
        conn.execute(f"ANALYZE {S}.analytics_events")
        return cur.rowcount


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve_api(dsn: str, log: Path, ready_within: float = 30.0) -> Iterator[str]:
    """The reference API under uvicorn on 127.0.0.1, its connections named ``synap-load-api``."""
    port = free_port()
    env = os.environ | {"SYNAPSCALE_DATABASE_URL": sqlalchemy_url(dsn), "PGAPPNAME": f"{blocking.LOAD_APP}-api"}
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "synapscale.api.app:app", "--host", "127.0.0.1", "--port", str(port),
             "--log-level", "warning", "--no-access-log"],
            env=env, stdout=out, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(url, proc, log, ready_within)
            yield url
        finally:
            _stop(proc)


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SynapError(f"the API exited with {proc.returncode} before serving: see {log}")
        try:
            with urllib.request.urlopen(f"{url}/openapi.json", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise SynapError(f"the API did not answer within {within:.0f}s: see {log}")


def _stop(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@dataclass
class LocustRun:
    """A headless Locust run and the files it writes into ``out``: one process, or Locust's master and workers.

    ``workers`` > 0 runs Locust's own distributed mode: a master bound to ``bind_host`` (loopback unless
    workers on other machines must reach it) that waits for ``workers`` workers and merges their
    statistics into the usual CSV/HTML/JSON; the workers are started here unless ``remote``, in which case
    they are ``synap-verify load --worker --master-host H`` on other machines.
    """

    out: Path
    user_class: str
    users: int
    spawn_rate: float
    duration: str
    host: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    workers: int = 0
    remote: bool = False
    bind_host: str = "127.0.0.1"
    port: int | None = None
    rate: float | None = None  # requests/s over all users (constant_throughput), instead of the think time
    connect_within: float = 120.0  # seconds the master waits for its workers
    proc: subprocess.Popen[bytes] | None = None
    worker_procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def timeline(self) -> Path:
        return self.out / "timeline.csv"

    @property
    def stop_file(self) -> Path:
        return self.out / "stop"

    @property
    def logs(self) -> list[Path]:
        return [self.out / "locust.log", *(self.out / f"locust-worker-{i}.log" for i in range(len(self.worker_procs)))]

    def start(self, config_file: Path) -> None:
        self.stop_file.unlink(missing_ok=True)
        argv = [*LOCUST, "--headless", "-u", str(self.users), "-r", f"{self.spawn_rate:g}", "-t", self.duration,
                "--stop-timeout", "5", "--only-summary", "--csv", str(self.out / "locust"),
                "--html", str(self.out / "locust.html"), "--json-file", str(self.out / "locust"), "--loglevel", "WARNING"]
        if self.host:
            argv += ["--host", self.host]
        port = self.port = self.port or free_port()
        if self.workers:
            argv += ["--master", "--master-bind-host", self.bind_host, "--master-bind-port", str(port),
                     "--expect-workers", str(self.workers), "--expect-workers-max-wait", f"{self.connect_within:.0f}"]
        env = os.environ | self.env | {"SYNAP_LOAD_CONFIG": str(config_file), "SYNAP_LOAD_TIMELINE": str(self.timeline),
                                       "SYNAP_LOAD_STOP_FILE": str(self.stop_file)}
        if self.rate:
            env |= {"SYNAP_LOAD_RATE": f"{self.rate:g}", "SYNAP_LOAD_USERS": str(self.users)}
        self.proc = _spawn([*argv, self.user_class], env, self.out / "locust.log")
        if self.workers and not self.remote:
            worker_env = os.environ | {"SYNAP_LOAD_CONFIG": str(config_file)}
            self.worker_procs = [_spawn(worker_argv("127.0.0.1", port), worker_env,
                                        self.out / f"locust-worker-{i}.log") for i in range(self.workers)]

    def stop_early(self) -> None:
        self.stop_file.touch()

    def wait(self, bound: float) -> int:
        """Wait for Locust to end by itself; past ``bound`` seconds it is terminated (and that is reported)."""
        assert self.proc is not None
        try:
            code = self.proc.wait(bound)
        except subprocess.TimeoutExpired:
            self.terminate()
            log = self.out / "locust.log"
            raise SynapError(f"Locust did not stop within {bound:.0f}s and was terminated: see {log}") from None
        for worker in self.worker_procs:  # the master told them to quit; they send a last report and go
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                _stop(worker)
        return code

    def terminate(self) -> None:
        for proc in [p for p in (self.proc, *self.worker_procs) if p is not None]:
            _stop(proc)

    def first_request_within(self, seconds: float) -> bool:
        """True once the timeline has a request (users spawned, database reachable)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                return False
            if self.timeline.exists() and self.timeline.stat().st_size > 40:
                return True
            time.sleep(0.2)
        return False

    def cpu_warnings(self) -> list[str]:
        """Locust's own warnings that a load generator ran out of CPU (then the client, not the target, was measured)."""
        return [line.strip() for log in self.logs if log.exists() for line in log.read_text().splitlines()
                if "cpu threshold" in line.lower() or "cpu usage above" in line.lower()]


LOCUST = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE)]


def worker_argv(master_host: str, master_port: int) -> list[str]:
    """A Locust worker of this locustfile: it asks the master for the pool and settings (see the locustfile)."""
    return [*LOCUST, "--worker", "--master-host", master_host, "--master-port", str(master_port), "--loglevel", "WARNING"]


def _spawn(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("w") as out:
        return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


SWITCH_REVISION = "expanded"  # the reference's expand point: every group expanded, the old names still working
PHASES = ("expand", "contract")
# Seeded defects of a phased run, each a step after the expand (or the switch leaving the old application on)
SEEDED_DEFECTS = {
    "missing-view": ("seeded: the compatibility view of llms_conversations_turns left out",
                     f"DROP VIEW {S}.llms_conversations_turns"),
    "unsynced-column": ("seeded: workflow_executions.meta_data no longer kept in sync",
                        f"DROP TRIGGER workflow_executions_meta_data_compat_sync ON {S}.workflow_executions"),
    "unsynced-list": ("seeded: rbac_roles.permissions no longer carried to rbac_role_permissions",
                      f"DROP TRIGGER rbac_roles_permissions_compat_sync ON {S}.rbac_roles"),
    "old-app-at-contract": ("seeded: the old application still running at the contract", ""),
}


@dataclass
class MigrationPlan:
    """What runs under load: the reference revisions (optionally another expand/contract threshold), or the unsafe step."""

    location: Path
    unsafe: bool = False
    expand_contract_rows: int | None = None
    group: str | None = None  # one group's revisions only (its bare branch label), else up to the head
    phases: tuple[str, ...] = ()  # a phased run (old application, expand, switch, contract, new application)
    seeded: str | None = None  # a key of SEEDED_DEFECTS

    def expand_revisions(self) -> list[Script]:
        return migrate.revisions_between(self.location, SWITCH_REVISION)

    def contract_revisions(self) -> list[Script]:
        return migrate.revisions_between(self.location, migrate.single_head(self.location), SWITCH_REVISION)


@contextmanager
def _threshold(rows: int | None) -> Iterator[None]:
    """SYNAPSCALE_EXPAND_CONTRACT_ROWS for the reference migration, restored afterwards."""
    previous = os.environ.get("SYNAPSCALE_EXPAND_CONTRACT_ROWS")
    if rows is not None:
        os.environ["SYNAPSCALE_EXPAND_CONTRACT_ROWS"] = str(rows)
    try:
        yield
    finally:
        if rows is not None:
            if previous is None:
                os.environ.pop("SYNAPSCALE_EXPAND_CONTRACT_ROWS", None)
            else:
                os.environ["SYNAPSCALE_EXPAND_CONTRACT_ROWS"] = previous


def apply(dsn: str, plan: MigrationPlan, revisions: list[Script], say: Say) -> list[StepWindow]:
    """Apply each revision in turn, recording when it ran; the first failure ends the run (and is a step result)."""
    windows: list[StepWindow] = []
    with _threshold(plan.expand_contract_rows):
        for rev in revisions:
            start = time.time()
            try:
                steps = migrate.upgrade(dsn, plan.location, [rev.revision])
            except Exception as exc:  # noqa: BLE001 - a failed step is a result of the run, not a crash of it
                windows.append(StepWindow(rev.revision, _doc(rev.doc), start, time.time(), _detail(exc)))
                say(f"synap-verify: {rev.revision} FAILED under load: {first_line(exc)}")
                break
            done = StepWindow(rev.revision, _doc(rev.doc), start, time.time(), None, _exclusive(steps))
            windows.append(done)
            say(f"synap-verify: {rev.revision} in {done.seconds:.2f}s")
    return windows


def run_steps(dsn: str, plan: MigrationPlan, say: Say) -> list[StepWindow]:
    """The whole migration (or the unsafe step), one revision at a time."""
    if plan.unsafe:
        return [_sql_step(dsn, *UNSAFE_STEP, say=say)]
    return apply(dsn, plan, migrate.revisions_between(plan.location, plan.group or migrate.single_head(plan.location)), say)


def _sql_step(dsn: str, name: str, sql: str, say: Say) -> StepWindow:
    sampler = migrate.LockSampler(dsn)
    sampler.start()
    start = time.time()
    try:
        with psycopg.connect(dsn, application_name="synap-migration") as conn:
            conn.execute(sql)  # type: ignore[arg-type]
            conn.commit()
    except psycopg.Error as exc:
        sampler.finish()
        return StepWindow(name, sql, start, time.time(), _detail(exc))
    held = migrate.Step(name, "up", sql, time.time() - start, sampler.finish())
    step = StepWindow(name, sql, start, start + held.seconds, None, _exclusive([held]))
    say(f"synap-verify: {name} in {step.seconds:.2f}s")
    return step


def _exclusive(steps: list[migrate.Step]) -> str:
    held = [s.longest_exclusive() for s in steps]
    worst = max((h for h in held if h), key=lambda h: h.seconds, default=None)
    return f"{worst.relation} {worst.seconds:.2f}s" if worst else ""


def _doc(doc: str | None) -> str:
    return (doc or "").strip().splitlines()[0] if doc and doc.strip() else ""




def _detail(exc: BaseException) -> str:
    """The whole message: a deadlock's DETAIL names both processes and the statement that lost."""
    return " ".join(str(exc).split())[:1200] or type(exc).__name__


@dataclass
class MigrationRun:
    steps: list[StepWindow]
    waits: list[Wait]
    samples: int
    locust_exit: int
    sampler_error: str | None


def under_load(dsn: str, plan: MigrationPlan, locust: LocustRun, config_file: Path, before: float, after: float,
               say: Say) -> MigrationRun:
    """Start the load, let ``before`` seconds pass, run the migration with the wait sampler on, then ``after`` more."""
    sampler = blocking.WaitSampler(dsn, limit=before + after + config.seconds(locust.duration))
    locust.start(config_file)
    try:
        if not locust.first_request_within(locust.connect_within + 60):
            raise SynapError(f"the load never issued a request: see {locust.out / 'locust.log'}")
        say(f"synap-verify: load running ({locust.users} users); {before:g}s before the migration")
        sampler.start()
        time.sleep(before)
        steps = run_steps(dsn, plan, say)
        say(f"synap-verify: migration done; {after:g}s of load after it")
        time.sleep(after)
    except BaseException:
        locust.terminate()
        raise
    finally:
        locust.stop_early()
        waits = sampler.finish() if sampler.ident is not None else []
    code = locust.wait(config.seconds(locust.duration) + locust.connect_within + 60)
    return MigrationRun(steps, waits, sampler.samples, code, sampler.error)


@dataclass(frozen=True)
class Phase:
    """One phase of a phased run: before, expand, switch, contract, after (epoch seconds)."""

    name: str
    start: float
    end: float


@dataclass
class PhasedRun(MigrationRun):
    phases: list[Phase] = field(default_factory=list)
    new_exit: int | None = None


def phased_under_load(dsn: str, plan: MigrationPlan, old: LocustRun, new: LocustRun, config_file: Path,
                      before: float, switch: float, after: float, say: Say) -> PhasedRun:
    """The zero-downtime deployment under load: old application, expand, switch, contract, new application.

    The old application's users run from the start through the expand; at the switch the new
    application's users start, both run ``switch`` seconds (a rolling deployment), then the old ones
    stop, so their sessions are gone when the contract checks that nothing uses the old names. With
    the seeded ``old-app-at-contract`` they keep running, and the contract must refuse.
    """
    if plan.phases == ("contract",):  # the expand done beforehand, without load: the contract alone is measured
        migrate.upgrade(dsn, plan.location, [SWITCH_REVISION])
    first = old if "expand" in plan.phases else new
    sampler = blocking.WaitSampler(dsn, limit=before + switch + after + config.seconds(first.duration))
    steps: list[StepWindow] = []
    phases: list[Phase] = []
    runs = [first]
    first.start(config_file)
    try:
        if not first.first_request_within(first.connect_within + 60):
            raise SynapError(f"the load never issued a request: see {first.out / 'locust.log'}")
        say(f"synap-verify: {first.user_class} running ({first.users} users); {before:g}s before the migration")
        sampler.start()
        began = time.time()
        time.sleep(before)
        phases.append(Phase("before", began, time.time()))
        if "expand" in plan.phases:
            steps += _phase(phases, "expand", lambda: apply(dsn, plan, plan.expand_revisions(), say))
            if plan.seeded and SEEDED_DEFECTS[plan.seeded][1] and not any(s.error for s in steps):
                steps.append(_sql_step(dsn, *SEEDED_DEFECTS[plan.seeded], say=say))
        if "contract" in plan.phases and not any(s.error for s in steps):
            start = time.time()
            if first is old:
                runs.append(new)
                new.start(config_file)
                if not new.first_request_within(new.connect_within + 60):
                    raise SynapError(f"the new application's load never issued a request: see {new.out / 'locust.log'}")
                say(f"synap-verify: switch: {new.user_class} running beside {old.user_class} for {switch:g}s")
                time.sleep(switch)
                if plan.seeded != "old-app-at-contract":
                    old.stop_early()
                    old.wait(config.seconds(old.duration) + old.connect_within + 60)
            phases.append(Phase("switch", start, time.time()))
            steps += _phase(phases, "contract", lambda: apply(dsn, plan, plan.contract_revisions(), say))
        say(f"synap-verify: migration done; {after:g}s of load after it")
        start = time.time()
        time.sleep(after)
        phases.append(Phase("after", start, time.time()))
    except BaseException:
        for r in runs:
            r.terminate()
        raise
    finally:
        for r in runs:
            r.stop_early()
        waits = sampler.finish() if sampler.ident is not None else []
    codes = [r.wait(config.seconds(r.duration) + r.connect_within + 60) for r in runs]
    return PhasedRun(steps, waits, sampler.samples, codes[0], sampler.error, phases, codes[1] if len(codes) > 1 else None)


def _phase(phases: list[Phase], name: str, body: Callable[[], list[StepWindow]]) -> list[StepWindow]:
    start = time.time()
    steps = body()
    phases.append(Phase(name, start, time.time()))
    return steps


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data, indent=2, default=str))
    return path
