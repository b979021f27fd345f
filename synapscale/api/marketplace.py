"""Marketplace components, their versions and ratings (counters are kept by the database's triggers)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response
from sqlalchemy import select

from synapscale.api.common import ERRORS, FilterText, apply_patch, creates
from synapscale.api.deps import CtxDep, PageDep
from synapscale.models import ComponentRating, ComponentVersion, MarketplaceComponent
from synapscale.schemas import (
    ComponentIn,
    ComponentOut,
    ComponentPatch,
    ComponentVersionIn,
    ComponentVersionOut,
    Page,
    RatingIn,
    RatingOut,
)

router = APIRouter(prefix="/marketplace", tags=["marketplace"], responses=ERRORS)
Component = MarketplaceComponent


@router.get("/components", operation_id="listComponents", response_model=Page[ComponentOut])
def list_components(ctx: CtxDep, paging: PageDep, category: FilterText = None, status: FilterText = None,
                    tag: FilterText = None, q: FilterText = None) -> object:
    """``tag`` matches an element of the ``text[]`` tags."""
    stmt = select(Component).where(Component.tenant_id == ctx.tenant_id).order_by(Component.created_at, Component.id)
    if category:
        stmt = stmt.where(Component.category == category)
    if status:
        stmt = stmt.where(Component.status == status)
    if tag:
        stmt = stmt.where(Component.tags.contains([tag]))
    if q:
        stmt = stmt.where(Component.name.icontains(q, autoescape=True))
    return ctx.page(stmt, paging.limit, paging.offset)


@router.post("/components", operation_id="createComponent", status_code=201, response_model=ComponentOut,
             openapi_extra=creates("component_id"))
def create_component(ctx: CtxDep, body: ComponentIn) -> object:
    return ctx.save(Component(tenant_id=ctx.tenant_id, author_id=ctx.acting_user(), is_free=body.price == 0,
                              **body.model_dump()))


@router.get("/components/{component_id}", operation_id="getComponent", response_model=ComponentOut)
def get_component(ctx: CtxDep, component_id: uuid.UUID) -> object:
    return ctx.owned(Component, component_id)


@router.patch("/components/{component_id}", operation_id="updateComponent", response_model=ComponentOut)
def update_component(ctx: CtxDep, component_id: uuid.UUID, body: ComponentPatch) -> object:
    component = ctx.owned(Component, component_id)
    apply_patch(component, body)
    if "price" in body.model_fields_set:
        component.is_free = component.price == 0
    return ctx.save(component)


@router.delete("/components/{component_id}", operation_id="deleteComponent", status_code=204)
def delete_component(ctx: CtxDep, component_id: uuid.UUID) -> Response:
    return ctx.remove(Component, component_id)


@router.get("/components/{component_id}/versions", operation_id="listComponentVersions",
            response_model=Page[ComponentVersionOut])
def list_versions(ctx: CtxDep, paging: PageDep, component_id: uuid.UUID) -> object:
    ctx.owned(Component, component_id)
    stmt = (select(ComponentVersion)
            .where(ComponentVersion.tenant_id == ctx.tenant_id, ComponentVersion.component_id == component_id)
            .order_by(ComponentVersion.created_at, ComponentVersion.id))
    return ctx.page(stmt, paging.limit, paging.offset)


@router.post("/components/{component_id}/versions", operation_id="createComponentVersion", status_code=201,
             response_model=ComponentVersionOut)
def create_version(ctx: CtxDep, component_id: uuid.UUID, body: ComponentVersionIn) -> object:
    """A version number appears once per component: a repeat is 409."""
    ctx.owned(Component, component_id)
    return ctx.save(ComponentVersion(tenant_id=ctx.tenant_id, component_id=component_id, **body.model_dump()))


@router.get("/components/{component_id}/ratings", operation_id="listComponentRatings", response_model=Page[RatingOut])
def list_ratings(ctx: CtxDep, paging: PageDep, component_id: uuid.UUID) -> object:
    ctx.owned(Component, component_id)
    stmt = (select(ComponentRating)
            .where(ComponentRating.tenant_id == ctx.tenant_id, ComponentRating.component_id == component_id)
            .order_by(ComponentRating.created_at, ComponentRating.id))
    return ctx.page(stmt, paging.limit, paging.offset)


@router.post("/components/{component_id}/ratings", operation_id="rateComponent", status_code=201,
             response_model=RatingOut)
def rate_component(ctx: CtxDep, component_id: uuid.UUID, body: RatingIn) -> object:
    """One rating per user and component: a second one is 409."""
    ctx.owned(Component, component_id)
    return ctx.save(ComponentRating(tenant_id=ctx.tenant_id, component_id=component_id, user_id=ctx.acting_user(),
                                    **body.model_dump()))
