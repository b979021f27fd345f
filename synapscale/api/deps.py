"""Per-request tenant context: who is asking, and a database session that can only see their rows.

The tenant comes from ``X-Tenant-ID: <uuid>`` or ``Authorization: Bearer <tenant uuid>`` (a stand-in
token scheme: a real deployment puts a verified token here and maps it to the same uuid). Every
request runs in one transaction that first drops to the non-owner application role and sets the
tenant, both with ``set_config(..., true)`` (= ``SET LOCAL``) in one statement, so row-level security
filters every statement even where the application's own ``tenant_id`` filter were forgotten.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, HTTPException, Query, Request, Response, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from synapscale.models import Tenant, UserTenantRole

bearer = HTTPBearer(auto_error=False, scheme_name="TenantBearer",
                    description="Stand-in scheme: the bearer token is the tenant's uuid.")
tenant_header = APIKeyHeader(name="X-Tenant-ID", scheme_name="TenantHeader", auto_error=False, description="The tenant's uuid.")

M = TypeVar("M")


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def _uuid(raw: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw.strip())
    except ValueError:
        raise _unauthorized(f"{what} is not a uuid") from None


@dataclass
class Ctx:
    """The request's tenant, its optional acting user, and its RLS-bound session."""

    session: Session
    tenant_id: uuid.UUID
    user_id: uuid.UUID | None

    def acting_user(self) -> uuid.UUID:
        """The user a write is recorded under: X-User-ID if given, else the tenant's first active member."""
        if self.user_id is not None:
            return self.user_id
        found = self.session.scalar(
            select(UserTenantRole.user_id)
            .where(UserTenantRole.tenant_id == self.tenant_id, UserTenantRole.is_active)
            .order_by(UserTenantRole.created_at, UserTenantRole.user_id).limit(1))
        if found is None:
            raise HTTPException(403, "the tenant has no active member to act as (send X-User-ID)")
        return found

    def owned(self, model: type[M], id_: uuid.UUID) -> M:
        """The tenant's row with this id, or 404: another tenant's id is indistinguishable from a missing one."""
        obj = self.session.scalar(
            select(model).where(model.id == id_, model.tenant_id == self.tenant_id))  # type: ignore[attr-defined]
        if obj is None:
            raise HTTPException(404, f"{model.__name__} {id_} not found")
        return obj

    def remove(self, model: type[Any], id_: uuid.UUID) -> Response:
        """Delete the tenant's row (404 for anyone else's) now, so a restricting FK answers 409 in this request."""
        self.session.delete(self.owned(model, id_))
        self.session.flush()
        return Response(status_code=204)

    def save(self, obj: M) -> M:
        """Insert/update now, so constraint violations surface inside the request, and read server defaults."""
        self.session.add(obj)
        self.session.flush()
        self.session.refresh(obj)
        return obj

    def page(self, stmt: Select[Any], limit: int, offset: int) -> dict[str, Any]:
        """One page of ``stmt`` (already filtered by tenant) plus the total count."""
        total = self.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
        items = self.session.scalars(stmt.limit(limit).offset(offset)).all()
        return {"items": items, "total": total, "limit": limit, "offset": offset}


def tenant_context(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    tenant: Annotated[str | None, Security(tenant_header)],
) -> Iterator[Ctx]:
    """Resolve the tenant, open the request's transaction as the app role with the tenant set.

    ``X-User-ID`` (the acting user, a member of the tenant) is optional and read as a plain header: as a
    security scheme it would be a second credential every client had to send.
    """
    user = request.headers.get("X-User-ID")
    # Every credential sent must be valid and name the same tenant: a bad one is never outvoted by a good one.
    sent = {_uuid(raw, "the tenant") for raw in (tenant, credentials.credentials if credentials else None) if raw}
    if "authorization" in request.headers and credentials is None:  # an empty header is a bad credential too
        raise _unauthorized("Authorization must be 'Bearer <tenant uuid>'")
    if not sent:
        raise _unauthorized("no tenant: send X-Tenant-ID or Authorization: Bearer <tenant uuid>")
    if len(sent) > 1:
        raise _unauthorized("X-Tenant-ID and the bearer token name different tenants")
    tenant_id = sent.pop()
    user_id = _uuid(user, "X-User-ID") if user else None
    session = Session(request.app.state.engine, expire_on_commit=False, autoflush=False)
    try:
        # Checked as the connecting role, before dropping privileges: the app role need not read tenants.
        if session.scalar(select(Tenant.id).where(Tenant.id == tenant_id)) is None:
            raise _unauthorized("unknown tenant")
        # One round trip: the app role (setting ``role`` is ``SET LOCAL ROLE``, the name a bound value, not SQL
        # text) and the tenant, both for this transaction only.
        session.execute(select(func.set_config("role", request.app.state.app_role, True),
                               func.set_config("app.current_tenant_id", str(tenant_id), True)))
        ctx = Ctx(session, tenant_id, user_id)
        if user_id is not None and session.scalar(select(UserTenantRole.id).where(
                UserTenantRole.tenant_id == tenant_id, UserTenantRole.user_id == user_id,
                UserTenantRole.is_active)) is None:
            raise HTTPException(403, "X-User-ID is not an active member of the tenant")
        yield ctx
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


# Function scope: the transaction commits (and any late constraint error is answered) before the
# response is sent, never after a 2xx has gone out.
CtxDep = Annotated[Ctx, Depends(tenant_context, scope="function")]


@dataclass
class Paging:
    limit: int
    offset: int


def paging(limit: Annotated[int, Query(ge=1, le=100)] = 20, offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> Paging:
    return Paging(limit, offset)


PageDep = Annotated[Paging, Depends(paging)]
