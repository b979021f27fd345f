"""Application factory: routes, database errors as 4xx, and an OpenAPI document with links.

``create_app(database_url)`` connects with the given URL (a role that may ``SET ROLE`` to the app
role, typically the schema owner's login) and serves every request as ``app_role``.
``app`` is the same application configured from ``SYNAPSCALE_DATABASE_URL``.
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import create_engine, make_url
from sqlalchemy.exc import DataError, IntegrityError
from starlette.middleware.base import RequestResponseEndpoint
from starlette.responses import Response
from starlette.routing import Match

from synapscale.api import agents, analytics, conversations, marketplace, tags, templates, workflows, workspaces

DESCRIPTION = """\
Reference API of the restructured `synapscale_db`.

**Tenant**: every operation needs `X-Tenant-ID: <tenant uuid>` or `Authorization: Bearer <tenant uuid>`
(a stand-in token scheme). Another tenant's id answers 404, exactly like a missing one. Writes are
recorded under `X-User-ID: <user uuid>` (a member of the tenant) or, without it, the tenant's first
active member.

**Backward compatibility** (PRD 11.2): `meta_data` is accepted and returned beside `metadata`,
`model_provider` (dropped from `agents`) beside `provider`, and the paths of the renamed tables
(`/llms_messages/...`, `/llms_message_feedbacks/...`) still answer; all are marked `deprecated` here and
will be removed once clients have moved.
"""


def _conflict(_: Request, exc: Exception) -> JSONResponse:
    """A constraint refused the change: the client can fix the request, the server did nothing wrong."""
    diag = getattr(getattr(exc, "orig", None), "diag", None)
    name = getattr(diag, "constraint_name", None) or "a constraint"
    return JSONResponse({"detail": f"conflict with {name}"}, status_code=409)


def _bad_value(_: Request, exc: Exception) -> JSONResponse:
    diag = getattr(getattr(exc, "orig", None), "diag", None)
    return JSONResponse({"detail": f"value refused by the database: {getattr(diag, 'message_primary', exc)}"},
                        status_code=422)


async def _allow_header(request: Request, call_next: RequestResponseEndpoint) -> Response:
    """A 405 lists every method of the path (FastAPI has one route per method, so Starlette lists one)."""
    response = await call_next(request)
    if response.status_code == 405:
        methods = {m for route in request.app.routes if route.matches(request.scope)[0] is not Match.NONE
                   for m in getattr(route, "methods", None) or ()}
        response.headers["Allow"] = ", ".join(sorted(methods))
    return response


async def _single_valued_query(request: Request, call_next: RequestResponseEndpoint) -> Response:
    """Every query parameter of this API takes one value: a repeated one is refused, not silently the last."""
    keys = [key for key, _ in request.query_params.multi_items()]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        errors = [{"loc": ["query", key], "msg": "takes one value, given more than once", "type": "value_error"}
                  for key in repeated]  # the shape FastAPI documents for every 422
        return JSONResponse({"detail": errors}, status_code=422)
    return await call_next(request)


def _links(schema: dict[str, Any]) -> None:
    """Add OpenAPI links from each create operation (``x-creates: <param>``) to every operation taking that id.

    Schemathesis's stateful phase follows these links: create, then read, update, list children, delete.
    """
    operations = [(path, method, op) for path, item in schema["paths"].items() for method, op in item.items()]
    for path, _, op in operations:
        param = op.pop("x-creates", None)
        if not param:
            continue
        links: dict[str, Any] = {}
        for _, _, target in operations:
            names = [p["name"] for p in target.get("parameters", []) if p["in"] == "path"]
            # the other path parameters must be known from the create request itself
            if param not in names or target.get("deprecated") or any(
                    n != param and f"{{{n}}}" not in path for n in names):
                continue
            parameters = {n: "$response.body#/id" if n == param else f"$request.path.{n}" for n in names}
            links[target["operationId"]] = {"operationId": target["operationId"], "parameters": parameters}
        op["responses"]["201"]["links"] = links


def no_prepared_statements(database_url: str) -> dict[str, Any]:
    """Connection arguments that keep psycopg from preparing statements on the server.

    psycopg 3 prepares a statement after 5 runs on a connection, and SQLAlchemy keeps that default. A
    prepared statement whose result type a migration step changes (``json`` -> ``jsonb``) then fails
    with "cached plan must not change result type" on every pooled connection until it is replaced,
    so an application that stays up across the migration must not prepare (docs/decisions.md).
    """
    return {"prepare_threshold": None} if make_url(database_url).get_driver_name() == "psycopg" else {}


def create_app(database_url: str, app_role: str = "synapscale_app") -> FastAPI:
    """The API on ``database_url``; requests run as ``app_role`` (non-owner, subject to RLS)."""
    app = FastAPI(title="SynapScale API", version="2.0.0", description=DESCRIPTION)
    app.state.engine = create_engine(database_url, pool_pre_ping=True, connect_args=no_prepared_statements(database_url))
    app.state.app_role = app_role
    for module in (workspaces, workflows, agents, templates, tags, conversations, marketplace):
        app.include_router(module.router)
    app.include_router(analytics.router)
    app.include_router(analytics.billing)
    app.add_exception_handler(IntegrityError, _conflict)
    app.add_exception_handler(DataError, _bad_value)
    app.middleware("http")(_allow_header)
    app.middleware("http")(_single_valued_query)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            _links(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


app = create_app(os.environ.get("SYNAPSCALE_DATABASE_URL", "postgresql+psycopg:///synapscale"))
