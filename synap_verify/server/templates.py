"""Template databases: build a state once, then hand out cheap ``CREATE DATABASE ... TEMPLATE`` clones.

The loaded legacy database and the migrated one are each built once per session and marked as
templates; a suite asks for a clone by the template's name and never rebuilds a state itself.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from psycopg import sql

from synap_verify.catalog import Catalog, read_catalog
from synap_verify.errors import SynapError
from synap_verify.groups import SCHEMA
from synap_verify.server import Server

_counter = itertools.count(1)


@dataclass(frozen=True)
class Database:
    """One database on the session's server, as handed to a suite."""

    server: Server
    name: str
    template: str | None = None
    seconds: float = 0.0  # how long the clone took

    @property
    def dsn(self) -> str:
        return self.server.dsn(self.name)

    def connect(self, autocommit: bool = True) -> psycopg.Connection:
        return self.server.connect(self.name, autocommit=autocommit)

    def catalog(self, schemas: tuple[str, ...] = (SCHEMA,)) -> Catalog:
        with self.connect() as conn:
            return read_catalog(conn, schemas)

    def drop(self) -> None:
        drop_database(self.server, self.name)


def require_disposable(server: Server, action: str) -> None:
    if not server.disposable:
        raise SynapError(f"refusing to {action} on {server.describe()}: the DSN is not declared disposable "
                         "(pass --synap-dsn-disposable, or use a database whose name matches the disposable pattern)")


def database_exists(server: Server, name: str) -> bool:
    with server.connect() as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def build_template(server: Server, name: str, build: Callable[[str], None], source: str | None = None) -> None:
    """Create ``name`` (empty, or a copy of template ``source``), let ``build`` work on it (given its DSN),
    then freeze it as a template."""
    require_disposable(server, f"create the template database {name}")
    drop_database(server, name)
    with server.connect() as conn:
        create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if source:
            create += sql.SQL(" TEMPLATE {}").format(sql.Identifier(source))
        conn.execute(create)
    try:
        build(server.dsn(name))
    except BaseException:
        drop_database(server, name)
        raise
    with server.connect() as conn:
        conn.execute(sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false").format(sql.Identifier(name)))


def clone(server: Server, template: str, prefix: str | None = None) -> Database:
    """A fresh database copied from ``template``; names are unique per process (and xdist worker)."""
    require_disposable(server, f"clone {template}")
    name = f"{prefix or template}_{os.getpid()}_{next(_counter)}"
    began = time.perf_counter()
    with server.connect() as conn:
        create = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template))
        if server.cluster is not None and conn.info.server_version >= 150000:
            # our own throwaway cluster: copy the files (one checkpoint) rather than log every block, 2-5x faster
            # here; never on a server given by DSN, where a forced checkpoint is felt by everyone else on it
            create += sql.SQL(" STRATEGY FILE_COPY")
        conn.execute(create)
    return Database(server, name, template, time.perf_counter() - began)


def drop_database(server: Server, name: str) -> None:
    """Drop a database the harness made (templates included), closing other sessions on it first."""
    require_disposable(server, f"drop {name}")
    with server.connect() as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE false").format(sql.Identifier(name)))
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
