"""Pydantic v2 request and response schemas of the reference API.

Every constraint the database enforces is stated here too, so that a request the OpenAPI document
calls valid never reaches PostgreSQL only to fail there: strings and JSON documents may not contain
NUL (``text`` and ``jsonb`` reject it), integers fit ``integer``, numerics fit their precision.

Backward compatibility (PRD 11.2): ``meta_data`` is accepted on input and returned on output beside
``metadata``, marked ``deprecated`` in the schema, until clients have moved.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    Strict,
    StrictBool,
    computed_field,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from typing_extensions import TypeAliasType

NO_NUL = r"^[^\u0000]*$"
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")

SafeStr = Annotated[str, Field(pattern=NO_NUL, max_length=10_000)]
Name = Annotated[str, Field(pattern=NO_NUL, min_length=1, max_length=200)]
Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
Tag = Annotated[str, Field(pattern=NO_NUL, min_length=1, max_length=64)]


class _KeysWithoutNul:
    """Documents NUL-free object keys as ``propertyNames``.

    Pydantic writes a constrained key type as ``patternProperties``, which leaves other keys allowed by
    the schema while the validator refuses them: the document and the API would disagree.
    """

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        schema = handler(core_schema)
        patterns = schema.pop("patternProperties", None)
        if patterns:
            ((pattern, values),) = patterns.items()
            schema["propertyNames"] = {"pattern": pattern}
            schema["additionalProperties"] = values
        return schema


# A JSON document as the API accepts it: jsonb refuses NUL in strings and keys, so does the API.
Json = TypeAliasType(
    "Json",
    "Annotated[dict[Annotated[str, Field(pattern=NO_NUL)], Json], _KeysWithoutNul()] | list[Json]"
    " | Annotated[str, Field(pattern=NO_NUL)] | int | float | bool | None",
)
JsonObject = Annotated[dict[Annotated[str, Field(pattern=NO_NUL)], Json], _KeysWithoutNul()]
JsonDoc = Any  # a jsonb value read back: any JSON, whatever legacy rows hold


def _rfc3339(value: Any) -> Any:
    """Only what ``format: date-time`` allows: Pydantic alone would also take ``0`` or a bare date."""
    if isinstance(value, str) and not RFC3339.match(value):
        raise ValueError("expected an RFC 3339 date-time with a UTC offset, e.g. 2024-01-31T12:00:00Z")
    if not isinstance(value, str | datetime):
        raise ValueError("expected an RFC 3339 date-time string")
    return value


Instant = Annotated[datetime, BeforeValidator(_rfc3339)]


def _json_int(value: Any) -> Any:
    """JSON Schema's ``integer``: 3 and 3.0 are integers, "3" and true are not (Pydantic's lax mode takes all four)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or isinstance(value, float) and not value.is_integer():
        raise ValueError("expected a JSON integer")
    return int(value)


Rating = Annotated[int, Field(ge=1, le=5), BeforeValidator(_json_int)]
Priority = Annotated[int, Field(ge=1, le=10), BeforeValidator(_json_int)]
Seconds = Annotated[int, Field(ge=5, le=86_400), BeforeValidator(_json_int)]

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list; ``total`` counts every row matching the filters."""

    items: list[T]
    total: int
    limit: int
    offset: int


class Problem(BaseModel):
    """The body of every 4xx the API itself raises."""

    detail: str


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Patch(BaseModel):
    """Partial update: only the fields sent are written; ``null`` is refused where the column is NOT NULL."""

    model_config = ConfigDict(extra="forbid")


class In(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _prefer(data: Any, current: str, legacy: str) -> Any:
    """A request body with the legacy field's value under the current name, unless the current one was sent."""
    if isinstance(data, dict) and data.get(current) is None and data.get(legacy) is not None:
        return {**data, current: data[legacy]}
    return data


class MetaDataAlias(BaseModel):
    """Accepts the legacy ``meta_data`` beside ``metadata``; when a client sends both, ``metadata`` wins."""

    metadata: JsonObject | None = None
    meta_data: JsonObject | None = Field(
        None, deprecated=True,
        description="Deprecated alias of `metadata` (renamed by the restructure); ignored when `metadata` is sent.")

    @model_validator(mode="before")
    @classmethod
    def _merge(cls, data: Any) -> Any:
        return _prefer(data, "metadata", "meta_data")


class MetaDataOut(Out):
    """Returns ``metadata`` and, for old clients, the same value as deprecated ``meta_data``."""

    metadata: JsonDoc = Field(validation_alias=AliasChoices("metadata_", "metadata"))

    # deprecated in the document only: pydantic's ``deprecated=True`` warns at every serialization
    @computed_field(json_schema_extra={"deprecated": True}, description="Deprecated alias of `metadata`.")  # type: ignore[prop-decorator]
    @property
    def meta_data(self) -> JsonDoc:
        return self.metadata


# --- workspaces -----------------------------------------------------------------------------------

Visibility = Literal["private", "team", "public"]


class WorkspaceIn(In):
    name: Name
    slug: Slug
    description: SafeStr | None = None
    type: Literal["personal", "team", "enterprise"] = "team"
    visibility: Visibility = "private"
    feature_usage_count: JsonObject | None = None


class WorkspacePatch(Patch):
    name: Name = Field(None)
    description: SafeStr | None = None
    visibility: Visibility = Field(None)
    status: Literal["active", "archived", "suspended"] = Field(None)
    feature_usage_count: JsonObject | None = None


class WorkspaceOut(Out):
    id: uuid.UUID
    tenant_id: uuid.UUID
    owner_id: uuid.UUID
    name: str
    slug: str
    description: str | None
    type: str
    visibility: str
    status: str
    is_default: bool
    feature_usage_count: JsonDoc
    member_count: int
    project_count: int
    activity_count: int
    storage_used_mb: float
    last_activity_at: datetime | None
    created_at: datetime
    updated_at: datetime


class MemberOut(Out):
    id: uuid.UUID
    workspace_id: uuid.UUID
    user_id: uuid.UUID
    role: str
    status: str
    is_favorite: bool
    custom_permissions: JsonDoc
    notification_preferences: JsonDoc
    joined_at: datetime | None
    created_at: datetime


class ProjectIn(In):
    name: Name
    description: SafeStr | None = None
    workflow_id: uuid.UUID | None = None


class ProjectOut(Out):
    id: uuid.UUID
    workspace_id: uuid.UUID
    workflow_id: uuid.UUID | None
    created_by: uuid.UUID | None
    name: str
    description: str | None
    status: str
    collaborator_count: int
    edit_count: int
    comment_count: int
    created_at: datetime
    updated_at: datetime


class ActivityOut(MetaDataOut):
    id: uuid.UUID
    workspace_id: uuid.UUID | None
    user_id: uuid.UUID | None
    action: str
    resource_type: str | None
    resource_id: uuid.UUID | None
    description: str | None
    created_at: datetime


# --- workflows ------------------------------------------------------------------------------------

WorkflowStatus = Literal["draft", "active", "paused", "archived"]


class WorkflowIn(In):
    name: Name
    workspace_id: uuid.UUID
    description: SafeStr | None = None
    category: Tag | None = None
    tags: list[Tag] | None = Field(None, max_length=50)
    status: WorkflowStatus = "draft"
    is_public: StrictBool = False


class WorkflowPatch(Patch):
    name: Name = Field(None)
    description: SafeStr | None = None
    category: Tag | None = None
    tags: list[Tag] | None = Field(None, max_length=50)
    status: WorkflowStatus = Field(None)
    is_public: StrictBool = Field(None)


class WorkflowOut(Out):
    id: uuid.UUID
    tenant_id: uuid.UUID
    workspace_id: uuid.UUID
    user_id: uuid.UUID
    name: str
    description: str | None
    category: str | None
    tags: JsonDoc
    version: str
    status: str
    is_public: bool
    last_executed_at: datetime | None
    created_at: datetime
    updated_at: datetime


class ExecutionIn(In, MetaDataAlias):
    priority: Priority = 5
    input_data: JsonObject | None = None
    context_data: JsonObject | None = None
    variables: JsonObject | None = None


class ExecutionOut(MetaDataOut):
    id: uuid.UUID
    execution_id: str
    workflow_id: uuid.UUID
    user_id: uuid.UUID
    status: str
    priority: int
    input_data: JsonDoc
    output_data: JsonDoc
    context_data: JsonDoc
    variables: JsonDoc
    total_nodes: int
    completed_nodes: int
    failed_nodes: int
    progress_percentage: int
    error_message: str | None
    started_at: datetime | None
    completed_at: datetime | None
    created_at: datetime


class WorkflowNodeOut(Out):
    id: uuid.UUID
    workflow_id: uuid.UUID
    node_id: uuid.UUID
    instance_name: str | None
    position_x: int
    position_y: int
    configuration: JsonDoc


class WorkflowConnectionOut(Out):
    id: uuid.UUID
    workflow_id: uuid.UUID
    source_node_id: uuid.UUID
    target_node_id: uuid.UUID
    source_port: str | None
    target_port: str | None


# --- conversations --------------------------------------------------------------------------------


class ConversationIn(In):
    title: Name | None = None
    workspace_id: uuid.UUID | None = None
    context: JsonObject | None = None
    settings: JsonObject | None = None


class ConversationPatch(Patch):
    title: Name | None = None
    status: Literal["active", "archived"] = Field(None)
    settings: JsonObject | None = None


class ConversationOut(Out):
    id: uuid.UUID
    user_id: uuid.UUID
    workspace_id: uuid.UUID | None
    agent_id: uuid.UUID | None
    title: str | None
    status: str
    context: JsonDoc
    settings: JsonDoc
    last_message_at: datetime | None
    created_at: datetime
    updated_at: datetime


class MessageIn(In):
    role: Literal["user", "assistant", "system", "tool"]
    content: Annotated[str, Field(pattern=NO_NUL, min_length=1, max_length=100_000)]
    attachments: list[Json] | None = Field(None, max_length=20)


class MessageOut(Out):
    id: uuid.UUID
    conversation_id: uuid.UUID
    turn_id: uuid.UUID | None
    role: str
    content: str
    attachments: JsonDoc
    model_used: str | None
    tokens_used: int | None
    status: str
    created_at: datetime


class FeedbackIn(In):
    rating: Rating | None = None
    feedback_type: Tag | None = None
    feedback_text: SafeStr | None = None
    feedback_metadata: JsonObject | None = None


class FeedbackOut(Out):
    id: uuid.UUID
    message_id: uuid.UUID
    user_id: uuid.UUID
    rating: int | None
    feedback_type: str | None
    feedback_text: str | None
    feedback_metadata: JsonDoc
    created_at: datetime


# --- marketplace ----------------------------------------------------------------------------------

Price = Annotated[float, Strict(), Field(ge=0, le=99_999_999)]


class ComponentIn(In):
    name: Name
    slug: Slug
    category: Tag
    component_type: Tag
    description: SafeStr | None = None
    short_description: SafeStr | None = None
    tags: list[Tag] | None = Field(None, max_length=50)
    price: Price = 0
    license: Tag | None = None
    configuration_schema: JsonObject | None = None
    keywords: list[Tag] | None = Field(None, max_length=50)


class ComponentPatch(Patch):
    name: Name = Field(None)
    description: SafeStr | None = None
    short_description: SafeStr | None = None
    tags: list[Tag] | None = Field(None, max_length=50)
    price: Price = Field(None)
    status: Literal["pending", "published", "rejected", "archived"] = Field(None)


class ComponentOut(Out):
    id: uuid.UUID
    name: str
    slug: str
    category: str
    component_type: str
    description: str | None
    short_description: str | None
    tags: list[str] | None
    author_id: uuid.UUID
    version: str
    price: float
    is_free: bool
    license: str | None
    status: str
    is_featured: bool
    configuration_schema: JsonDoc
    keywords: JsonDoc
    downloads_count: int
    rating_average: float
    rating_count: int
    published_at: datetime | None
    created_at: datetime
    updated_at: datetime


class ComponentVersionIn(In):
    version: Annotated[str, Field(pattern=r"^\d{1,4}\.\d{1,4}\.\d{1,4}$")]
    changelog: SafeStr | None = None
    component_data: JsonObject
    dependencies: JsonObject | None = None


class ComponentVersionOut(Out):
    id: uuid.UUID
    component_id: uuid.UUID
    version: str
    changelog: str | None
    component_data: JsonDoc
    dependencies: JsonDoc
    is_latest: bool
    status: str
    created_at: datetime


class RatingIn(In):
    rating: Rating
    title: Name | None = None
    review: SafeStr | None = None


class RatingOut(Out):
    id: uuid.UUID
    component_id: uuid.UUID
    user_id: uuid.UUID
    rating: int
    title: str | None
    review: str | None
    created_at: datetime


# --- analytics ------------------------------------------------------------------------------------


class DashboardIn(In):
    name: Name
    description: SafeStr | None = None
    workspace_id: uuid.UUID | None = None
    layout: JsonObject | None = None
    widgets: list[Json] | None = Field(None, max_length=100)
    filters: JsonObject | None = None
    is_public: StrictBool = False
    refresh_interval: Seconds | None = None


class DashboardPatch(Patch):
    name: Name = Field(None)
    description: SafeStr | None = None
    layout: JsonObject | None = None
    widgets: list[Json] | None = Field(None, max_length=100)
    filters: JsonObject | None = None
    is_public: StrictBool = Field(None)
    refresh_interval: Seconds | None = None


class DashboardOut(Out):
    id: uuid.UUID
    user_id: uuid.UUID
    workspace_id: uuid.UUID | None
    name: str
    description: str | None
    layout: JsonDoc
    widgets: JsonDoc
    filters: JsonDoc
    shared_with: JsonDoc
    is_public: bool
    is_default: bool
    refresh_interval: int | None
    status: str
    last_viewed_at: datetime | None
    created_at: datetime
    updated_at: datetime


class EventIn(In):
    event_type: Tag
    category: Tag | None = None
    action: Tag | None = None
    label: SafeStr | None = None
    workspace_id: uuid.UUID | None = None
    workflow_id: uuid.UUID | None = None
    properties: JsonObject | None = None
    value: Annotated[float, Strict(), Field(ge=-1e15, le=1e15)] | None = None
    occurred_at: Instant | None = None


class EventOut(Out):
    id: uuid.UUID
    event_type: str
    category: str | None
    action: str | None
    label: str | None
    user_id: uuid.UUID | None
    workspace_id: uuid.UUID | None
    workflow_id: uuid.UUID | None
    properties: JsonDoc
    context: JsonDoc
    value: float | None
    occurred_at: datetime


# --- agents ---------------------------------------------------------------------------------------

AgentStatus = Literal["active", "inactive", "pending", "archived"]
Temperature = Annotated[float, Strict(), Field(ge=0, le=2)]
MaxTokens = Annotated[int, Field(ge=1, le=2_147_483_647), BeforeValidator(_json_int)]
Version = Annotated[str, Field(pattern=r"^\d{1,4}\.\d{1,4}\.\d{1,4}$")]
Url = Annotated[str, Field(pattern=r"^https?://[^\s\u0000]+$", max_length=2_000)]


class ProviderAlias(BaseModel):
    """Accepts the dropped ``model_provider`` as an alias of ``provider``; ``provider`` wins when both are sent."""

    provider: Tag | None = None
    model_provider: Tag | None = Field(
        None, deprecated=True,
        description="Deprecated alias of `provider` (dropped by the restructure); ignored when `provider` is sent.")

    @model_validator(mode="before")
    @classmethod
    def _merge(cls, data: Any) -> Any:
        return _prefer(data, "provider", "model_provider")


class AgentIn(In, ProviderAlias):
    name: Name
    workspace_id: uuid.UUID
    description: SafeStr | None = None
    agent_type: Tag = "assistant"
    instructions: SafeStr | None = None
    model: Tag | None = None
    temperature: Temperature | None = None
    max_tokens: MaxTokens | None = None
    status: AgentStatus = "active"
    version: Version = "1.0.0"
    tools: list[Json] | None = Field(None, max_length=100)
    knowledge_base: JsonObject | None = None
    capabilities: list[Json] | None = Field(None, max_length=100)
    configuration: JsonObject | None = None
    avatar_url: Url | None = None


class AgentPatch(Patch, ProviderAlias):
    name: Name = Field(None)
    description: SafeStr | None = None
    agent_type: Tag = Field(None)
    instructions: SafeStr | None = None
    model: Tag | None = None
    temperature: Temperature | None = None
    max_tokens: MaxTokens | None = None
    status: AgentStatus = Field(None)
    version: Version = Field(None)
    tools: list[Json] | None = Field(None, max_length=100)
    knowledge_base: JsonObject | None = None
    capabilities: list[Json] | None = Field(None, max_length=100)
    configuration: JsonObject | None = None
    avatar_url: Url | None = None


class AgentOut(Out):
    id: uuid.UUID
    tenant_id: uuid.UUID
    workspace_id: uuid.UUID
    user_id: uuid.UUID
    name: str
    description: str | None
    agent_type: str
    instructions: str | None
    provider: str | None
    model: str | None
    temperature: float | None
    max_tokens: int | None
    status: str
    version: str
    tools: JsonDoc
    knowledge_base: JsonDoc
    capabilities: JsonDoc
    configuration: JsonDoc
    avatar_url: str | None
    created_at: datetime
    updated_at: datetime

    @computed_field(json_schema_extra={"deprecated": True}, description="Deprecated alias of `provider`.")  # type: ignore[prop-decorator]
    @property
    def model_provider(self) -> str | None:
        return self.provider


# --- workflow templates ---------------------------------------------------------------------------

TemplateStatus = Literal["draft", "active", "inactive", "archived"]


class TemplateIn(In):
    name: Name
    slug: Slug
    workflow_data: JsonObject
    description: SafeStr | None = None
    long_description: SafeStr | None = None
    category: Tag | None = None
    original_workflow_id: uuid.UUID | None = None
    status: TemplateStatus = "draft"
    is_public: StrictBool = True
    price: Price = 0
    license: Tag | None = None
    version: Version = "1.0.0"
    tags: list[Tag] | None = Field(None, max_length=50)
    nodes_data: list[Json] | None = Field(None, max_length=500)
    connections_data: list[Json] | None = Field(None, max_length=500)
    required_variables: list[Json] | None = Field(None, max_length=100)
    optional_variables: list[Json] | None = Field(None, max_length=100)
    default_config: JsonObject | None = None
    keywords: list[Tag] | None = Field(None, max_length=50)
    use_cases: list[Tag] | None = Field(None, max_length=50)
    industries: list[Tag] | None = Field(None, max_length=50)


class TemplatePatch(Patch):
    name: Name = Field(None)
    workflow_data: JsonObject = Field(None)
    description: SafeStr | None = None
    long_description: SafeStr | None = None
    category: Tag | None = None
    status: TemplateStatus = Field(None)
    is_public: StrictBool = Field(None)
    price: Price = Field(None)
    license: Tag | None = None
    version: Version = Field(None)
    tags: list[Tag] | None = Field(None, max_length=50)
    default_config: JsonObject | None = None
    keywords: list[Tag] | None = Field(None, max_length=50)


class TemplateOut(Out):
    id: uuid.UUID
    tenant_id: uuid.UUID
    author_id: uuid.UUID
    original_workflow_id: uuid.UUID | None
    name: str
    slug: str
    description: str | None
    long_description: str | None
    category: str | None
    status: str
    is_public: bool
    is_featured: bool
    price: float
    license: str | None
    version: str
    tags: JsonDoc
    workflow_data: JsonDoc
    nodes_data: JsonDoc
    connections_data: JsonDoc
    required_variables: JsonDoc
    optional_variables: JsonDoc
    default_config: JsonDoc
    keywords: JsonDoc
    use_cases: JsonDoc
    industries: JsonDoc
    downloads_count: int
    usage_count: int
    rating_average: float
    rating_count: int
    favorites_count: int
    views_count: int
    published_at: datetime | None
    last_used_at: datetime | None
    created_at: datetime
    updated_at: datetime


# --- tags -----------------------------------------------------------------------------------------

Color = Annotated[str, Field(pattern=r"^#[0-9a-fA-F]{6}$")]


class TagIn(In):
    name: Name
    color: Color | None = None
    target_type: Tag | None = None
    target_id: uuid.UUID | None = None
    tag_metadata: JsonObject | None = None


class TagPatch(Patch):
    name: Name = Field(None)
    color: Color | None = None
    tag_metadata: JsonObject | None = None


class TagOut(Out):
    id: uuid.UUID
    tenant_id: uuid.UUID
    created_by: uuid.UUID | None
    name: str
    color: str | None
    target_type: str | None
    target_id: uuid.UUID | None
    tag_metadata: JsonDoc
    created_at: datetime
    updated_at: datetime


# --- billing (read-only) --------------------------------------------------------------------------


class BillingEventOut(Out):
    id: uuid.UUID
    workspace_id: uuid.UUID | None
    user_id: uuid.UUID | None
    invoice_id: uuid.UUID | None
    event_type: str
    amount: float | None
    currency: str
    status: str
    billing_metadata: JsonDoc
    processed_at: datetime | None
    created_at: datetime

