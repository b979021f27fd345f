"""Tenant users of synapscale for Locust 2: the reference API mix, and a SQL mix valid on both sides of a migration.

Run by ``synap-verify load``, which passes everything through the environment:

- ``SYNAP_LOAD_CONFIG``: ``config.toml`` (weights, think times; default: beside this file);
- ``SYNAP_LOAD_POOL``: a JSON list of tenants with the ids their users act on;
- ``SYNAP_LOAD_TIMELINE``: a CSV file receiving one line per request (start, latency, outcome), the
  per-request timeline the migration verdict is computed from;
- ``SYNAP_LOAD_DSN``: the database of ``SqlTenantUser`` (a libpq connection string);
- ``SYNAP_LOAD_PREPARE_THRESHOLD``: ``off`` or a count, ``SqlTenantUser``'s prepared statements (default: config);
- ``SYNAP_LOAD_STOP_FILE``: when this file appears the run ends early (``-t`` stays the hard bound);
- ``SYNAP_LOAD_ALLOWED_URL``: a staging URL allowed besides loopback.

Pick the user class on the command line (``locust ... ApiTenantUser`` or ``SqlTenantUser``).
"""

from __future__ import annotations

import csv
import json
import os
import random
import time
import tomllib
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import gevent
import psycopg
from locust import User, between, events, task
from locust.contrib.fasthttp import FastHttpUser
from locust.env import Environment
from locust.exception import StopUser

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
CONFIG = tomllib.loads(Path(os.environ.get("SYNAP_LOAD_CONFIG", Path(__file__).with_name("config.toml"))).read_text())
THINK = between(float(CONFIG["think_time"]["min"]), float(CONFIG["think_time"]["max"]))
SEARCH_TERMS = ("flow", "agent", "report", "sync", "ai", "data", "bot", "mail")
APP_NAME = "synap-load"  # how the blocking sampler tells load sessions from the migration's
# SqlTenantUser's server-side prepared statements: "off" (never, as a zero-downtime application must) or after
# that many runs of a statement; SYNAP_LOAD_PREPARE_THRESHOLD (from --prepare-threshold) wins over the config
_PREPARE = os.environ.get("SYNAP_LOAD_PREPARE_THRESHOLD", str(CONFIG["run"].get("prepare_threshold", "off"))).lower()
PREPARE_THRESHOLD = None if _PREPARE in ("off", "none", "false") else int(_PREPARE)


def _pool() -> list[dict[str, Any]]:
    path = os.environ.get("SYNAP_LOAD_POOL")
    return json.loads(Path(path).read_text()) if path else []


POOL = _pool()


class _Timeline:
    """Every request, appended as it completes: the clock is the same as the migration's (one machine)."""

    def __init__(self) -> None:
        self.file: Any = None
        self.writer: Any = None

    def open(self, path: str) -> None:
        self.file = open(path, "w", newline="")  # noqa: SIM115 - closed on quitting
        self.writer = csv.writer(self.file)
        self.writer.writerow(["start", "ms", "type", "name", "ok", "error"])

    def record(self, request_type: str, name: str, response_time: float, exception: BaseException | None,
               start_time: float | None = None, **_: Any) -> None:
        if self.writer is None:
            return
        start = start_time if start_time is not None else time.time() - response_time / 1000
        error = "" if exception is None else f"{type(exception).__name__}: {(str(exception).splitlines() or [''])[0][:200]}"
        self.writer.writerow([f"{start:.6f}", f"{response_time:.3f}", request_type, name, int(exception is None), error])

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
    if path := os.environ.get("SYNAP_LOAD_TIMELINE"):
        TIMELINE.open(path)
        events.request.add_listener(TIMELINE.record)
    if stop := os.environ.get("SYNAP_LOAD_STOP_FILE"):
        gevent.spawn(_watch_stop_file, environment, Path(stop))


@events.test_stop.add_listener
def _on_stop(**_: Any) -> None:
    if TIMELINE.file is not None:
        TIMELINE.file.flush()


@events.quitting.add_listener
def _on_quit(**_: Any) -> None:
    TIMELINE.close()


class ApiTenantUser(FastHttpUser):
    """A tenant's member using the reference API: dashboards, workflows, chat, marketplace, activity."""

    wait_time = THINK
    connection_timeout = 10.0
    network_timeout = 30.0

    def on_start(self) -> None:
        if not POOL:
            raise StopUser("no tenant pool (SYNAP_LOAD_POOL)")
        self.t = random.choice(POOL)
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


class SqlTenantUser(User):
    """The same mix as SQL a tenant's requests issue, valid before and after every restructure step.

    Explicit ``tenant_id`` filters (the connecting role bypasses RLS, which does not exist before the
    migration); json columns read as ``::text`` (``->>`` fails on legacy json holding ``\\u0000``) and
    written from untyped literals, which both ``json`` and ``jsonb`` accept; no renamed table or column,
    no dropped column. ``dashboard get`` is a ``SELECT *``, as a hand-written query often is.
    """

    wait_time = THINK

    def on_start(self) -> None:
        if not POOL or not os.environ.get("SYNAP_LOAD_DSN"):
            raise StopUser("no tenant pool or database (SYNAP_LOAD_POOL, SYNAP_LOAD_DSN)")
        self.t = random.choice(POOL)
        self.conn: psycopg.Connection | None = None

    def on_stop(self) -> None:
        if self.conn is not None:
            self.conn.close()

    def _connection(self) -> psycopg.Connection:
        if self.conn is None or self.conn.closed:
            self.conn = psycopg.connect(os.environ["SYNAP_LOAD_DSN"], autocommit=True, application_name=APP_NAME,
                                        connect_timeout=10, prepare_threshold=PREPARE_THRESHOLD,
                                        options=f"-c statement_timeout={CONFIG['run']['statement_timeout']}")
        return self.conn

    def _sql(self, name: str, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """Run one statement, reported to Locust as one request named ``name``."""
        start = time.time()
        began = time.perf_counter()
        rows: list[tuple[Any, ...]] = []
        error: BaseException | None = None
        try:
            cur = self._connection().execute(sql, params)  # type: ignore[arg-type]
            rows = cur.fetchall() if cur.description else []
        except psycopg.Error as exc:
            error = exc
            if self.conn is not None and self.conn.broken:
                self.conn = None
        events.request.fire(request_type="SQL", name=name, response_time=(time.perf_counter() - began) * 1000,
                            response_length=len(rows), exception=error, context={}, start_time=start)
        return rows

    @task(int(CONFIG["sql"]["weights"]["browse_dashboards"]))
    def browse_dashboards(self) -> None:
        rows = self._sql("dashboards list", "SELECT id, name, layout::text, widgets::text "
                         "FROM synapscale_db.analytics_dashboards WHERE tenant_id = %s ORDER BY created_at, id LIMIT 20",
                         (self.t["tenant"],))
        if rows:
            self._sql("dashboard get", "SELECT * FROM synapscale_db.analytics_dashboards WHERE id = %s AND tenant_id = %s",
                      (random.choice(rows)[0], self.t["tenant"]))

    @task(int(CONFIG["sql"]["weights"]["run_workflow"]))
    def run_workflow(self) -> None:
        wf = random.choice(self.t["workflows"])
        self._sql("execution insert",
                  "INSERT INTO synapscale_db.workflow_executions (execution_id, workflow_id, user_id, tenant_id, status, "
                  "input_data) VALUES (%s, %s, %s, %s, 'pending', %s)",
                  (f"load-{uuid.uuid4().hex}", wf, self.t["user"], self.t["tenant"],
                   json.dumps({"source": "load", "n": random.randint(1, 1000)})))
        self._sql("executions list", "SELECT id, status, left(input_data::text, 200) FROM synapscale_db.workflow_executions "
                  "WHERE workflow_id = %s AND tenant_id = %s ORDER BY created_at DESC LIMIT 10", (wf, self.t["tenant"]))

    @task(int(CONFIG["sql"]["weights"]["chat"]))
    def chat(self) -> None:
        conv = random.choice(self.t["conversations"])
        self._sql("conversations list", "SELECT id, title, settings::text FROM synapscale_db.llms_conversations "
                  "WHERE tenant_id = %s ORDER BY created_at DESC LIMIT 20", (self.t["tenant"],))
        self._sql("conversation touch", "UPDATE synapscale_db.llms_conversations SET last_message_at = now() "
                  "WHERE id = %s AND tenant_id = %s", (conv, self.t["tenant"]))

    @task(int(CONFIG["sql"]["weights"]["search_marketplace"]))
    def search_marketplace(self) -> None:
        self._sql("components search", "SELECT id, name, category, downloads_count FROM synapscale_db.marketplace_components "
                  "WHERE name ILIKE %s ORDER BY downloads_count DESC, id LIMIT 20", (f"%{random.choice(SEARCH_TERMS)}%",))

    @task(int(CONFIG["sql"]["weights"]["write_activity"]))
    def write_activity(self) -> None:
        ws = random.choice(self.t["workspaces"])
        self._sql("activity insert", "INSERT INTO synapscale_db.workspace_activities (workspace_id, user_id, tenant_id, "
                  "action, resource_type, description) VALUES (%s, %s, %s, 'viewed', 'dashboard', 'load')",
                  (ws, self.t["user"], self.t["tenant"]))
        self._sql("event insert", "INSERT INTO synapscale_db.analytics_events (event_type, category, user_id, tenant_id, "
                  "workspace_id, properties) VALUES ('page_view', 'load', %s, %s, %s, %s)",
                  (self.t["user"], self.t["tenant"], ws, json.dumps({"page": "home", "ms": random.randint(1, 900)})))

    @task(int(CONFIG["sql"]["weights"]["read_events"]))
    def read_events(self) -> None:
        self._sql("events list", "SELECT id, event_type, left(properties::text, 200) FROM synapscale_db.analytics_events "
                  "WHERE workspace_id = %s AND tenant_id = %s ORDER BY occurred_at DESC LIMIT 20",
                  (random.choice(self.t["workspaces"]), self.t["tenant"]))
