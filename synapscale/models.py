"""SQLAlchemy 2 models of the MIGRATED ``synapscale_db`` schema, for the tables the reference API serves.

Only what the API reads or writes is modelled. Column names, types and nullability follow the schema
after the restructure (jsonb, timestamptz, ``metadata`` instead of ``meta_data``, renamed llm tables);
``tests/test_api.py`` compares these models with a migrated database through Alembic's autogenerate.
Indexes, triggers and RLS policies belong to the migrations and are not repeated here.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, MetaData, Numeric, Text, Uuid, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA = "synapscale_db"

Json = dict[str, Any] | list[Any]


class Base(DeclarativeBase):
    """Declarative base bound to the ``synapscale_db`` schema."""

    metadata = MetaData(schema=SCHEMA)
    type_annotation_map = {
        uuid.UUID: Uuid(),
        str: Text(),
        datetime: DateTime(timezone=True),
        Json: JSONB(),
        dict[str, Any]: JSONB(),
    }


def _pk() -> Mapped[uuid.UUID]:
    return mapped_column(primary_key=True, server_default=text("gen_random_uuid()"))


def _created() -> Mapped[datetime]:
    return mapped_column(server_default=text("now()"))


def _tenant() -> Mapped[uuid.UUID]:
    return mapped_column(ForeignKey("tenants.id"))


class Tenant(Base):
    """Only what tenant resolution needs."""

    __tablename__ = "tenants"
    id: Mapped[uuid.UUID] = _pk()
    name: Mapped[str]
    slug: Mapped[str]
    status: Mapped[str] = mapped_column(server_default=text("'active'"))


class User(Base):
    """Users are global after the restructure (no ``tenant_id``): membership is ``user_tenant_roles``."""

    __tablename__ = "users"
    id: Mapped[uuid.UUID] = _pk()
    email: Mapped[str]
    full_name: Mapped[str | None]


class UserTenantRole(Base):
    """Who belongs to which tenant: the source of the acting user when a request names none."""

    __tablename__ = "user_tenant_roles"
    id: Mapped[uuid.UUID] = _pk()
    user_id: Mapped[uuid.UUID]
    tenant_id: Mapped[uuid.UUID] = _tenant()
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    created_at: Mapped[datetime] = _created()


class Workspace(Base):
    __tablename__ = "workspaces"
    id: Mapped[uuid.UUID] = _pk()
    tenant_id: Mapped[uuid.UUID] = _tenant()
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    name: Mapped[str]
    slug: Mapped[str]
    description: Mapped[str | None]
    type: Mapped[str] = mapped_column(server_default=text("'team'"))
    visibility: Mapped[str] = mapped_column(server_default=text("'private'"))
    status: Mapped[str] = mapped_column(server_default=text("'active'"))
    is_default: Mapped[bool] = mapped_column(server_default=text("false"))
    feature_usage_count: Mapped[Json | None]
    member_count: Mapped[int] = mapped_column(server_default=text("0"))
    project_count: Mapped[int] = mapped_column(server_default=text("0"))
    activity_count: Mapped[int] = mapped_column(server_default=text("0"))
    storage_used_mb: Mapped[Decimal] = mapped_column(Numeric(14, 2), server_default=text("0"))
    last_activity_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


class WorkspaceMember(Base):
    __tablename__ = "workspace_members"
    id: Mapped[uuid.UUID] = _pk()
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    tenant_id: Mapped[uuid.UUID] = _tenant()
    role: Mapped[str] = mapped_column(server_default=text("'member'"))
    status: Mapped[str] = mapped_column(server_default=text("'active'"))
    is_favorite: Mapped[bool] = mapped_column(server_default=text("false"))
    custom_permissions: Mapped[Json | None]
    notification_preferences: Mapped[Json | None]
    last_seen_at: Mapped[datetime | None]
    joined_at: Mapped[datetime | None]
    left_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


class WorkspaceProject(Base):
    __tablename__ = "workspace_projects"
    id: Mapped[uuid.UUID] = _pk()
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    tenant_id: Mapped[uuid.UUID] = _tenant()
    workflow_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("workflows.id", ondelete="SET NULL"))
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    name: Mapped[str]
    description: Mapped[str | None]
    status: Mapped[str] = mapped_column(server_default=text("'active'"))
    collaborator_count: Mapped[int] = mapped_column(server_default=text("0"))
    edit_count: Mapped[int] = mapped_column(server_default=text("0"))
    comment_count: Mapped[int] = mapped_column(server_default=text("0"))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()
    last_edited_at: Mapped[datetime | None]


class Workflow(Base):
    __tablename__ = "workflows"
    id: Mapped[uuid.UUID] = _pk()
    name: Mapped[str]
    description: Mapped[str | None]
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    tenant_id: Mapped[uuid.UUID] = _tenant()
    category: Mapped[str | None]
    tags: Mapped[Json | None]
    version: Mapped[str] = mapped_column(server_default=text("'1.0.0'"))
    status: Mapped[str] = mapped_column(server_default=text("'draft'"))
    is_public: Mapped[bool] = mapped_column(server_default=text("false"))
    thumbnail_url: Mapped[str | None]
    last_executed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


class WorkflowExecution(Base):
    __tablename__ = "workflow_executions"
    id: Mapped[uuid.UUID] = _pk()
    execution_id: Mapped[str]
    workflow_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    tenant_id: Mapped[uuid.UUID] = _tenant()
    status: Mapped[str] = mapped_column(server_default=text("'pending'"))
    priority: Mapped[int] = mapped_column(server_default=text("5"))
    input_data: Mapped[Json | None]
    output_data: Mapped[Json | None]
    context_data: Mapped[Json | None]
    variables: Mapped[Json | None]
    # ``metadata`` is reserved on declarative classes, hence the attribute name.
    metadata_: Mapped[Json | None] = mapped_column("metadata")
    total_nodes: Mapped[int] = mapped_column(server_default=text("0"))
    completed_nodes: Mapped[int] = mapped_column(server_default=text("0"))
    failed_nodes: Mapped[int] = mapped_column(server_default=text("0"))
    progress_percentage: Mapped[int] = mapped_column(server_default=text("0"))
    error_message: Mapped[str | None]
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    timeout_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


class WorkflowNode(Base):
    __tablename__ = "workflow_nodes"
    id: Mapped[uuid.UUID] = _pk()
    workflow_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"))
    node_id: Mapped[uuid.UUID]
    tenant_id: Mapped[uuid.UUID] = _tenant()
    instance_name: Mapped[str | None]
    position_x: Mapped[int] = mapped_column(server_default=text("0"))
    position_y: Mapped[int] = mapped_column(server_default=text("0"))
    configuration: Mapped[Json | None]
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


class WorkflowConnection(Base):
    __tablename__ = "workflow_connections"
    id: Mapped[uuid.UUID] = _pk()
    workflow_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"))
    source_node_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workflow_nodes.id", ondelete="CASCADE"))
    target_node_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workflow_nodes.id", ondelete="CASCADE"))
    tenant_id: Mapped[uuid.UUID] = _tenant()
    source_port: Mapped[str | None]
    target_port: Mapped[str | None]
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


class Conversation(Base):
    __tablename__ = "llms_conversations"
    id: Mapped[uuid.UUID] = _pk()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    agent_id: Mapped[uuid.UUID | None]
    workspace_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("workspaces.id"))
    tenant_id: Mapped[uuid.UUID] = _tenant()
    llm_id: Mapped[uuid.UUID | None]
    title: Mapped[str | None]
    status: Mapped[str] = mapped_column(server_default=text("'active'"))
    context: Mapped[Json | None]
    settings: Mapped[Json | None]
    last_message_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


class Message(Base):
    """``llms_messages`` renamed; ``rating``/``feedback`` moved to ``message_feedbacks``."""

    __tablename__ = "messages"
    id: Mapped[uuid.UUID] = _pk()
    conversation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("llms_conversations.id", ondelete="CASCADE"))
    turn_id: Mapped[uuid.UUID | None]
    tenant_id: Mapped[uuid.UUID] = _tenant()
    role: Mapped[str]
    content: Mapped[str]
    attachments: Mapped[Json | None]
    model_used: Mapped[str | None]
    tokens_used: Mapped[int | None] = mapped_column(Integer)
    processing_time_ms: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(server_default=text("'sent'"))
    error_message: Mapped[str | None]
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


class MessageFeedback(Base):
    __tablename__ = "message_feedbacks"
    id: Mapped[uuid.UUID] = _pk()
    message_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    tenant_id: Mapped[uuid.UUID] = _tenant()
    rating: Mapped[int | None] = mapped_column(Integer)
    feedback_type: Mapped[str | None]
    feedback_text: Mapped[str | None]
    feedback_metadata: Mapped[Json | None]
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


class MarketplaceComponent(Base):
    """``author_name`` dropped (derived from ``users.full_name``); ``tags`` is ``text[]``."""

    __tablename__ = "marketplace_components"
    id: Mapped[uuid.UUID] = _pk()
    name: Mapped[str]
    slug: Mapped[str]
    description: Mapped[str | None]
    short_description: Mapped[str | None]
    category: Mapped[str]
    component_type: Mapped[str]
    tags: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    author_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    tenant_id: Mapped[uuid.UUID] = _tenant()
    version: Mapped[str] = mapped_column(server_default=text("'1.0.0'"))
    price: Mapped[Decimal] = mapped_column(Numeric(10, 2), server_default=text("0"))
    is_free: Mapped[bool] = mapped_column(server_default=text("true"))
    license: Mapped[str | None]
    status: Mapped[str] = mapped_column(server_default=text("'pending'"))
    is_featured: Mapped[bool] = mapped_column(server_default=text("false"))
    configuration_schema: Mapped[Json | None]
    dependencies: Mapped[Json | None]
    compatibility: Mapped[Json | None]
    examples: Mapped[Json | None]
    screenshots: Mapped[Json | None]
    keywords: Mapped[Json | None]
    documentation: Mapped[str | None]
    repository_url: Mapped[str | None]
    downloads_count: Mapped[int] = mapped_column(server_default=text("0"))
    rating_average: Mapped[Decimal] = mapped_column(Numeric(3, 2), server_default=text("0"))
    rating_count: Mapped[int] = mapped_column(server_default=text("0"))
    published_at: Mapped[datetime | None]
    # where the restructure kept an ``author_name`` that disagreed with the author's name
    metadata_: Mapped[Json] = mapped_column("metadata", server_default=text("'{}'::jsonb"))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


class ComponentVersion(Base):
    __tablename__ = "component_versions"
    id: Mapped[uuid.UUID] = _pk()
    component_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("marketplace_components.id", ondelete="CASCADE"))
    tenant_id: Mapped[uuid.UUID] = _tenant()
    version: Mapped[str]
    changelog: Mapped[str | None]
    component_data: Mapped[Json]
    dependencies: Mapped[Json | None]
    is_latest: Mapped[bool] = mapped_column(server_default=text("false"))
    status: Mapped[str] = mapped_column(server_default=text("'published'"))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


class ComponentRating(Base):
    __tablename__ = "component_ratings"
    id: Mapped[uuid.UUID] = _pk()
    component_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("marketplace_components.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    tenant_id: Mapped[uuid.UUID] = _tenant()
    rating: Mapped[int] = mapped_column(Integer)
    title: Mapped[str | None]
    review: Mapped[str | None]
    is_verified_purchase: Mapped[bool] = mapped_column(server_default=text("false"))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


class AnalyticsDashboard(Base):
    __tablename__ = "analytics_dashboards"
    id: Mapped[uuid.UUID] = _pk()
    name: Mapped[str]
    description: Mapped[str | None]
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    workspace_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    tenant_id: Mapped[uuid.UUID] = _tenant()
    layout: Mapped[Json | None]
    widgets: Mapped[Json | None]
    filters: Mapped[Json | None]
    shared_with: Mapped[Json | None]
    is_public: Mapped[bool] = mapped_column(server_default=text("false"))
    is_default: Mapped[bool] = mapped_column(server_default=text("false"))
    refresh_interval: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(server_default=text("'active'"))
    last_viewed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


class AnalyticsEvent(Base):
    __tablename__ = "analytics_events"
    id: Mapped[uuid.UUID] = _pk()
    event_type: Mapped[str]
    category: Mapped[str | None]
    action: Mapped[str | None]
    label: Mapped[str | None]
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    session_id: Mapped[str | None]
    tenant_id: Mapped[uuid.UUID] = _tenant()
    workspace_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    workflow_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("workflows.id", ondelete="SET NULL"))
    properties: Mapped[Json | None]
    context: Mapped[Json | None]
    value: Mapped[Decimal | None] = mapped_column(Numeric)
    ip_address: Mapped[str | None]
    user_agent: Mapped[str | None]
    occurred_at: Mapped[datetime] = _created()
    created_at: Mapped[datetime] = _created()


class BillingEvent(Base):
    """Financial history: the API only reads it."""

    __tablename__ = "billing_events"
    id: Mapped[uuid.UUID] = _pk()
    tenant_id: Mapped[uuid.UUID] = _tenant()
    workspace_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("workspaces.id"))
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    subscription_id: Mapped[uuid.UUID | None]
    invoice_id: Mapped[uuid.UUID | None]
    event_type: Mapped[str]
    amount: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    currency: Mapped[str] = mapped_column(server_default=text("'USD'"))
    status: Mapped[str] = mapped_column(server_default=text("'processed'"))
    billing_metadata: Mapped[Json | None]
    processed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = _created()


class WorkspaceActivity(Base):
    """Read-only audit trail of a workspace; its ``meta_data`` became ``metadata``."""

    __tablename__ = "workspace_activities"
    id: Mapped[uuid.UUID] = _pk()
    workspace_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    tenant_id: Mapped[uuid.UUID] = _tenant()
    action: Mapped[str]
    resource_type: Mapped[str | None]
    resource_id: Mapped[uuid.UUID | None]
    description: Mapped[str | None]
    metadata_: Mapped[Json | None] = mapped_column("metadata")
    ip_address: Mapped[str | None]
    user_agent: Mapped[str | None]
    created_at: Mapped[datetime] = _created()


class Agent(Base):
    """``model_provider`` dropped by the restructure (carried into ``provider``); the API keeps it as an alias."""

    __tablename__ = "agents"
    id: Mapped[uuid.UUID] = _pk()
    name: Mapped[str]
    description: Mapped[str | None]
    agent_type: Mapped[str] = mapped_column(server_default=text("'assistant'"))
    instructions: Mapped[str | None]
    provider: Mapped[str | None]
    model: Mapped[str | None]
    temperature: Mapped[Decimal | None] = mapped_column(Numeric(3, 2))
    max_tokens: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(server_default=text("'active'"))
    version: Mapped[str] = mapped_column(server_default=text("'1.0.0'"))
    tools: Mapped[Json | None]
    knowledge_base: Mapped[Json | None]
    capabilities: Mapped[Json | None]
    configuration: Mapped[Json | None]
    avatar_url: Mapped[str | None]
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    tenant_id: Mapped[uuid.UUID] = _tenant()
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


class WorkflowTemplate(Base):
    """Tenant-owned after the restructure (``tenant_id`` NOT NULL, RLS): ``is_public`` shares nothing across
    tenants. ``slug`` is unique across all tenants. Counters are kept by the database's triggers."""

    __tablename__ = "workflow_templates"
    id: Mapped[uuid.UUID] = _pk()
    name: Mapped[str]
    slug: Mapped[str]
    description: Mapped[str | None]
    long_description: Mapped[str | None]
    category: Mapped[str | None]
    author_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    original_workflow_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("workflows.id", ondelete="SET NULL"))
    tenant_id: Mapped[uuid.UUID] = _tenant()
    status: Mapped[str] = mapped_column(server_default=text("'draft'"))
    is_public: Mapped[bool] = mapped_column(server_default=text("true"))
    is_featured: Mapped[bool] = mapped_column(server_default=text("false"))
    price: Mapped[Decimal] = mapped_column(Numeric(10, 2), server_default=text("0"))
    license: Mapped[str | None]
    version: Mapped[str] = mapped_column(server_default=text("'1.0.0'"))
    tags: Mapped[Json | None]
    workflow_data: Mapped[Json]
    nodes_data: Mapped[Json | None]
    connections_data: Mapped[Json | None]
    required_variables: Mapped[Json | None]
    optional_variables: Mapped[Json | None]
    default_config: Mapped[Json | None]
    keywords: Mapped[Json | None]
    use_cases: Mapped[Json | None]
    industries: Mapped[Json | None]
    preview_images: Mapped[Json | None]
    changelog: Mapped[Json | None]
    downloads_count: Mapped[int] = mapped_column(server_default=text("0"))
    usage_count: Mapped[int] = mapped_column(server_default=text("0"))
    rating_average: Mapped[Decimal] = mapped_column(Numeric(3, 2), server_default=text("0"))
    rating_count: Mapped[int] = mapped_column(server_default=text("0"))
    favorites_count: Mapped[int] = mapped_column(server_default=text("0"))
    views_count: Mapped[int] = mapped_column(server_default=text("0"))
    published_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


class Tag(Base):
    """A tenant's label on any object (``target_type``/``target_id``, no foreign key)."""

    __tablename__ = "tags"
    id: Mapped[uuid.UUID] = _pk()
    tenant_id: Mapped[uuid.UUID] = _tenant()
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    name: Mapped[str]
    color: Mapped[str | None]
    target_type: Mapped[str | None]
    target_id: Mapped[uuid.UUID | None]
    tag_metadata: Mapped[Json | None]
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


MODELLED_TABLES = frozenset(Base.metadata.tables)
