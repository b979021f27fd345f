"""``synap-verify rls``: lint row-level security and probe for cross-tenant leaks.

Exit 0 clean, 1 findings, 2 usage or connection error. Against ``--dsn`` the probes only read unless
``--disposable`` says the database may be written to (every write is rolled back all the same); the
fresh embedded database made when no DSN is given is always disposable.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

import psycopg

from synap_verify.commands import target
from synap_verify.errors import SynapError
from synap_verify.findings import RENDERERS
from synap_verify.groups import resolve_groups
from synap_verify.rls import check, render_matrix, setup
from synap_verify.rls.context import TenantContext
from synap_verify.server.templates import Database


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from synap_verify.cli import add_target_arguments

    add_target_arguments(parser)
    parser.add_argument("--disposable", action="store_true",
                        help="the --dsn database may be written to: run the writing probes (inside rolled-back transactions)")
    parser.add_argument("--tenant-setting", action="append", default=[], metavar="NAME",
                        help="setting that carries the tenant (repeatable; default: the contract's G5 settings)")
    parser.add_argument("--tenant-template", metavar="SQL",
                        help="SQL that sets the tenant for one transaction, with {tenant}, e.g. "
                             "\"SELECT set_config('app.tenant', {tenant}, true)\"")
    parser.add_argument("--tenant-function", action="append", default=[], metavar="NAME",
                        help="function policies read the tenant through (repeatable; default: current_tenant_id)")
    parser.add_argument("--app-role", metavar="NAME", help="the application's database role (default: synapscale_app)")
    parser.add_argument("--matrix", action="store_true", help="print the whole table x probe matrix, passing rows too")


def run(args: argparse.Namespace) -> int:
    rls = setup()
    config = rls.config
    if args.tenant_setting or args.tenant_template or args.tenant_function:
        context = TenantContext(settings=tuple(args.tenant_setting) if args.tenant_setting or not args.tenant_template else (),
                                template=args.tenant_template,
                                functions=tuple(args.tenant_function) or config.context.functions)
        config = replace(config, context=context)
    if args.app_role:
        config = replace(config, app_role=args.app_role)
    groups = resolve_groups(args.group)
    with target(args, groups) as db:
        checked = Database(replace(db.server, disposable=args.disposable or not args.dsn), db.name)
        try:
            result = check(checked, config, rls.groups, rls.probed(groups))
        except psycopg.Error as exc:
            raise SynapError(f"RLS check failed: {str(exc).strip().splitlines()[0]}") from None
    findings = [f for f in result.findings if not args.group or f.group in groups or f.table == "-"]
    output = RENDERERS[args.format](findings)
    if output:
        print(output)
    if args.format == "text":
        print(render_matrix(result.probes, all_rows=args.matrix), file=sys.stderr)
        print(f"synap-verify: {len(findings)} RLS finding(s) in {len(groups)} group(s)", file=sys.stderr)
    return 1 if findings else 0
