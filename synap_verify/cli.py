"""``synap-verify``: the harness's commands, each thin over the same functions the suites use.

Exit codes, for every command: 0 clean, 1 findings, 2 usage or connection error. A command module
exposes ``add_arguments(parser)`` and ``run(args) -> int``; modules load lazily so ``--help`` is fast.
Command modules live in ``synap_verify.commands`` (one per subcommand); ``load`` stays in its own package.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from synap_verify import interrupts
from synap_verify.errors import SynapError

# command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "contract": ("synap_verify.commands.contract", "check a database against the restructure contract"),
    "plan": ("synap_verify.commands.plan", "compute the restructure from the contract and a live catalog: revisions, dry run"),
    "rehearse": ("synap_verify.commands.rehearse",
                 "load a schema, plan it, migrate a copy and judge it (contract, equivalence, RLS) in one command"),
    "rls": ("synap_verify.commands.rls", "lint row-level security and probe for cross-tenant leaks"),
    "equivalence": ("synap_verify.commands.equivalence", "compare a legacy database with its migrated copy"),
    "preflight": ("synap_verify.commands.preflight", "list legacy rows the restructure would reject or alter"),
    "bench-provision": ("synap_verify.commands.bench_provision", "time server start, template clones and catalog reads"),
    "report": ("synap_verify.commands.report", "run the suites into an HTML report with a JSON twin, or rebuild one"),
    "er": ("synap_verify.commands.er", "regenerate the ER diagrams (Mermaid) of the legacy and migrated schema"),
    "archive-backups": ("synap_verify.commands.archive_backups",
                        "pg_dump, checksum, audit and drop the backup_* tables (the backup group)"),
    "bench-migrate": ("synap_verify.commands.bench_migrate", "time each revision and its longest ACCESS EXCLUSIVE lock"),
    "generate": ("synap_verify.commands.generate", "build a scratch database from any schema dump and fill it with "
                 "production-shaped data that meets every constraint"),
    "stats": ("synap_verify.commands.stats", "export production's planner statistics (never a row), or measure how "
              "close a statistics-shaped copy is to its source"),
    "load": ("synap_verify.loadtest.command", "Locust load on the API, or the migration run under load (zero downtime)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="synap-verify", description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.set_defaults(module=module)
        try:
            importlib.import_module(module).add_arguments(command)
        except ModuleNotFoundError:
            command.set_defaults(missing=True)
    return parser


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every checking command shares: which database, which groups, which output format."""
    parser.add_argument("--dsn", help="database to check (default: a freshly migrated embedded database)")
    parser.add_argument("--group", action="append", default=[], help="restructure group(s); repeatable or comma list")
    parser.add_argument("--format", choices=("text", "json", "markdown"), default="text")
    parser.add_argument("--scale", default="tiny", help="data profile of the embedded database (default: tiny)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--cache", default=None, help="state cache folder for the embedded database, or off "
                        "(default: the user cache folder; SYNAP_CACHE)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "missing", False):
        print(f"synap-verify: '{args.command}' is not available in this installation", file=sys.stderr)
        return 2
    restore = interrupts.install()  # Ctrl-C and SIGTERM stop the command and any server it started
    try:
        return int(importlib.import_module(args.module).run(args))
    except SynapError as exc:
        print(f"synap-verify: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("synap-verify: interrupted", file=sys.stderr)
        return 130
    finally:
        restore()


if __name__ == "__main__":
    sys.exit(main())
