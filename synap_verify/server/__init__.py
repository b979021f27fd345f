"""Provisioning: one PostgreSQL server per test session, whichever backend provides it.

Every backend returns the same :class:`Server` handle, so nothing downstream knows (or cares) whether
the server is embedded, a system installation, a container or a staging DSN.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

if TYPE_CHECKING:
    from synap_verify.server.executor import Cluster


@dataclass
class Server:
    """A reachable server and what the harness may do with it."""

    backend: str
    conninfo: str
    disposable: bool
    started_in: float = 0.0
    stop: Callable[[], None] = field(default=lambda: None, repr=False)
    cluster: Cluster | None = field(default=None, repr=False)  # a local cluster's folders (embedded, system)

    def dsn(self, dbname: str | None = None) -> str:
        """A libpq connection string for ``dbname`` (default: the server's own database)."""
        return make_conninfo(self.conninfo, dbname=dbname) if dbname else self.conninfo

    def connect(self, dbname: str | None = None, autocommit: bool = True) -> psycopg.Connection:
        return psycopg.connect(self.dsn(dbname), autocommit=autocommit)

    @property
    def dbname(self) -> str:
        return str(conninfo_to_dict(self.conninfo).get("dbname") or "postgres")

    def describe(self) -> str:
        """Where the server is, never with its password."""
        return redact(self.conninfo)

    def version(self) -> str:
        with self.connect() as conn:
            row = conn.execute("SHOW server_version").fetchone()
        return str(row[0]) if row else "?"


def redact(conninfo: str) -> str:
    """``user@host:port/dbname`` from any DSN or URL: the one form in which a DSN is ever printed."""
    try:
        parts = conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:
        return "<unparseable DSN>"
    host = str(parts.get("host") or "localhost")
    port = str(parts.get("port") or "5432")
    user = parts.get("user")
    return f"{str(user) + '@' if user else ''}{host}:{port}/{parts.get('dbname') or ''}"


def sqlalchemy_url(conninfo: str) -> str:
    """The SQLAlchemy URL (psycopg 3 driver) for a libpq connection string."""
    from sqlalchemy.engine import URL

    parts = {k: str(v) for k, v in conninfo_to_dict(conninfo).items()}
    query = {k: v for k, v in parts.items() if k not in ("user", "password", "dbname", "host", "port")}
    host = parts.get("host")
    if host and host.startswith("/"):
        query["host"] = host
        host = None
    return URL.create(
        "postgresql+psycopg",
        username=parts.get("user"),
        password=parts.get("password"),
        host=host,
        port=int(parts["port"]) if parts.get("port") and host else None,
        database=parts.get("dbname"),
        query=query | ({"port": parts["port"]} if parts.get("port") and not host else {}),
    ).render_as_string(hide_password=False)
