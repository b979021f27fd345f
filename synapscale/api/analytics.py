"""Analytics dashboards and events, and the read-only billing history."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response
from sqlalchemy import select

from synapscale.api.common import ERRORS, FilterText, JsonKey, apply_patch, creates, jsonb_has
from synapscale.api.deps import CtxDep, PageDep
from synapscale.models import AnalyticsDashboard, AnalyticsEvent, BillingEvent, Workflow, Workspace
from synapscale.schemas import (
    BillingEventOut,
    DashboardIn,
    DashboardOut,
    DashboardPatch,
    EventIn,
    EventOut,
    Instant,
    Page,
)

router = APIRouter(tags=["analytics"], responses=ERRORS)
billing = APIRouter(tags=["billing"], responses=ERRORS)
Dashboard = AnalyticsDashboard


@router.get("/analytics/dashboards", operation_id="listDashboards", response_model=Page[DashboardOut])
def list_dashboards(ctx: CtxDep, paging: PageDep, workspace_id: uuid.UUID | None = None, is_public: bool | None = None,
                    filter_key: JsonKey = None) -> object:
    """``filter_key`` keeps dashboards whose jsonb ``filters`` has that key."""
    stmt = select(Dashboard).where(Dashboard.tenant_id == ctx.tenant_id).order_by(Dashboard.created_at, Dashboard.id)
    if workspace_id:
        stmt = stmt.where(Dashboard.workspace_id == workspace_id)
    if is_public is not None:
        stmt = stmt.where(Dashboard.is_public == is_public)
    if filter_key:
        stmt = stmt.where(jsonb_has(Dashboard.filters, filter_key, None))
    return ctx.page(stmt, paging.limit, paging.offset)


@router.post("/analytics/dashboards", operation_id="createDashboard", status_code=201, response_model=DashboardOut,
             openapi_extra=creates("dashboard_id"))
def create_dashboard(ctx: CtxDep, body: DashboardIn) -> object:
    if body.workspace_id is not None:
        ctx.owned(Workspace, body.workspace_id)
    return ctx.save(Dashboard(tenant_id=ctx.tenant_id, user_id=ctx.acting_user(), **body.model_dump()))


@router.get("/analytics/dashboards/{dashboard_id}", operation_id="getDashboard", response_model=DashboardOut)
def get_dashboard(ctx: CtxDep, dashboard_id: uuid.UUID) -> object:
    return ctx.owned(Dashboard, dashboard_id)


@router.patch("/analytics/dashboards/{dashboard_id}", operation_id="updateDashboard", response_model=DashboardOut)
def update_dashboard(ctx: CtxDep, dashboard_id: uuid.UUID, body: DashboardPatch) -> object:
    dashboard = ctx.owned(Dashboard, dashboard_id)
    apply_patch(dashboard, body)
    return ctx.save(dashboard)


@router.delete("/analytics/dashboards/{dashboard_id}", operation_id="deleteDashboard", status_code=204)
def delete_dashboard(ctx: CtxDep, dashboard_id: uuid.UUID) -> Response:
    return ctx.remove(Dashboard, dashboard_id)


@router.get("/analytics/events", operation_id="listEvents", response_model=Page[EventOut])
def list_events(ctx: CtxDep, paging: PageDep, event_type: FilterText = None, workflow_id: uuid.UUID | None = None,
                property_key: JsonKey = None, property_value: FilterText = None,
                occurred_after: Instant | None = None, occurred_before: Instant | None = None) -> object:
    """``property_key`` (with an optional ``property_value``) filters on the jsonb ``properties``."""
    stmt = (select(AnalyticsEvent).where(AnalyticsEvent.tenant_id == ctx.tenant_id)
            .order_by(AnalyticsEvent.occurred_at.desc(), AnalyticsEvent.id))
    if event_type:
        stmt = stmt.where(AnalyticsEvent.event_type == event_type)
    if workflow_id:
        stmt = stmt.where(AnalyticsEvent.workflow_id == workflow_id)
    if property_key:
        stmt = stmt.where(jsonb_has(AnalyticsEvent.properties, property_key, property_value))
    if occurred_after:
        stmt = stmt.where(AnalyticsEvent.occurred_at >= occurred_after)
    if occurred_before:
        stmt = stmt.where(AnalyticsEvent.occurred_at < occurred_before)
    return ctx.page(stmt, paging.limit, paging.offset)


@router.post("/analytics/events", operation_id="createEvent", status_code=201, response_model=EventOut,
             openapi_extra=creates("event_id"))
def create_event(ctx: CtxDep, body: EventIn) -> object:
    if body.workspace_id is not None:
        ctx.owned(Workspace, body.workspace_id)
    if body.workflow_id is not None:
        ctx.owned(Workflow, body.workflow_id)
    data = body.model_dump(exclude={"occurred_at"})
    event = AnalyticsEvent(tenant_id=ctx.tenant_id, user_id=ctx.acting_user(), **data)
    if body.occurred_at is not None:
        event.occurred_at = body.occurred_at
    return ctx.save(event)


@router.get("/analytics/events/{event_id}", operation_id="getEvent", response_model=EventOut)
def get_event(ctx: CtxDep, event_id: uuid.UUID) -> object:
    return ctx.owned(AnalyticsEvent, event_id)


@billing.get("/billing/events", operation_id="listBillingEvents", response_model=Page[BillingEventOut])
def list_billing_events(ctx: CtxDep, paging: PageDep, event_type: FilterText = None, status: FilterText = None,
                        workspace_id: uuid.UUID | None = None, created_after: Instant | None = None) -> object:
    stmt = (select(BillingEvent).where(BillingEvent.tenant_id == ctx.tenant_id)
            .order_by(BillingEvent.created_at.desc(), BillingEvent.id))
    if event_type:
        stmt = stmt.where(BillingEvent.event_type == event_type)
    if status:
        stmt = stmt.where(BillingEvent.status == status)
    if workspace_id:
        stmt = stmt.where(BillingEvent.workspace_id == workspace_id)
    if created_after:
        stmt = stmt.where(BillingEvent.created_at >= created_after)
    return ctx.page(stmt, paging.limit, paging.offset)


@billing.get("/billing/events/{billing_event_id}", operation_id="getBillingEvent", response_model=BillingEventOut)
def get_billing_event(ctx: CtxDep, billing_event_id: uuid.UUID) -> object:
    return ctx.owned(BillingEvent, billing_event_id)
