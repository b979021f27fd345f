"""How a transaction says which tenant it acts for.

The reference sets ``app.current_tenant_id`` per transaction, but a real database may read another
setting, several at once (``app.current_tenant`` *and* ``app.current_tenant_id``), or go through a
helper function. The probes never hard-code any of it: they ask a :class:`TenantContext` for the SQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from psycopg import sql

from synap_verify.errors import SynapError
from synap_verify.groups import SCHEMA

DEFAULT_SETTINGS = ("app.current_tenant_id",)
DEFAULT_FUNCTIONS = ("current_tenant_id",)
_SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_.]*$")


@dataclass(frozen=True)
class TenantContext:
    """The settings (or SQL template) that carry the tenant, and the functions policies read it through.

    ``template`` is SQL with a ``{tenant}`` placeholder, replaced by the tenant as a quoted literal; it must
    set the context for the current transaction only (``set_config(..., true)`` or ``SET LOCAL``).
    """

    settings: tuple[str, ...] = DEFAULT_SETTINGS
    template: str | None = None
    functions: tuple[str, ...] = DEFAULT_FUNCTIONS

    def __post_init__(self) -> None:
        for name in self.settings:
            if not _SETTING_NAME.match(name):
                raise SynapError(f"tenant setting '{name}' is not a custom setting name (expected e.g. app.current_tenant_id)")
        if self.template is not None and "{tenant}" not in self.template:
            raise SynapError("the tenant context template must contain {tenant}, "
                             "e.g. SELECT set_config('app.tenant', {tenant}, true)")
        if not self.settings and self.template is None:
            raise SynapError("the tenant context needs at least one setting name or a SQL template")

    def set_local(self, tenant: str) -> sql.Composed:
        """One statement that makes ``tenant`` (any text: a uuid, '' or garbage) the transaction's tenant."""
        if self.template is not None:
            return sql.SQL(self.template.replace("{", "{{").replace("}", "}}").replace("{{tenant}}", "{tenant}")).format(
                tenant=sql.Literal(tenant))
        calls = sql.SQL(", ").join(
            sql.SQL("set_config({}, {}, true)").format(sql.Literal(name), sql.Literal(tenant)) for name in self.settings)
        return sql.SQL("SELECT ") + calls

    @property
    def setting_names(self) -> tuple[str, ...]:
        """The configured settings plus those the template names (``set_config('app.tenant', ...)``)."""
        named = re.findall(r"'([A-Za-z_][A-Za-z0-9_]*\.[A-Za-z0-9_.]+)'", self.template or "")
        return tuple(dict.fromkeys((*self.settings, *named)))


@dataclass(frozen=True)
class RlsConfig:
    """Everything the lints and probes need to know about a database's tenancy model."""

    context: TenantContext = TenantContext()
    app_role: str = "synapscale_app"
    tenant_column: str = "tenant_id"
    global_tables: tuple[str, ...] = ("rbac_roles", "rbac_permissions")  # NULL tenant_id means "every tenant"
    schemas: tuple[str, ...] = (SCHEMA,)
    probe_role: str = "synap_probe"
    # G7 drift: may the child's own tenant see a row attached to another tenant's parent? The parent's
    # tenant must never see it; by default neither may (the row's true owner is unknown).
    drift_visible_to_child: bool = False
    # tables whose tenant column the contract drops (its data moved elsewhere, e.g. users.tenant_id into
    # user_tenant_roles): not tenant tables, even while an expand keeps the column for the old application
    tenant_dropped: tuple[str, ...] = ()
