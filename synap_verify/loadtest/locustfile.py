"""Tenant users of synapscale for Locust 2: the reference API mix, a SQL mix valid on both sides of a migration,
and a SQL workload of statements taken from ``pg_stat_statements``.

Run by ``synap-verify load``, alone or as Locust's own master and workers. The process Locust runs the
test from (alone, or the master) reads what the users act on from the environment; each worker asks the
master for it once connected, so a worker on another machine needs nothing but this package:

- ``SYNAP_LOAD_CONFIG``: ``config.toml`` (weights, think times; default: the packaged one; a worker
  reads its own, so both machines must have the same);
- ``SYNAP_LOAD_POOL``: a JSON list of tenants with the ids their users act on;
- ``SYNAP_LOAD_DSN``: the database of the SQL users (a libpq connection string; a worker's own
  ``SYNAP_LOAD_DSN`` wins over the master's, for a database reached under another address);
- ``SYNAP_LOAD_PREPARE_THRESHOLD``: ``off`` or a count, the SQL users' prepared statements (default: config);
- ``SYNAP_LOAD_STATEMENTS``: the ``StatementUser`` workload (JSON: statements, weights, samples by tenant);
- ``SYNAP_LOAD_RATE`` and ``SYNAP_LOAD_USERS``: a target of requests per second over all users, paced
  with Locust's ``constant_throughput`` instead of the think time;
- ``SYNAP_LOAD_TIMELINE``: a CSV file receiving one line per request (start, latency, outcome, worker),
  the per-request timeline the migration verdict is computed from. Workers send their lines to the
  master inside their stats reports, so the merged timeline holds exactly the requests the merged
  statistics count;
- ``SYNAP_LOAD_STOP_FILE``: when this file appears the run ends early (``-t`` stays the hard bound);
- ``SYNAP_LOAD_ALLOWED_URL``: a staging URL allowed besides loopback.

Pick the user class on the command line (``locust ... ApiTenantUser``, ``SqlTenantUser``, ``LegacyAppUser``,
``NewAppUser`` or ``StatementUser``).
"""

from __future__ import annotations

import csv
import json
import os
import random
import time
import tomllib
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import gevent
import gevent.event
import locust.runners
import psycopg
from locust import User, between, constant_throughput, events, task
from locust.contrib.fasthttp import FastHttpUser
from locust.env import Environment
from locust.exception import StopUser
from locust.runners import MasterRunner, WorkerRunner

from synap_verify.groups import SCHEMA
from synap_verify.loadtest import config, workload
from synap_verify.resources import LOAD_CONFIG

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
CONFIG = tomllib.loads(Path(os.environ.get("SYNAP_LOAD_CONFIG", LOAD_CONFIG)).read_text())
THINK = between(float(CONFIG["think_time"]["min"]), float(CONFIG["think_time"]["max"]))
SEARCH_TERMS = ("flow", "agent", "report", "sync", "ai", "data", "bot", "mail")
# a worker's requests reach the master's timeline with its stats reports: every second instead of Locust's
# three, so the orchestrator sees the first request (and times the run from it) without waiting seconds
locust.runners.WORKER_REPORT_INTERVAL = 1.0
APP_NAME = "synap-load"  # how the blocking sampler tells load sessions from the migration's
# requests each task issues: a target rate in requests/s becomes task runs/s for constant_throughput
REQUESTS_PER_TASK = {"browse_dashboards": 2, "run_workflow": 2, "chat": 2, "search_marketplace": 1,
                     "write_activity": 2, "read_events": 1, "chat_history": 2, "conversation_turns": 2,
                     "message_feedback": 2, "execution_metadata": 4, "activity_metadata": 2, "node_metadata": 3,
                     "queue_metadata": 3, "agent_provider": 2, "user_membership": 3,
                     "role_permissions": 5}
# the old application's names of what the restructure renames (table -> new name, column -> new name), and the
# dropped columns it still reads; the new application's are the values
OLD_TABLES = {"messages": "llms_messages", "conversation_turns": "llms_conversations_turns",
              "message_feedbacks": "llms_message_feedbacks"}
OLD_COLUMNS = {"metadata": "meta_data", "provider": "model_provider"}


class StaleRead(Exception):
    """A read-after-write check failed: a value written under one name of a renamed column is not what either name reads."""
TIMELINE_HEADER = ["start", "ms", "type", "name", "ok", "error", "worker"]
RUN_REQUEST, RUN_DATA = "synap_want_run", "synap_run"  # worker -> master, master -> worker


def _json_file(name: str) -> Any:
    path = os.environ.get(name)
    return json.loads(Path(path).read_text()) if path else None


def _from_environment() -> dict[str, Any]:
    prepare = os.environ.get("SYNAP_LOAD_PREPARE_THRESHOLD", str(CONFIG["run"].get("prepare_threshold", "off")))
    return {"pool": _json_file("SYNAP_LOAD_POOL") or [], "dsn": os.environ.get("SYNAP_LOAD_DSN"),
            "prepare": prepare.lower(), "statements": _json_file("SYNAP_LOAD_STATEMENTS"),
            "rate": float(os.environ.get("SYNAP_LOAD_RATE") or 0), "users": int(os.environ.get("SYNAP_LOAD_USERS") or 0)}


class _Run:
    """What the users act on: read from the environment, or (on a worker) received from the master once."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.ready = gevent.event.Event()

    def set(self, data: dict[str, Any]) -> None:
        self.data = data
        self.ready.set()

    def get(self, within: float = 60.0) -> dict[str, Any]:
        if not self.ready.wait(within):
            raise StopUser("the master never sent the run's pool and settings")
        return self.data


RUN = _Run()


class _Timeline:
    """Every request with its start on the wall clock (the migration's clock: keep the machines' clocks in sync).

    Written directly by a process running alone or by the master; a worker keeps its lines until its next
    stats report and sends them with it (``report_to_master``), and the master writes them on receipt.
    """

    def __init__(self) -> None:
        self.file: Any = None
        self.writer: Any = None
        self.pending: list[list[str]] = []
        self.buffered = False
        self.seen = False  # the first request is flushed at once: the orchestrator waits for it to start the clock

    def open(self, path: str) -> None:
        self.file = open(path, "w", newline="")  # noqa: SIM115 - closed on quitting
        self.writer = csv.writer(self.file)
        self.writer.writerow(TIMELINE_HEADER)

    def record(self, request_type: str, name: str, response_time: float, exception: BaseException | None,
               start_time: float | None = None, **_: Any) -> None:
        start = start_time if start_time is not None else time.time() - response_time / 1000
        error = "" if exception is None else f"{type(exception).__name__}: {(str(exception).splitlines() or [''])[0][:200]}"
        row = [f"{start:.6f}", f"{response_time:.3f}", request_type, name, str(int(exception is None)), error]
        if self.buffered:
            self.pending.append(row)
        else:
            self._write([[*row, "local"]])

    def report(self, data: dict[str, Any], **_: Any) -> None:
        data["synap_timeline"], self.pending = self.pending, []

    def receive(self, environment: Environment) -> Callable[..., None]:
        def on_report(client_id: str, data: dict[str, Any], **_: Any) -> None:
            runner = environment.runner
            worker = str(runner.get_worker_index(client_id)) if isinstance(runner, MasterRunner) else client_id
            self._write([[*row, worker] for row in data.get("synap_timeline", [])])
        return on_report

    def _write(self, rows: list[list[str]]) -> None:
        if self.writer is None or not rows:
            return
        self.writer.writerows(rows)
        if not self.seen:
            self.seen = True
            self.file.flush()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = self.writer = None


TIMELINE = _Timeline()


def _watch_stop_file(environment: Environment, path: Path) -> None:
    """End the run when the orchestrator drops the stop file; ``-t`` bounds the loop if it never does."""
    while environment.runner is not None and environment.runner.state not in ("stopped", "quitting"):
        if path.exists():
            environment.runner.quit()
            return
        gevent.sleep(0.2)


@events.init.add_listener
def _on_init(environment: Environment, **_: Any) -> None:
    host = environment.host or ""
    allowed = os.environ.get("SYNAP_LOAD_ALLOWED_URL", "")
    if host and urlsplit(host).hostname not in LOOPBACK and host.rstrip("/") != allowed.rstrip("/"):
        raise SystemExit(f"refusing to load {host}: only loopback or the given staging URL")
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        own_dsn = os.environ.get("SYNAP_LOAD_DSN")
        runner.register_message(RUN_DATA, lambda msg, **_: RUN.set(msg.data | ({"dsn": own_dsn} if own_dsn else {})))
        runner.send_message(RUN_REQUEST)
        TIMELINE.buffered = True
        events.request.add_listener(TIMELINE.record)
        events.report_to_master.add_listener(TIMELINE.report)
        return
    RUN.set(_from_environment())
    if path := os.environ.get("SYNAP_LOAD_TIMELINE"):
        TIMELINE.open(path)
        events.request.add_listener(TIMELINE.record)
    if isinstance(runner, MasterRunner):
        runner.register_message(RUN_REQUEST, lambda msg, **_: runner.send_message(RUN_DATA, RUN.data, client_id=msg.node_id))
        events.worker_report.add_listener(TIMELINE.receive(environment))
    if stop := os.environ.get("SYNAP_LOAD_STOP_FILE"):
        gevent.spawn(_watch_stop_file, environment, Path(stop))


@events.test_stop.add_listener
def _on_stop(**_: Any) -> None:
    if TIMELINE.file is not None:
        TIMELINE.file.flush()


@events.quitting.add_listener
def _on_quit(**_: Any) -> None:
    TIMELINE.close()


class _Paced:
    """Think time between tasks, or with a target rate Locust's ``constant_throughput`` sized to reach it."""

    requests_per_task = 1.0
    _pace: Callable[[Any], float]

    def pace(self, run: dict[str, Any]) -> None:
        rate = run.get("rate")
        self._pace = constant_throughput(rate / max(1, run["users"]) / self.requests_per_task) if rate else THINK

    def wait_time(self) -> float:
        return float(self._pace(self))


def _requests_per_task(*kinds: str) -> float:
    """Requests a task of this mix makes on average (for pacing); a mix that turns every task off (weights 0)
    is one whose class does not run, and must not stop the others from loading."""
    weights = {t: int(w) for kind in kinds for t, w in CONFIG[kind]["weights"].items()}
    return sum(w * REQUESTS_PER_TASK[t] for t, w in weights.items()) / (sum(weights.values()) or 1)


class ApiTenantUser(_Paced, FastHttpUser):
    """A tenant's member using the reference API: dashboards, workflows, chat, marketplace, activity."""

    requests_per_task = _requests_per_task("api")
    connection_timeout = 10.0
    network_timeout = 30.0

    def on_start(self) -> None:
        run = RUN.get()
        if not run["pool"]:
            raise StopUser("no tenant pool (SYNAP_LOAD_POOL)")
        self.pace(run)
        self.t = random.choice(run["pool"])
        self.headers = {"X-Tenant-ID": self.t["tenant"], "X-User-ID": self.t["user"]}

    def _get(self, path: str, name: str) -> Any:
        with self.client.get(path, headers=self.headers, name=name, catch_response=True) as resp:
            if resp.status_code != 200:
                resp.failure(f"HTTP {resp.status_code}")
                return None
            return resp.json()

    def _post(self, path: str, name: str, body: dict[str, Any]) -> None:
        with self.client.post(path, headers=self.headers, name=name, json=body, catch_response=True) as resp:
            if resp.status_code != 201:
                resp.failure(f"HTTP {resp.status_code}")

    @task(int(CONFIG["api"]["weights"]["browse_dashboards"]))
    def browse_dashboards(self) -> None:
        page = self._get("/analytics/dashboards?limit=20", "/analytics/dashboards")
        if page and page["items"]:
            self._get(f"/analytics/dashboards/{random.choice(page['items'])['id']}", "/analytics/dashboards/[id]")

    @task(int(CONFIG["api"]["weights"]["run_workflow"]))
    def run_workflow(self) -> None:
        wf = random.choice(self.t["workflows"])
        self._post(f"/workflows/{wf}/executions", "/workflows/[id]/executions POST",
                   {"input_data": {"source": "load", "n": random.randint(1, 1000)}, "meta_data": {"trigger": "load"}})
        self._get(f"/workflows/{wf}/executions?limit=10", "/workflows/[id]/executions")

    @task(int(CONFIG["api"]["weights"]["chat"]))
    def chat(self) -> None:
        conv = random.choice(self.t["conversations"])
        self._get(f"/conversations/{conv}/messages?limit=20", "/conversations/[id]/messages")
        self._post(f"/conversations/{conv}/messages", "/conversations/[id]/messages POST",
                   {"role": "user", "content": f"load test question {uuid.uuid4().hex[:8]}"})

    @task(int(CONFIG["api"]["weights"]["search_marketplace"]))
    def search_marketplace(self) -> None:
        self._get(f"/marketplace/components?q={random.choice(SEARCH_TERMS)}&limit=20", "/marketplace/components?q=")

    @task(int(CONFIG["api"]["weights"]["write_activity"]))
    def write_activity(self) -> None:
        ws = random.choice(self.t["workspaces"])
        self._post("/analytics/events", "/analytics/events POST",
                   {"event_type": "page_view", "category": "load", "workspace_id": ws,
                    "properties": {"page": random.choice(("home", "flows", "chat")), "ms": random.randint(1, 900)}})
        self._get(f"/workspaces/{ws}/activities?limit=20", "/workspaces/[id]/activities")


class _SqlUser(_Paced, User):
    """A database session named ``synap-load``, every statement reported to Locust as one request."""

    abstract = True

    def on_start(self) -> None:
        self.ctx = RUN.get()
        if not self.ctx["pool"] or not self.ctx["dsn"]:
            raise StopUser("no tenant pool or database (SYNAP_LOAD_POOL, SYNAP_LOAD_DSN)")
        self.pace(self.ctx)
        self.conn: psycopg.Connection | None = None
        self.prepare_threshold = config.prepare_threshold(self.ctx["prepare"])

    def on_stop(self) -> None:
        if self.conn is not None:
            self.conn.close()

    def _connection(self) -> psycopg.Connection:
        if self.conn is None or self.conn.closed:
            self.conn = psycopg.connect(self.ctx["dsn"], autocommit=True, application_name=APP_NAME,
                                        connect_timeout=10, prepare_threshold=self.prepare_threshold,
                                        options=f"-c statement_timeout={CONFIG['run']['statement_timeout']}")
        return self.conn

    def _sql(self, name: str, sql: str, params: Any,
             check: Callable[[list[tuple[Any, ...]]], str | None] | None = None) -> list[tuple[Any, ...]]:
        """Run one statement, reported to Locust as one request named ``name``; ``check`` returns why the rows
        are wrong (the request then fails with :class:`StaleRead`), or None."""
        start = time.time()
        began = time.perf_counter()
        rows: list[tuple[Any, ...]] = []
        error: BaseException | None = None
        try:
            cur = self._connection().execute(sql, params)  # type: ignore[arg-type]
            rows = cur.fetchall() if cur.description else []
            wrong = check(rows) if check else None
            if wrong:
                error = StaleRead(wrong)
        except psycopg.Error as exc:
            error = exc
            if self.conn is not None and self.conn.broken:
                self.conn = None
        events.request.fire(request_type="SQL", name=name, response_time=(time.perf_counter() - began) * 1000,
                            response_length=len(rows), exception=error, context={}, start_time=start)
        return rows


class SqlTenantUser(_SqlUser):
    """The same mix as SQL a tenant's requests issue, valid before and after every restructure step.

    Explicit ``tenant_id`` filters (the connecting role bypasses RLS, which does not exist before the
    migration); json columns read as ``::text`` (``->>`` fails on legacy json holding ``\\u0000``) and
    written from untyped literals, which both ``json`` and ``jsonb`` accept; no renamed table or column,
    no dropped column. ``dashboard get`` is a ``SELECT *``, as a hand-written query often is.
    """

    requests_per_task = _requests_per_task("sql")

    def on_start(self) -> None:
        super().on_start()
        self.t = random.choice(self.ctx["pool"])

    @task(int(CONFIG["sql"]["weights"]["browse_dashboards"]))
    def browse_dashboards(self) -> None:
        rows = self._sql("dashboards list", "SELECT id, name, layout::text, widgets::text "
                         f"FROM {SCHEMA}.analytics_dashboards WHERE tenant_id = %s ORDER BY created_at, id LIMIT 20",
                         (self.t["tenant"],))
        if rows:
            self._sql("dashboard get", f"SELECT * FROM {SCHEMA}.analytics_dashboards WHERE id = %s AND tenant_id = %s",
                      (random.choice(rows)[0], self.t["tenant"]))

    @task(int(CONFIG["sql"]["weights"]["run_workflow"]))
    def run_workflow(self) -> None:
        wf = random.choice(self.t["workflows"])
        self._sql("execution insert",
                  f"INSERT INTO {SCHEMA}.workflow_executions (execution_id, workflow_id, user_id, tenant_id, status, "
                  "input_data) VALUES (%s, %s, %s, %s, 'pending', %s)",
                  (f"load-{uuid.uuid4().hex}", wf, self.t["user"], self.t["tenant"],
                   json.dumps({"source": "load", "n": random.randint(1, 1000)})))
        self._sql("executions list", f"SELECT id, status, left(input_data::text, 200) FROM {SCHEMA}.workflow_executions "
                  "WHERE workflow_id = %s AND tenant_id = %s ORDER BY created_at DESC LIMIT 10", (wf, self.t["tenant"]))

    @task(int(CONFIG["sql"]["weights"]["chat"]))
    def chat(self) -> None:
        conv = random.choice(self.t["conversations"])
        self._sql("conversations list", f"SELECT id, title, settings::text FROM {SCHEMA}.llms_conversations "
                  "WHERE tenant_id = %s ORDER BY created_at DESC LIMIT 20", (self.t["tenant"],))
        self._sql("conversation touch", f"UPDATE {SCHEMA}.llms_conversations SET last_message_at = now() "
                  "WHERE id = %s AND tenant_id = %s", (conv, self.t["tenant"]))

    @task(int(CONFIG["sql"]["weights"]["search_marketplace"]))
    def search_marketplace(self) -> None:
        self._sql("components search", f"SELECT id, name, category, downloads_count FROM {SCHEMA}.marketplace_components "
                  "WHERE name ILIKE %s ORDER BY downloads_count DESC, id LIMIT 20", (f"%{random.choice(SEARCH_TERMS)}%",))

    @task(int(CONFIG["sql"]["weights"]["write_activity"]))
    def write_activity(self) -> None:
        ws = random.choice(self.t["workspaces"])
        self._sql("activity insert", f"INSERT INTO {SCHEMA}.workspace_activities (workspace_id, user_id, tenant_id, "
                  "action, resource_type, description) VALUES (%s, %s, %s, 'viewed', 'dashboard', 'load')",
                  (ws, self.t["user"], self.t["tenant"]))
        self._sql("event insert", f"INSERT INTO {SCHEMA}.analytics_events (event_type, category, user_id, tenant_id, "
                  "workspace_id, properties) VALUES ('page_view', 'load', %s, %s, %s, %s)",
                  (self.t["user"], self.t["tenant"], ws, json.dumps({"page": "home", "ms": random.randint(1, 900)})))

    @task(int(CONFIG["sql"]["weights"]["read_events"]))
    def read_events(self) -> None:
        self._sql("events list", f"SELECT id, event_type, left(properties::text, 200) FROM {SCHEMA}.analytics_events "
                  "WHERE workspace_id = %s AND tenant_id = %s ORDER BY occurred_at DESC LIMIT 20",
                  (random.choice(self.t["workspaces"]), self.t["tenant"]))


class _RenamedUser(SqlTenantUser):
    """``SqlTenantUser``'s mix plus every renamed table and column, read and written under one application's names.

    Each write of a renamed column is followed by a read-after-write check of the row: the value written
    must be what this application's name reads and, where the table has the other name too (the expand,
    ``to_jsonb(row)`` shows it), what the other name reads: the application deployed next reads it there.
    """

    abstract = True
    old = False  # the old application's names, else the new one's
    requests_per_task = _requests_per_task("sql", "renamed")

    def _t(self, table: str) -> str:
        return f"{SCHEMA}.{OLD_TABLES.get(table, table) if self.old else table}"

    def _c(self, column: str) -> str:
        return OLD_COLUMNS.get(column, column) if self.old else column

    def _meta_written(self, table: str, row_id: Any, token: str) -> None:
        """The read-after-write check of a renamed column: both names, where both exist, hold ``token``."""
        mine, other = self._c("metadata"), "metadata" if self.old else OLD_COLUMNS["metadata"]

        def check(rows: list[tuple[Any, ...]]) -> str | None:
            if not rows:
                return f"{table} {row_id}: the row just written is not there"
            seen, there = rows[0]
            if token not in (seen or ""):
                return f"{table}.{mine} reads {str(seen)[:80]!r} after writing {token}"
            if there is not None and token not in there:
                return f"{table}.{other} reads {there[:80]!r} after {mine} was written with {token}: not kept in sync"
            return None

        # the other name as a parameter: the statement text names only this application's columns, so the
        # contract's check for sessions using an old name does not take the new application for the old one
        self._sql(f"{table} read-after-write", f"SELECT t.{mine}::text, (to_jsonb(t) -> %s)::text "
                  f"FROM {SCHEMA}.{table} t WHERE t.id = %s AND t.tenant_id = %s", (other, row_id, self.t["tenant"]), check)

    def _token(self) -> tuple[str, str]:
        token = uuid.uuid4().hex
        return token, json.dumps({"load": token})

    @task(int(CONFIG["renamed"]["weights"]["chat_history"]))
    def chat_history(self) -> None:
        conv = random.choice(self.t["conversations"])
        dropped = ", rating, feedback" if self.old else ""  # dropped columns the old application still reads
        self._sql("messages list", f"SELECT id, role, content, attachments::text{dropped} FROM {self._t('messages')} "
                  "WHERE conversation_id = %s AND tenant_id = %s ORDER BY created_at DESC LIMIT 20",
                  (conv, self.t["tenant"]))
        self._sql("message insert", f"INSERT INTO {self._t('messages')} (conversation_id, tenant_id, role, content, "
                  "attachments) VALUES (%s, %s, 'user', %s, '[]')", (conv, self.t["tenant"], f"load {uuid.uuid4().hex[:8]}"))

    @task(int(CONFIG["renamed"]["weights"]["conversation_turns"]))
    def conversation_turns(self) -> None:
        conv = random.choice(self.t["conversations"])
        self._sql("turn insert", f"INSERT INTO {self._t('conversation_turns')} (conversation_id, tenant_id, turn_index) "
                  "VALUES (%s, %s, %s)", (conv, self.t["tenant"], random.randint(10_000, 2_000_000_000)))
        self._sql("turns list", f"SELECT id, turn_index, status FROM {self._t('conversation_turns')} "
                  "WHERE conversation_id = %s AND tenant_id = %s ORDER BY turn_index DESC LIMIT 10",
                  (conv, self.t["tenant"]))

    @task(int(CONFIG["renamed"]["weights"]["message_feedback"]))
    def message_feedback(self) -> None:
        conv = random.choice(self.t["conversations"])
        rows = self._sql("message feedback insert",
                         f"INSERT INTO {self._t('message_feedbacks')} (message_id, user_id, tenant_id, rating, feedback_text) "
                         f"SELECT m.id, %s, m.tenant_id, %s, 'load' FROM {self._t('messages')} m WHERE m.conversation_id = %s "
                         "AND m.tenant_id = %s ORDER BY m.created_at DESC LIMIT 1 RETURNING message_id",
                         (self.t["user"], random.randint(1, 5), conv, self.t["tenant"]))
        if rows:
            self._sql("message feedbacks list", f"SELECT id, rating, feedback_text FROM {self._t('message_feedbacks')} "
                      "WHERE message_id = %s AND tenant_id = %s LIMIT 20", (rows[0][0], self.t["tenant"]))

    def _execution(self, metadata: str | None = None) -> Any:
        wf = random.choice(self.t["workflows"])
        rows = self._sql("execution insert (metadata)",
                         f"INSERT INTO {SCHEMA}.workflow_executions (execution_id, workflow_id, user_id, tenant_id, status, "
                         f"{self._c('metadata')}) VALUES (%s, %s, %s, %s, 'pending', %s) RETURNING id",
                         (f"load-{uuid.uuid4().hex}", wf, self.t["user"], self.t["tenant"], metadata))
        return rows[0][0] if rows else None

    @task(int(CONFIG["renamed"]["weights"]["execution_metadata"]))
    def execution_metadata(self) -> None:
        token, value = self._token()
        ex = self._execution(value)
        if ex is None:
            return
        self._meta_written("workflow_executions", ex, token)
        token, value = self._token()
        self._sql("execution metadata update", f"UPDATE {SCHEMA}.workflow_executions SET {self._c('metadata')} = %s "
                  "WHERE id = %s AND tenant_id = %s", (value, ex, self.t["tenant"]))
        self._meta_written("workflow_executions", ex, token)

    @task(int(CONFIG["renamed"]["weights"]["activity_metadata"]))
    def activity_metadata(self) -> None:
        token, value = self._token()
        rows = self._sql("activity insert (metadata)",
                         f"INSERT INTO {SCHEMA}.workspace_activities (workspace_id, user_id, tenant_id, action, resource_type, "
                         f"{self._c('metadata')}) VALUES (%s, %s, %s, 'viewed', 'dashboard', %s) RETURNING id",
                         (random.choice(self.t["workspaces"]), self.t["user"], self.t["tenant"], value))
        if rows:
            self._meta_written("workspace_activities", rows[0][0], token)

    @task(int(CONFIG["renamed"]["weights"]["node_metadata"]))
    def node_metadata(self) -> None:
        ex = self._execution()
        token, value = self._token()
        rows = self._sql("node execution insert (metadata)",
                         f"INSERT INTO {SCHEMA}.node_executions (workflow_execution_id, tenant_id, node_key, node_type, "
                         f"{self._c('metadata')}) VALUES (%s, %s, 'load', 'action', %s) RETURNING id",
                         (ex, self.t["tenant"], value)) if ex else []
        if rows:
            self._meta_written("node_executions", rows[0][0], token)

    @task(int(CONFIG["renamed"]["weights"]["queue_metadata"]))
    def queue_metadata(self) -> None:
        ex = self._execution()
        token, value = self._token()
        rows = self._sql("queue insert (metadata)",
                         f"INSERT INTO {SCHEMA}.workflow_execution_queue (workflow_execution_id, user_id, tenant_id, "
                         f"{self._c('metadata')}) VALUES (%s, %s, %s, %s) RETURNING id",
                         (ex, self.t["user"], self.t["tenant"], value)) if ex else []
        if rows:
            self._meta_written("workflow_execution_queue", rows[0][0], token)


    @task(int(CONFIG["renamed"]["weights"]["agent_provider"]))
    def agent_provider(self) -> None:
        """An agent created with its provider (the old application's ``model_provider``, a column the
        restructure drops: kept until the contract), read back."""
        token = uuid.uuid4().hex
        column = self._c("provider")
        rows = self._sql("agent insert (provider)", f"INSERT INTO {SCHEMA}.agents (name, user_id, tenant_id, workspace_id, "
                         f"{column}) VALUES ('load', %s, %s, %s, %s) RETURNING id",
                         (self.t["user"], self.t["tenant"], random.choice(self.t["workspaces"]), token))
        if rows:
            self._sql("agent read-after-write", f"SELECT {column} FROM {SCHEMA}.agents WHERE id = %s AND tenant_id = %s",
                      (rows[0][0], self.t["tenant"]),
                      lambda got: None if got and got[0][0] == token else f"agents.{column} reads {got!r} after writing {token}")

    @task(int(CONFIG["renamed"]["weights"]["user_membership"]))
    def user_membership(self) -> None:
        """A user of this tenant created, as each application does it: the old one sets ``users.tenant_id`` (a column
        the restructure drops, its pairs moved to ``user_tenant_roles``: kept until the contract), the new one adds
        the membership; then read back on both sides, where the other exists (the column, the sync trigger)."""
        tenant = str(self.t["tenant"])
        if self.old:
            rows = self._sql("user insert (tenant_id)", f"INSERT INTO {SCHEMA}.users (email, hashed_password, tenant_id) "
                             "VALUES (%s, 'load', %s) RETURNING id", (f"{uuid.uuid4().hex}@load.invalid", tenant))
        else:
            rows = self._sql("user insert", f"INSERT INTO {SCHEMA}.users (email, hashed_password) VALUES (%s, 'load') "
                             "RETURNING id", (f"{uuid.uuid4().hex}@load.invalid",))
            if rows:
                self._sql("membership insert", f"INSERT INTO {SCHEMA}.user_tenant_roles (user_id, tenant_id) "
                          "VALUES (%s, %s)", (rows[0][0], tenant))
        if not rows:
            return

        def check(got: list[tuple[Any, ...]]) -> str | None:
            column, member, synced = got[0] if got else (None, 0, False)
            if self.old and column != tenant:
                return f"users.tenant_id reads {column!r} after writing {tenant}"
            if (not self.old or synced) and not member:
                written = "users.tenant_id" if self.old else "its membership"
                return f"user {rows[0][0]} is no member of {tenant} after {written} was written"
            if not self.old and synced and column != tenant:
                return f"users.tenant_id reads {column!r} after the membership of {tenant} was written: not kept in sync"
            return None

        # the old column as a parameter of to_jsonb (as in _meta_written): the new application's text never names it
        self._sql("user read-after-write", f"SELECT to_jsonb(u) ->> %s, (SELECT count(*) FROM "
                  f"{SCHEMA}.user_tenant_roles r WHERE r.user_id = u.id AND r.tenant_id = %s::uuid), EXISTS (SELECT 1 FROM "
                  "pg_trigger WHERE tgname = 'users_tenant_id_compat_sync') FROM "
                  f"{SCHEMA}.users u WHERE u.id = %s", ("tenant_id", tenant, rows[0][0]), check)

    @task(int(CONFIG["renamed"]["weights"]["role_permissions"]))
    def role_permissions(self) -> None:
        """A role of this tenant created with two permissions, narrowed to one, read back after each write, deleted:
        the old application writes the list ``rbac_roles.permissions`` (dropped by the contract, its pairs moved to
        ``rbac_role_permissions``: kept until then) and no ``scope`` (added NOT NULL: filled for it), the new one
        writes ``scope`` and the pairs. Each side is checked against the other where both exist. The role is
        this task's own, so no other user's write can race the check."""
        tenant, name = str(self.t["tenant"]), f"load {uuid.uuid4().hex}"
        mine = f"SELECT id FROM {SCHEMA}.rbac_permissions WHERE tenant_id IS NULL OR tenant_id = %s"
        if self.old:
            rows = self._sql("role insert (permissions)", f"INSERT INTO {SCHEMA}.rbac_roles (name, tenant_id, permissions) "
                             f"SELECT %s, %s, coalesce(json_agg(p.key ORDER BY p.key), '[]') FROM {SCHEMA}.rbac_permissions "
                             f"p WHERE p.id IN ({mine} ORDER BY random() LIMIT 2) RETURNING id, permissions::text",
                             (name, tenant, tenant))
        else:
            rows = self._sql("role insert (grants)", f"WITH r AS (INSERT INTO {SCHEMA}.rbac_roles (name, tenant_id, scope) "
                             f"VALUES (%s, %s, 'tenant') RETURNING id) INSERT INTO {SCHEMA}.rbac_role_permissions (role_id, "
                             f"permission_id, granted_at) SELECT r.id, p.id, now() FROM r, ({mine} ORDER BY random() LIMIT 2) p "
                             "RETURNING role_id, NULL", (name, tenant, tenant))
        if not rows:
            return
        role, written = rows[0]
        self._grants_written(role, written)
        if self.old:
            rows = self._sql("role permissions update", f"UPDATE {SCHEMA}.rbac_roles SET permissions = CASE WHEN "
                             "json_array_length(permissions) > 1 THEN json_build_array(permissions ->> 0) ELSE '[]' END "
                             "WHERE id = %s RETURNING permissions::text", (role,))
        else:
            rows = self._sql("role grant delete", f"DELETE FROM {SCHEMA}.rbac_role_permissions WHERE id = (SELECT "
                             f"min(id::text)::uuid FROM {SCHEMA}.rbac_role_permissions WHERE role_id = %s) RETURNING NULL",
                             (role,))
        self._grants_written(role, rows[0][0] if rows else None)
        self._sql("role delete", f"DELETE FROM {SCHEMA}.rbac_roles WHERE id = %s", (role,))

    def _grants_written(self, role: Any, written: str | None) -> None:
        """The read-after-write of a role's permissions: the list reads what the old application ``written``, and the
        list and the pairs hold the same keys where the sync trigger keeps them in step (before the migration the list
        is the only record; after the contract, the pairs)."""
        def check(got: list[tuple[Any, ...]]) -> str | None:
            if not got:
                return f"role {role}: the row just written is not there"
            listed, granted, synced = got[0]
            if written is not None and json.loads(listed or "null") != json.loads(written):
                return f"rbac_roles.permissions reads {listed} after writing {written}"
            if synced and sorted(json.loads(listed or "[]")) != sorted(json.loads(granted or "[]")):
                return f"rbac_roles.permissions reads {listed} but the role's grants are {granted}: not kept in sync"
            return None

        # the old column as a parameter of to_jsonb (as in _meta_written): the new application's text never names it
        self._sql("role read-after-write", f"SELECT (to_jsonb(r) -> %s)::text, (SELECT json_agg(p.key ORDER BY p.key) "
                  f"FROM {SCHEMA}.rbac_role_permissions x JOIN {SCHEMA}.rbac_permissions p ON p.id = x.permission_id "
                  "WHERE x.role_id = r.id)::text, EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = "
                  f"'rbac_roles_permissions_compat_sync') FROM {SCHEMA}.rbac_roles r WHERE r.id = %s", ("permissions", role),
                  check)


class LegacyAppUser(_RenamedUser):
    """The application deployed before the restructure: old table and column names, the dropped columns read.

    Runs on the legacy schema and, through the compatibility views and synced columns, on the expanded one.
    """

    old = True


class NewAppUser(_RenamedUser):
    """The application deployed at the switch: new names only; runs on the expanded schema and the contracted one."""


class StatementUser(_SqlUser):
    """Statements taken from ``pg_stat_statements``, each run as often as its calls say, with values of the tenant.

    A user acts for one tenant of the pool and runs only the statements every parameter of which has a
    value for that tenant (``workload.runnable``); one task is one statement, so one request.
    """

    def on_start(self) -> None:
        super().on_start()
        spec = self.ctx["statements"]
        if not spec or not spec["statements"]:
            raise StopUser("no statement workload (SYNAP_LOAD_STATEMENTS)")
        self.spec = spec
        choices = [(t, [s for s in spec["statements"] if all(spec["samples"][t["tenant"]].get(p["key"])
                                                              for p in s["params"] if p["source"] in workload.SAMPLED)])
                   for t in self.ctx["pool"]]
        choices = [(t, mine) for t, mine in choices if mine]
        if not choices:
            raise StopUser("no tenant of the pool can run any statement of the workload")
        self.t, self.statements = random.choice(choices)
        self.values = spec["samples"][self.t["tenant"]]
        self.weights = [s["weight"] for s in self.statements]

    @task
    def statement(self) -> None:
        (s,) = random.choices(self.statements, self.weights)
        params = {f"p{p['n']}": workload.value(p, self.t["tenant"], self.values, self.spec, random.choice)
                  for p in s["params"]}
        self._sql(s["name"], s["sql"], params)
