"""The reference API and the API checks, on a real migrated database; seeded defects they must catch."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from fastapi import FastAPI, HTTPException, Request
from schemathesis.core.failures import FailureGroup
from schemathesis.python.asgi import get_client
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session
from starlette.datastructures import MutableHeaders
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from synap_verify import api as synap_api
from synap_verify import datagen, migrate
from synap_verify.catalog import read_catalog
from synap_verify.datagen.schema import load_schema_file
from synap_verify.errors import SynapError
from synap_verify.resources import LEGACY_SCHEMA, REFERENCE_MIGRATIONS
from synap_verify.server import Server, sqlalchemy_url
from synap_verify.settings import Settings
from synapscale.api import deps
from synapscale.api.app import create_app
from synapscale.models import SCHEMA, Base

PARTIAL_MODELS = {"tenants", "users", "user_tenant_roles"}  # modelled only as far as tenant resolution needs


@pytest.fixture(scope="module")
def server(pg_factory: Callable[[], Server]) -> Server:
    return pg_factory()


@pytest.fixture(scope="module")
def migrated(server: Server) -> str:
    """Legacy schema, tiny fixture data, every reference migration: the state the API serves."""
    with server.connect() as conn:
        conn.execute("CREATE DATABASE api_migrated")
    dsn = server.dsn("api_migrated")
    load_schema_file(dsn, LEGACY_SCHEMA)
    with psycopg.connect(dsn, autocommit=True) as conn:
        catalog = read_catalog(conn, (SCHEMA,))
    datagen.fill(dsn, catalog, "tiny", 1)
    migrate.upgrade(dsn, REFERENCE_MIGRATIONS, ["heads"])
    return dsn


@pytest.fixture(scope="module")
def ids(migrated: str) -> dict[str, dict[str, str]]:
    with psycopg.connect(migrated, autocommit=True) as conn:
        return synap_api.tenant_ids(conn)


@pytest.fixture(scope="module")
def tenants(ids: dict[str, dict[str, str]]) -> tuple[str, str]:
    return synap_api.pick_tenants(ids)


def _headers(tenant: str) -> dict[str, str]:
    return {"X-Tenant-ID": tenant, "Authorization": f"Bearer {tenant}"}


def _probe(app: FastAPI, migrated: str, ids: dict[str, dict[str, str]], tenants: tuple[str, str]) -> list[synap_api.Probe]:
    schema = synap_api.load_schema(synap_api.ApiTarget(), app)
    with psycopg.connect(migrated, autocommit=True) as conn:
        return synap_api.probe_cross_tenant(schema, _headers(tenants[0]), synap_api.param_ids(ids[tenants[1]]),
                                            synap_api.database_state(conn, tenants[1]))


def test_models_agree_with_the_migrated_schema(migrated: str) -> None:
    """Autogenerate against the migrated database finds no column the models get wrong (type, nullability,
    missing or extra). Indexes, constraints and policies belong to the migrations and are not compared."""
    names = {t.name for t in Base.metadata.tables.values()}

    def include_name(name: str | None, type_: str, _: Any) -> bool:
        return name == SCHEMA if type_ == "schema" else name in names if type_ == "table" else True

    engine = create_engine(sqlalchemy_url(migrated))
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"include_schemas": True, "include_name": include_name, "compare_type": True})
        diffs = compare_metadata(context, Base.metadata)
    engine.dispose()
    flat = [d for diff in diffs for d in (diff if isinstance(diff, list) else [diff])]
    column_ops = [d for d in flat if d[0] in ("add_table", "remove_table", "add_column", "modify_type", "modify_nullable")
                  or d[0] == "remove_column" and d[2] not in PARTIAL_MODELS]
    assert not column_ops, "\n".join(map(str, column_ops))


def test_reference_api_keeps_tenants_apart(migrated: str, ids: dict[str, dict[str, str]],
                                           tenants: tuple[str, str]) -> None:
    probes = _probe(create_app(sqlalchemy_url(migrated)), migrated, ids, tenants)
    assert [p for p in probes if p.status is not None], "nothing was probed"
    assert not [p for p in probes if p.problem], [f"{p.operation}: {p.problem}" for p in probes if p.problem]


def test_reference_document_keeps_the_legacy_aliases(migrated: str) -> None:
    schema = synap_api.load_schema(synap_api.ApiTarget(), create_app(sqlalchemy_url(migrated)))
    assert synap_api.compat_problems(schema.raw_schema) == []


@pytest.mark.filterwarnings("error::DeprecationWarning")
def test_legacy_alias_round_trip(migrated: str, tenants: tuple[str, str]) -> None:
    """``meta_data`` sent on the old name is stored as ``metadata`` and returned under both names, deprecated
    in the document only: returning it warns nobody (pydantic's ``deprecated=True`` warned on every response)."""
    client = get_client(create_app(sqlalchemy_url(migrated)))
    headers = _headers(tenants[0])
    workspace = client.get("/workspaces", headers=headers).json()["items"][0]["id"]
    workflow = client.post("/workflows", headers=headers, json={"name": "w", "workspace_id": workspace}).json()["id"]
    created = client.post(f"/workflows/{workflow}/executions", headers=headers, json={"meta_data": {"k": "v"}})
    assert created.status_code == 201
    body = client.get(f"/executions/{created.json()['id']}", headers=headers).json()
    assert body["metadata"] == body["meta_data"] == {"k": "v"}
    filtered = client.get(f"/workflows/{workflow}/executions?metadata_key=k&metadata_value=v", headers=headers).json()
    assert filtered["total"] == 1
    assert client.get(f"/llms_messages/{uuid.uuid4()}", headers=headers).status_code == 404


def test_reference_api_never_prepares_statements(migrated: str, tenants: tuple[str, str]) -> None:
    """A prepared statement would fail once a migration step changes its result type (json -> jsonb)."""
    app = create_app(sqlalchemy_url(migrated))
    client = get_client(app)
    for _ in range(8):  # psycopg's default would prepare the request's queries from the 5th run on
        assert client.get("/workspaces", headers=_headers(tenants[0])).status_code == 200
    with app.state.engine.connect() as conn:  # the pooled connection those requests used
        assert conn.connection.dbapi_connection.prepare_threshold is None  # type: ignore[union-attr]
        assert conn.exec_driver_sql("SELECT count(*) FROM pg_prepared_statements").scalar() == 0


def test_a_request_runs_as_the_app_role_for_its_tenant(migrated: str, tenants: tuple[str, str]) -> None:
    """What every operation's session runs as: the non-owner app role (so RLS applies even where the owner
    would bypass it) with the request's tenant set, for the request's transaction only."""
    app = create_app(sqlalchemy_url(migrated))

    @app.get("/whoami")
    def whoami(ctx: deps.CtxDep) -> list[str]:
        return list(ctx.session.execute(text("SELECT current_user, current_setting('app.current_tenant_id')")).one())

    client = get_client(app)
    assert client.get("/whoami", headers=_headers(tenants[0])).json() == ["synapscale_app", tenants[0]]
    with app.state.engine.connect() as conn:  # the pooled connection the request used, after it
        assert conn.exec_driver_sql("SELECT current_user = session_user, "
                                    "current_setting('app.current_tenant_id', true) IS DISTINCT FROM %s",
                                    (tenants[0],)).one() == (True, True)


def _leaky(keep_rls: bool) -> Any:
    """Seeded defect: a tenant context whose ``owned`` forgets the tenant filter (and, unless ``keep_rls``,
    a session that never drops to the app role, so RLS does not apply either)."""

    class LeakyCtx(deps.Ctx):
        def owned(self, model: Any, id_: uuid.UUID) -> Any:
            obj = self.session.scalar(select(model).where(model.id == id_))
            if obj is None:
                raise HTTPException(404, "not found")
            return obj

    def context(request: Request) -> Iterator[deps.Ctx]:
        tenant = uuid.UUID(request.headers["X-Tenant-ID"])
        with Session(request.app.state.engine, expire_on_commit=False) as session, session.begin():
            if keep_rls:
                session.execute(select(func.set_config("role", request.app.state.app_role, True)))
            session.execute(select(func.set_config("app.current_tenant_id", str(tenant), True)))
            yield LeakyCtx(session, tenant, None)

    return context


def test_probe_catches_an_endpoint_that_forgets_the_tenant(migrated: str, ids: dict[str, dict[str, str]],
                                                           tenants: tuple[str, str]) -> None:
    app = create_app(sqlalchemy_url(migrated))
    app.dependency_overrides[deps.tenant_context] = _leaky(keep_rls=False)
    leaks = [p for p in _probe(app, migrated, ids, tenants) if p.problem]
    labels = {p.operation for p in leaks}
    assert "GET /workflows/{workflow_id}" in labels and "GET /workspaces/{workspace_id}" in labels, labels
    assert any("changed tenant B's" in (p.problem or "") for p in leaks), "writes into tenant B went unnoticed"


def test_rls_is_the_safety_net_under_a_forgotten_filter(migrated: str, ids: dict[str, dict[str, str]],
                                                        tenants: tuple[str, str]) -> None:
    """The same forgotten filter, but requests still run as the non-owner app role: RLS hides B's rows."""
    app = create_app(sqlalchemy_url(migrated))
    app.dependency_overrides[deps.tenant_context] = _leaky(keep_rls=True)
    assert not [p for p in _probe(app, migrated, ids, tenants) if p.problem]


def test_checks_catch_a_field_renamed_without_alias(migrated: str, tenants: tuple[str, str]) -> None:
    """Seeded defect: ``meta_data`` dropped from responses (the document still promises it), and, separately,
    dropped from the document too."""
    app = create_app(sqlalchemy_url(migrated))

    @app.middleware("http")
    async def drop_alias(request: Request, call_next: Any) -> Any:
        response = await call_next(request)
        if request.url.path.startswith("/executions/") and response.status_code == 200:
            body = json.loads(b"".join([chunk async for chunk in response.body_iterator]))
            body.pop("meta_data", None)
            return JSONResponse(body)
        return response

    headers = _headers(tenants[0])
    client = get_client(app)
    workspace = client.get("/workspaces", headers=headers).json()["items"][0]["id"]
    workflow = client.post("/workflows", headers=headers, json={"name": "w", "workspace_id": workspace}).json()["id"]
    execution = client.post(f"/workflows/{workflow}/executions", headers=headers, json={"metadata": {"a": 1}}).json()["id"]

    schema = synap_api.load_schema(synap_api.ApiTarget(), app)
    case = schema.find_operation_by_label("GET /executions/{execution_id}").Case(path_parameters={"execution_id": execution})
    response = case.call(headers=dict(headers))
    with pytest.raises(FailureGroup) as failure:
        case.validate_response(response, headers=dict(headers), additional_checks=synap_api.EXTRA_CHECKS)
    caught = {type(e).__name__ for e in failure.value.exceptions}
    # Schemathesis's schema conformance and the alias check both see it
    assert {"JsonSchemaError", "CustomFailure"} <= caught, caught

    document = app.openapi()
    for component in document["components"]["schemas"].values():
        component.get("properties", {}).pop("meta_data", None)
    problems = synap_api.compat_problems(document)
    assert any("ExecutionOut" in p and "meta_data" in p for p in problems), problems


class _Allow:
    """Seeded defect: every 405's ``Allow`` header replaced with ``value``."""

    def __init__(self, app: ASGIApp, value: str) -> None:
        self.app, self.value = app, value

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_allow(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                MutableHeaders(scope=message)["Allow"] = self.value
            await send(message)

        await self.app(scope, receive, send_allow)


@pytest.mark.parametrize("allow", [None, "", "GET"], ids=["reference", "empty", "one-method"])
def test_checks_catch_a_405_that_hides_a_documented_method(migrated: str, tenants: tuple[str, str],
                                                           allow: str | None) -> None:
    """The reference API's 405 at ``/workspaces`` lists GET and POST. Seeded defects: an empty ``Allow``
    (what the reference API's middleware answered once FastAPI kept included routers whole, and Schemathesis's
    own check took), one method only (FastAPI without the middleware)."""
    app = create_app(sqlalchemy_url(migrated))
    if allow is not None:
        app.add_middleware(_Allow, value=allow)
    schema = synap_api.load_schema(synap_api.ApiTarget(), app)
    case = schema.find_operation_by_label("GET /workspaces").Case(method="DELETE")
    response = case.call(headers=_headers(tenants[0]))
    assert response.status_code == 405 and synap_api.allow_lists_the_documented_methods in synap_api.EXTRA_CHECKS
    if allow is None:
        assert response.headers["allow"] == ["GET, POST"]
        assert synap_api.allow_lists_the_documented_methods(None, response, case)
        return
    with pytest.raises(AssertionError, match="answered 405 with Allow .*: the document also gives it .*POST"):
        synap_api.allow_lists_the_documented_methods(None, response, case)


def test_a_405_an_operation_answers_itself_is_its_own(migrated: str) -> None:
    """A 405 for a documented method (a state the operation refuses) keeps the endpoint's ``Allow`` and is not
    judged by the check: only the router's 405, for a method no route takes, must list every method."""
    app = create_app(sqlalchemy_url(migrated))

    @app.get("/closed")
    def closed() -> None:
        return None

    @app.post("/closed")
    def refuse() -> None:
        raise HTTPException(405, "closed for writes", headers={"Allow": "GET"})

    response = get_client(app).post("/closed")
    assert response.status_code == 405 and response.headers["allow"] == "GET"
    schema = synap_api.load_schema(synap_api.ApiTarget(), app)
    case = schema.find_operation_by_label("POST /closed").Case()
    answer = SimpleNamespace(status_code=405, headers={"allow": ["GET"]})
    assert synap_api.allow_lists_the_documented_methods(None, answer, case) is None


def test_a_missing_openapi_document_is_one_clear_error() -> None:
    with pytest.raises(SynapError, match=r"^no usable OpenAPI document at .*: ") as exc:
        synap_api.load_schema(synap_api.ApiTarget(app="x:app"), FastAPI(openapi_url=None))
    assert "\n" not in str(exc.value)


def test_a_broken_openapi_document_is_one_clear_error() -> None:
    broken = FastAPI(openapi_url=None)

    @broken.get("/openapi.json")
    def document() -> dict[str, str]:
        return {"hello": "world"}

    with pytest.raises(SynapError, match="no usable OpenAPI document") as exc:
        synap_api.load_schema(synap_api.ApiTarget(app="x:app"), broken)
    assert "\n" not in str(exc.value)


def test_header_option_is_validated() -> None:
    assert synap_api.parse_header("Authorization: Bearer abc") == ("Authorization", "Bearer abc")
    with pytest.raises(SynapError, match="Name: value"):
        synap_api.parse_header("Authorization Bearer abc")


def test_target_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNAP_API_URL", "http://127.0.0.1:8000/")
    monkeypatch.setenv("SYNAP_API_HEADER", "Authorization: Bearer t\nX-Extra: 1")
    target = synap_api.api_target(Settings.resolve())
    assert target.url == "http://127.0.0.1:8000" and target.headers == {"Authorization": "Bearer t", "X-Extra": "1"}
    monkeypatch.setenv("SYNAP_API", "pkg:app")
    with pytest.raises(SynapError, match="two different APIs"):
        Settings.resolve()
