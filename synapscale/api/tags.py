"""Tags: a tenant's labels on any object (``target_type``/``target_id``), with jsonb ``tag_metadata``."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Response
from sqlalchemy import select

from synapscale.api.common import ERRORS, FilterText, JsonKey, apply_patch, creates, jsonb_has
from synapscale.api.deps import CtxDep, PageDep
from synapscale.models import (
    Agent,
    Conversation,
    MarketplaceComponent,
    Workflow,
    WorkflowTemplate,
    Workspace,
)
from synapscale.models import Tag as TagRow
from synapscale.schemas import Page, TagIn, TagOut, TagPatch

router = APIRouter(tags=["tags"], responses=ERRORS)

# target types the API resolves: a target_id of these must be the tenant's own (else 404)
TARGETS: dict[str, type[Any]] = {
    "workspace": Workspace, "workflow": Workflow, "agent": Agent, "template": WorkflowTemplate,
    "workflow_template": WorkflowTemplate, "conversation": Conversation, "component": MarketplaceComponent,
}


@router.get("/tags", operation_id="listTags", response_model=Page[TagOut])
def list_tags(ctx: CtxDep, paging: PageDep, name: FilterText = None, q: FilterText = None,
              target_type: FilterText = None, target_id: uuid.UUID | None = None,
              tag_metadata_key: JsonKey = None, tag_metadata_value: FilterText = None) -> object:
    """``tag_metadata_key`` (with an optional ``tag_metadata_value``) filters on the jsonb ``tag_metadata``."""
    stmt = select(TagRow).where(TagRow.tenant_id == ctx.tenant_id).order_by(TagRow.created_at, TagRow.id)
    if name:
        stmt = stmt.where(TagRow.name == name)
    if q:
        stmt = stmt.where(TagRow.name.icontains(q, autoescape=True))
    if target_type:
        stmt = stmt.where(TagRow.target_type == target_type)
    if target_id:
        stmt = stmt.where(TagRow.target_id == target_id)
    if tag_metadata_key:
        stmt = stmt.where(jsonb_has(TagRow.tag_metadata, tag_metadata_key, tag_metadata_value))
    return ctx.page(stmt, paging.limit, paging.offset)


@router.post("/tags", operation_id="createTag", status_code=201, response_model=TagOut,
             openapi_extra=creates("tag_id"))
def create_tag(ctx: CtxDep, body: TagIn) -> object:
    """A ``target_id`` of a known ``target_type`` (see the list in docs/api.md) must be the tenant's, else 404."""
    model = TARGETS.get(body.target_type or "")
    if model is not None and body.target_id is not None:
        ctx.owned(model, body.target_id)
    return ctx.save(TagRow(tenant_id=ctx.tenant_id, created_by=ctx.acting_user(), **body.model_dump()))


@router.get("/tags/{tag_id}", operation_id="getTag", response_model=TagOut)
def get_tag(ctx: CtxDep, tag_id: uuid.UUID) -> object:
    return ctx.owned(TagRow, tag_id)


@router.patch("/tags/{tag_id}", operation_id="updateTag", response_model=TagOut)
def update_tag(ctx: CtxDep, tag_id: uuid.UUID, body: TagPatch) -> object:
    tag = ctx.owned(TagRow, tag_id)
    apply_patch(tag, body)
    return ctx.save(tag)


@router.delete("/tags/{tag_id}", operation_id="deleteTag", status_code=204)
def delete_tag(ctx: CtxDep, tag_id: uuid.UUID) -> Response:
    return ctx.remove(TagRow, tag_id)
