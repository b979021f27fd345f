"""``synap-verify bench-migrate``: how long each revision takes, and the longest ACCESS EXCLUSIVE lock it holds.

Builds the legacy state at the chosen scale, then applies the migrations one revision at a time with
the lock sampler of :mod:`synap_verify.migrate` watching, and prints one row per revision. This is the
zero-downtime evidence a reviewer reads before a go-live: a revision that holds ACCESS EXCLUSIVE on a
large table for seconds blocks every query on it for that long.
"""

from __future__ import annotations

import argparse

from synap_verify import migrate
from synap_verify.pipeline import Pipeline
from synap_verify.settings import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scale", default="small", help="data profile: tiny, small (default), prod")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--alembic", default=None, help="alembic.ini or migrations folder (default: the reference)")


def run(args: argparse.Namespace) -> int:
    settings = Settings.resolve({"scale": args.scale, "seed": args.seed, "alembic": args.alembic})
    pipeline = Pipeline.start(settings)
    try:
        db = pipeline.clone("legacy")
        rows = sum(pipeline.load_report.rows.values()) if pipeline.load_report else 0
        steps = migrate.upgrade(db.dsn, settings.alembic, [migrate.single_head(settings.alembic)],
                                on_step=lambda step: print(f"  {step.revision}: {step.seconds:.2f}s", flush=True))
        db.drop()
    finally:
        pipeline.stop()
    print(render(steps, settings.scale, rows))
    return 0


def render(steps: list[migrate.Step], scale: str, rows: int) -> str:
    lines = [f"scale {scale}: {rows:,} legacy rows",
             f"{'revision':<16} {'seconds':>8}  {'longest ACCESS EXCLUSIVE':<40} {'held s':>7} {'rows touched':>13}"]
    for step in steps:
        held = step.longest_exclusive()
        where = held.relation if held else "-"
        lines.append(f"{step.revision:<16} {step.seconds:>8.2f}  {where:<40} {held.seconds if held else 0:>7.2f} "
                     f"{step.rows_touched:>13,}")
    lines.append(f"{'total':<16} {sum(s.seconds for s in steps):>8.2f}")
    return "\n".join(lines)
