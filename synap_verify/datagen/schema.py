"""Load a schema file with psql, so that pg_dump output (with its meta-commands) loads as it would by hand.

A real dump often uses objects it does not define (helper functions, roles, extensions the server lacks).
By default the first such object stops the load with one line naming it, its file:line and the ways out;
``prelude`` runs SQL first (e.g. those functions), ``skip_missing`` loads everything else and lists every
statement left out and why. Settings newer than the server (``SET transaction_timeout = 0``) are ignored
and listed, as a server that does not know them has nothing to set.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg

from synap_verify.errors import SynapError
from synap_verify.server import embedded

_PSQL_ERROR = re.compile(r"^psql:(?P<file>.*?):(?P<line>\d+): (?P<level>ERROR|FATAL|error):\s+"
                         r"(?:(?P<code>[0-9A-Z]{5}): )?(?P<message>.*)$", re.M)
# SQLSTATEs of "the dump uses an object that is not there": undefined function/object/table/column/schema,
# an extension the server does not ship (0A000 since PG 15, 58P01 before)
MISSING = {"42883", "42704", "42P01", "42703", "3F000", "0A000", "58P01"}
_SET = re.compile(r"^SET\s+(\w+)\s*(?:=|TO)\s*.*;\s*$", re.I)
_EXTENSION = re.compile(r'extension "([^"]+)" is not available|could not open extension control file ".*/([^/]+)\.control"')
PGDMP = b"PGDMP"


@dataclass(frozen=True)
class LeftOut:
    """A statement of the dump that was not loaded, and why."""

    location: str  # file:line of the statement's first line
    statement: str  # its first line
    reason: str

    def __str__(self) -> str:
        return f"{self.location}: {self.statement} -- {self.reason}"


def load_schema_file(dsn: str, path: Path, prelude: Path | None = None, skip_missing: bool = False) -> list[LeftOut]:
    """Run ``path`` (after ``prelude``) with psql; return what was left out (only ever with ``skip_missing``).

    A failure is one line: file:line, error, statement, and for a missing object the ways out.
    """
    text = _read_dump(path)
    if prelude is not None:
        _read_dump(prelude)
        _raise_first(prelude, _psql(dsn, prelude, stop=True), prelude.read_text(errors="replace"), missing_hint=False)
    ignored, runnable = _drop_unknown_settings(dsn, path, text)
    try:
        errors = _psql(dsn, runnable, stop=not skip_missing)
    finally:
        if runnable != path:
            runnable.unlink()
    if not skip_missing:
        _raise_first(path, errors, text, missing_hint=True)
        return ignored
    fatal = [e for e in errors if not _is_missing(e)]
    if fatal:
        _raise_first(path, fatal, text, missing_hint=False)
    left = []
    for e in errors:
        start, first = statement_at(text, int(e["line"]))
        left.append(LeftOut(f"{path.name}:{start}", first, _describe(e)))
    return ignored + left


def _read_dump(path: Path) -> str:
    """The file's text, or one line saying why it is not a SQL dump psql can run."""
    if not path.is_file():
        raise SynapError(f"schema file not found: {path}")
    head = path.read_bytes()[:4096]
    if head.startswith(PGDMP):
        raise SynapError(f"{path.name} is a pg_dump archive (custom/tar format), not SQL: "
                         f"pg_restore --schema-only -f schema.sql {path}")
    if b"\x00" in head:
        raise SynapError(f"{path.name} is not a SQL text file (binary content): give a pg_dump --schema-only output")
    try:
        return path.read_text()
    except UnicodeDecodeError:
        raise SynapError(f"{path.name} is not UTF-8 text: give a pg_dump --schema-only output") from None


def _psql(dsn: str, path: Path, stop: bool) -> list[dict[str, str]]:
    """psql's errors (file, line, level, SQLSTATE, message), in order; ON_ERROR_STOP when ``stop``."""
    psql = embedded.bindir() / "psql"
    env = {**os.environ, "PGOPTIONS": "-c client_min_messages=warning"}
    argv = [str(psql), "-X", "-q", "-v", "VERBOSITY=verbose", "-d", dsn, "-f", str(path)]
    if stop:
        argv[3:3] = ["-v", "ON_ERROR_STOP=1"]
    done = subprocess.run(argv, capture_output=True, text=True, env=env)
    errors = [m.groupdict() for m in _PSQL_ERROR.finditer(done.stderr)]
    if done.returncode != 0 and not errors:
        raise SynapError(f"{path.name}: psql failed: {' '.join(done.stderr.split()) or done.returncode}")
    return errors


def _is_missing(error: dict[str, str]) -> bool:
    return error["code"] in MISSING and (error["code"] != "0A000" or _EXTENSION.search(error["message"]) is not None)


def _describe(error: dict[str, str]) -> str:
    message = " ".join(error["message"].split())
    found = _EXTENSION.search(message)
    if found:
        return f"{message} on this server: use one that has it, --synap-backend=system|docker|dsn (generate: --backend)"
    return message


def _raise_first(path: Path, errors: list[dict[str, str]], text: str, missing_hint: bool) -> None:
    if not errors:
        return
    e = errors[0]
    start, first = statement_at(text, int(e["line"]))
    where = f"{path.name}:{start}: {e['level']}: {_describe(e)} ({first} ...)"
    if missing_hint and _is_missing(e):
        way = "the server lacks an extension the dump creates" if _EXTENSION.search(e["message"]) else \
            "the dump uses an object it does not define"
        raise SynapError(f"{where}: {way}; define it in --synap-baseline-prelude FILE (SQL run before the dump) "
                         "or load everything else with --synap-baseline-skip-missing (what is left out is listed)")
    raise SynapError(where)


def _drop_unknown_settings(dsn: str, path: Path, text: str) -> tuple[list[LeftOut], Path]:
    """Comment out top-level ``SET x = ...`` lines whose parameter this server does not know (a dump
    from a newer pg_dump sets e.g. ``transaction_timeout``); line numbers stay the same."""
    lines = text.splitlines(keepends=True)
    candidates = {i: m.group(1).lower() for i, line in enumerate(lines) if (m := _SET.match(line)) and "." not in m.group(1)}
    if not candidates:
        return [], path
    with psycopg.connect(dsn) as conn:
        known = {r[0] for r in conn.execute("SELECT name FROM pg_settings WHERE name = ANY(%s)",
                                            [sorted(set(candidates.values()))])}
        version = conn.info.server_version // 10000
    unknown = {i: name for i, name in candidates.items() if name not in known}
    if not unknown:
        return [], path
    for i in unknown:
        lines[i] = "-- " + lines[i]
    with tempfile.NamedTemporaryFile("w", suffix=".sql", prefix="synap-dump-", delete=False) as out:
        out.write("".join(lines))
    return [LeftOut(f"{path.name}:{i + 1}", lines[i][3:].strip(),
                    f"setting {name} is newer than PostgreSQL {version}: ignored") for i, name in unknown.items()], \
        Path(out.name)


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


def dump_schema(dsn: str, target: Path, schemas: tuple[str, ...] = ()) -> Path:
    """``pg_dump --schema-only`` of a live database (``schemas``, or all) into ``target``: a baseline taken
    from production or staging.

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
