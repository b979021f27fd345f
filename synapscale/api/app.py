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
from starlette.datastructures import MutableHeaders, QueryParams
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")


def _conflict(_: Request, exc: Exception) -> JSONResponse:
    """A constraint refused the change: the client can fix the request, the server did nothing wrong."""
    diag = getattr(getattr(exc, "orig", None), "diag", None)
    name = getattr(diag, "constraint_name", None) or "a constraint"
    return JSONResponse({"detail": f"conflict with {name}"}, status_code=409)


def _bad_value(_: Request, exc: Exception) -> JSONResponse:
    diag = getattr(getattr(exc, "orig", None), "diag", None)
    return JSONResponse({"detail": f"value refused by the database: {getattr(diag, 'message_primary', exc)}"},
                        status_code=422)


class AllowEveryMethod:
    """The router's 405 lists every method of the path: FastAPI has one route per method, so Starlette lists one.

    Only the router's own 405 (no route takes the request's method) is rewritten: a 405 an endpoint raises
    keeps its ``Allow``. Plain ASGI (not ``@app.middleware``): ``BaseHTTPMiddleware`` runs each request
    through a task group and memory streams; this only looks at the response's first message."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        asked = dict(scope)  # as it came in: routing adds to the scope on the way down

        async def send_allow(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                methods = _methods(asked)
                if methods and asked["method"] not in methods:
                    MutableHeaders(scope=message)["Allow"] = ", ".join(methods)
            await send(message)

        await self.app(scope, receive, send_allow)


def _methods(scope: Scope) -> list[str]:
    """The methods some route of the application answers at the scope's path (asked route by route, so an
    included router answers for its own routes)."""
    routes = scope["app"].routes
    return [m for m in METHODS if any(route.matches({**scope, "method": m})[0] is Match.FULL for route in routes)]


class SingleValuedQuery:
    """Every query parameter of this API takes one value: a repeated one is refused, not silently the last."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            keys = [key for key, _ in QueryParams(scope["query_string"]).multi_items()]
            repeated = sorted({key for key in keys if keys.count(key) > 1})
            if repeated:
                errors = [{"loc": ["query", key], "msg": "takes one value, given more than once", "type": "value_error"}
                          for key in repeated]  # the shape FastAPI documents for every 422
                await JSONResponse({"detail": errors}, status_code=422)(scope, receive, send)
                return
        await self.app(scope, receive, send)


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
    app.add_middleware(AllowEveryMethod)
    app.add_middleware(SingleValuedQuery)  # outermost: a refused query reaches no route

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
