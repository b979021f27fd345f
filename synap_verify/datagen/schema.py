"""Load a schema file with psql, so that pg_dump output (with its meta-commands) loads as it would by hand."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from synap_verify.errors import SynapError
from synap_verify.groups import SCHEMA
from synap_verify.server import embedded

_PSQL_ERROR = re.compile(r"^psql:(?P<file>.*?):(?P<line>\d+): (?P<message>(?:ERROR|FATAL|error):.*)$", re.M)


def load_schema_file(dsn: str, path: Path) -> None:
    """Run ``path`` with ``psql -v ON_ERROR_STOP=1``; a failure is one line: file:line, error, statement."""
    if not path.is_file():
        raise SynapError(f"schema file not found: {path}")
    psql = embedded.bindir() / "psql"
    env = {**os.environ, "PGOPTIONS": "-c client_min_messages=warning"}
    done = subprocess.run([str(psql), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-f", str(path)],
                          capture_output=True, text=True, env=env)
    if done.returncode == 0:
        return
    found = _PSQL_ERROR.search(done.stderr)
    if found is None:
        raise SynapError(f"{path.name}: psql failed: {done.stderr.strip() or done.returncode}")
    start, first = statement_at(path.read_text(errors="replace"), int(found["line"]))
    message = " ".join(found["message"].split())
    raise SynapError(f"{path.name}:{start}: {message} ({first} ...)")


def statement_at(text: str, line: int) -> tuple[int, str]:
    """(first line, first line's text) of the statement that ends on ``line``, as psql reports errors at the
    line where the failing statement ends. Skips comments and quoted text, incl. dollar quotes."""
    lines = text.splitlines()
    start: int | None = None
    i, n, lineno = 0, len(text), 1
    current = 1
    while i < n:
        ch = text[i]
        if ch == "\n":
            lineno += 1
            i += 1
            continue
        if lineno > line:
            break
        if text.startswith("--", i):
            i = text.find("\n", i) if "\n" in text[i:] else n
            continue
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            lineno += text.count("\n", i, end)
            i = end
            continue
        if start is None and not ch.isspace():
            start = lineno
        if ch == "\\" and (i == 0 or text[i - 1] == "\n"):  # a psql meta-command is a statement of one line
            current, start = lineno, None
            i = text.find("\n", i) if "\n" in text[i:] else n
            continue
        if ch in "'\"":
            end = i + 1
            while end < n and not (text[end] == ch and text[end + 1: end + 2] != ch):
                end += 2 if text[end] == ch else 1
            lineno += text.count("\n", i, end)
            i = end + 1
            continue
        tag = re.match(r"\$[A-Za-z_]*\$", text[i:i + 64]) if ch == "$" else None
        if tag:
            end = text.find(tag.group(0), i + len(tag.group(0)))
            end = n if end < 0 else end + len(tag.group(0))
            lineno += text.count("\n", i, end)
            i = end
            continue
        if ch == ";":
            current, start = start or lineno, None
        i += 1
    first = start if start is not None and start <= line else current
    return first, lines[first - 1].strip() if 0 < first <= len(lines) else ""


def dump_schema(dsn: str, target: Path, schemas: tuple[str, ...] = (SCHEMA,)) -> Path:
    """``pg_dump --schema-only`` of a live database into ``target``: a baseline taken from production or staging.

    Read-only on the source. The wheel's pg_dump (the newest major) dumps any server from 9.2 on.
    """
    from synap_verify.server import redact

    argv = [str(embedded.bindir() / "pg_dump"), "--schema-only", "--no-owner", "--no-privileges", "-f", str(target)]
    argv += [f"--schema={s}" for s in schemas] + ["-d", dsn]
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        raise SynapError(f"cannot dump the baseline schema of {redact(dsn)}: {reason.replace(dsn, redact(dsn))}")
    return target
