"""Agents. The restructure dropped ``model_provider`` into ``provider``: it stays a deprecated alias."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response
from sqlalchemy import select

from synapscale.api.common import ERRORS, FilterText, JsonKey, apply_patch, creates, jsonb_has
from synapscale.api.deps import CtxDep, PageDep
from synapscale.models import Agent, Workspace
from synapscale.schemas import AgentIn, AgentOut, AgentPatch, Page

router = APIRouter(tags=["agents"], responses=ERRORS)
ALIASES = {"model_provider"}


@router.get("/agents", operation_id="listAgents", response_model=Page[AgentOut])
def list_agents(ctx: CtxDep, paging: PageDep, workspace_id: uuid.UUID | None = None, status: FilterText = None,
                agent_type: FilterText = None, provider: FilterText = None, q: FilterText = None,
                configuration_key: JsonKey = None, configuration_value: FilterText = None) -> object:
    """``configuration_key`` (with an optional ``configuration_value``) filters on the jsonb ``configuration``."""
    stmt = select(Agent).where(Agent.tenant_id == ctx.tenant_id).order_by(Agent.created_at, Agent.id)
    if workspace_id:
        stmt = stmt.where(Agent.workspace_id == workspace_id)
    if status:
        stmt = stmt.where(Agent.status == status)
    if agent_type:
        stmt = stmt.where(Agent.agent_type == agent_type)
    if provider:
        stmt = stmt.where(Agent.provider == provider)
    if q:
        stmt = stmt.where(Agent.name.icontains(q, autoescape=True))
    if configuration_key:
        stmt = stmt.where(jsonb_has(Agent.configuration, configuration_key, configuration_value))
    return ctx.page(stmt, paging.limit, paging.offset)


@router.post("/agents", operation_id="createAgent", status_code=201, response_model=AgentOut,
             openapi_extra=creates("agent_id"))
def create_agent(ctx: CtxDep, body: AgentIn) -> object:
    ctx.owned(Workspace, body.workspace_id)
    return ctx.save(Agent(tenant_id=ctx.tenant_id, user_id=ctx.acting_user(), **body.model_dump(exclude=ALIASES)))


@router.get("/agents/{agent_id}", operation_id="getAgent", response_model=AgentOut)
def get_agent(ctx: CtxDep, agent_id: uuid.UUID) -> object:
    return ctx.owned(Agent, agent_id)


@router.patch("/agents/{agent_id}", operation_id="updateAgent", response_model=AgentOut)
def update_agent(ctx: CtxDep, agent_id: uuid.UUID, body: AgentPatch) -> object:
    agent = ctx.owned(Agent, agent_id)
    apply_patch(agent, body, exclude=ALIASES)
    return ctx.save(agent)


@router.delete("/agents/{agent_id}", operation_id="deleteAgent", status_code=204)
def delete_agent(ctx: CtxDep, agent_id: uuid.UUID) -> Response:
    return ctx.remove(Agent, agent_id)
