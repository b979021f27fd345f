"""An existing server given by DSN (staging, a production copy).

Destructive work (CREATE/DROP DATABASE, roles, probe rows) happens only when the DSN is declared
disposable, by flag or by a database name matching the disposable pattern; otherwise the harness stays
read-only and says which suites it skipped.
"""

from __future__ import annotations

import re

import psycopg
from psycopg.conninfo import conninfo_to_dict

from synap_verify.errors import SynapError
from synap_verify.server import Server, redact


def connect_check(conninfo: str, timeout: int = 5) -> None:
    """Fail with one line naming host:port (never the password) when the server cannot be reached."""
    try:
        parts = conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:
        raise SynapError("--synap-dsn is not a valid connection string or postgresql:// URL") from None
    try:
        with psycopg.connect(conninfo, connect_timeout=timeout, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        reason = _reason(str(exc), parts.get("password"))
        raise SynapError(f"cannot connect to {redact(conninfo)}: {reason}; check --synap-dsn and that the server is up") from None


def _reason(text: str, password: object) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    telling = [ln for ln in lines if any(word in ln for word in ("FATAL", "refused", "timeout", "failed"))]
    line = (telling or lines or ["unknown error"])[-1]
    return line.replace(str(password), "***") if password else line


def is_disposable(conninfo: str, declared: bool, pattern: str) -> bool:
    dbname = str(conninfo_to_dict(conninfo).get("dbname") or "")
    return declared or bool(re.search(pattern, dbname))


def attach(conninfo: str, declared_disposable: bool, pattern: str) -> Server:
    connect_check(conninfo)
    return Server("dsn", conninfo, disposable=is_disposable(conninfo, declared_disposable, pattern))
