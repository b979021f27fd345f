"""The report's collector: a pytest plugin object that gathers outcomes as tests run and, at the end,
turns the suites' records, the RLS reports and the pipeline into one JSON-ready document.

The document is the report: the HTML is rendered from it alone, so ``synap-verify report --from-json``
rebuilds the same page and the JSON twin never disagrees with what the page shows.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from synap_verify.findings import Finding
from synap_verify.groups import GROUPS, SCHEMA
from synap_verify.report import SECTIONS
from synap_verify.stash import PIPELINE, RECORDS, RLS_REPORTS, SETTINGS, SKIPS

NO_GROUP = "(global)"
MAX_SAMPLES = 120  # per side and query: enough for a strip plot, small enough for a readable file
# test module -> report section, so outcomes land beside the findings of the same suite
SUITE_SECTIONS = {"test_contract": "contract", "test_integrity": "nothing-lost", "test_json_properties": "nothing-lost",
                  "test_rls": "rls",
                  "test_regression": "benchmark", "test_migrations": "migrations", "test_api": "api"}


class Collector:
    """Registered by the plugin when ``--synap-report`` is given; writes the report at the session's end."""

    def __init__(self, config: pytest.Config, path: Path) -> None:
        self.config = config
        self.path = path if path.suffix == ".html" else path.with_suffix(".html")
        self.started = time.time()
        self.groups: dict[str, str] = {}  # nodeid -> group, from the synap_group marker
        self.suites: dict[str, str] = {}  # nodeid -> report section, from the test's module file
        self.outcomes: dict[str, dict[str, Any]] = {}
        self.written: tuple[Path, Path, str] | None = None
        self.server_version: str | None = None  # read while the server runs: it stops before the session ends

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        for item in session.items:
            self.suites[item.nodeid] = SUITE_SECTIONS.get(item.path.stem, item.path.stem)
            marker = item.get_closest_marker("synap_group")
            if marker:
                self.groups[item.nodeid] = marker.args[0]

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """One outcome per test: the call's, or the setup/teardown error that replaced it."""
        if report.when == "setup" and report.passed and self.server_version is None:
            self._read_server_version()
        if report.when != "call" and report.passed:
            return
        outcome = report.outcome if report.when == "call" or report.skipped else "error"
        previous = self.outcomes.get(report.nodeid)
        if previous and previous["outcome"] in ("failed", "error"):
            return
        self.outcomes[report.nodeid] = {
            "nodeid": report.nodeid,
            "suite": self.suites.get(report.nodeid) or Path(report.fspath).stem,
            "group": self.groups.get(report.nodeid, NO_GROUP),
            "outcome": outcome,
            "seconds": round(report.duration, 3),
            "message": _message(report),
        }

    def _read_server_version(self) -> None:
        pipeline = self.config.stash.get(PIPELINE, None)
        if pipeline is not None:
            try:
                self.server_version = pipeline.server.version()
            except Exception as exc:  # a report of a broken run is still a report
                self.server_version = f"unknown ({type(exc).__name__})"

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        doc = build(self.config, list(self.outcomes.values()), int(exitstatus), self.started, self.server_version)
        self.written = write(doc, self.path)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.written:
            html_path, json_path, verdict = self.written
            terminalreporter.write_line(f"synap-verify: report {html_path} ({html_path.stat().st_size / 1024:.0f} KiB), "
                                        f"{json_path.name} beside it: {verdict}")


def write(doc: dict[str, Any], path: Path) -> tuple[Path, Path, str]:
    """The HTML file and its JSON twin (same name, ``.json``)."""
    from synap_verify.report.html import render

    path.parent.mkdir(parents=True, exist_ok=True)
    json_path = path.with_suffix(".json")
    json_path.write_text(json.dumps(doc, indent=1, default=str))
    path.write_text(render(doc))
    return path, json_path, doc["verdict"]["status"]


def build(config: pytest.Config, outcomes: list[dict[str, Any]], exitstatus: int, started: float,
          server_version: str | None = None) -> dict[str, Any]:
    """The whole report as plain data: meta, verdict, per-group summary and every section.

    Findings of groups that were not selected are left out, as pytest deselects their items: a
    partial migration leaves the other groups' tables legacy, which is not what this run verifies.
    """

    settings = config.stash[SETTINGS]
    pipeline = config.stash.get(PIPELINE, None)
    findings: dict[str, list[dict[str, Any]]] = {}
    bench: list[dict[str, Any]] = []
    for section, result in config.stash.get(RECORDS, []):
        for item in result:
            if isinstance(item, Finding):
                findings.setdefault(section, []).append(item.as_dict())
            else:  # a benchmark comparison: its findings count like every other finding
                bench.append(_comparison(item))
                findings.setdefault(section, []).extend(f.as_dict() for f in item.findings)
    rls = _rls(config, settings.contract)
    if "migrated" in rls:
        findings["rls"] = rls["migrated"].pop("findings")
    if "legacy" in rls:
        rls["legacy"].pop("findings")
    def selected(group: str) -> bool:
        return group in settings.groups or group not in GROUPS

    for section, found in findings.items():
        kept = dict.fromkeys(json.dumps(f, sort_keys=True) for f in found if selected(f["group"]))
        findings[section] = [json.loads(f) for f in sorted(kept)]
    for r in rls.values():
        r["matrix"] = {name: row for name, row in r["matrix"].items() if selected(r["groups"][name] or NO_GROUP)}
        r["groups"] = {name: r["groups"][name] for name in r["matrix"]}
    ran = {t["suite"] for t in outcomes} | set(findings) | ({"benchmark"} if bench else set())
    skips: dict[str, str] = config.stash[SKIPS].copy() if SKIPS in config.stash else {}
    doc: dict[str, Any] = {
        "meta": _meta(settings, pipeline, exitstatus, started, server_version),
        "sections_run": list(dict.fromkeys(section for section in (*SECTIONS, *sorted(ran)) if section in ran)),
        "tests": sorted(outcomes, key=lambda o: o["nodeid"]),
        "findings": findings,
        "rls": rls,
        "benchmark": bench,
        "migration": migration_section(pipeline),
        "load": load_section(pipeline),
        "skipped_states": skips,
    }
    doc["groups"] = summarise_groups(doc, settings.groups)
    doc["verdict"] = verdict(doc)
    return doc


def summarise_groups(doc: Mapping[str, Any], groups: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Per group: test outcomes, findings per section, migration seconds and the longest exclusive lock."""
    summary = {g: _empty() for g in (*groups, NO_GROUP)}
    for test in doc["tests"]:
        counts = summary.setdefault(test["group"], _empty())["tests"]
        counts[test["outcome"]] = counts.get(test["outcome"], 0) + 1
    for section, found in doc["findings"].items():
        for f in found:
            group = f["group"] if f["group"] in summary else NO_GROUP
            counts = summary[group]["findings"]
            counts[section] = counts.get(section, 0) + 1
    for step in doc["migration"]["steps"]:
        group = step["group"] if step["group"] in summary else NO_GROUP
        summary[group]["migrate_seconds"] = round(summary[group]["migrate_seconds"] + step["seconds"], 3)
        exclusive = [lk["seconds"] for lk in step["locks"] if lk["mode"] == "AccessExclusiveLock"]
        summary[group]["exclusive_lock_seconds"] = max(summary[group]["exclusive_lock_seconds"], *exclusive, 0.0)
    if not any(summary[NO_GROUP]["tests"].values()) and not summary[NO_GROUP]["findings"] \
            and not summary[NO_GROUP]["migrate_seconds"]:
        del summary[NO_GROUP]
    return summary


def verdict(doc: Mapping[str, Any]) -> dict[str, Any]:
    """GO only when every test passed, no section has a finding, and nothing was left unchecked."""
    counts: dict[str, int] = {}
    for test in doc["tests"]:
        counts[test["outcome"]] = counts.get(test["outcome"], 0) + 1
    no_go = [f"{n} test(s) {outcome}" for outcome, n in counts.items() if outcome in ("failed", "error")]
    no_go += [f"{section}: {len(found)} finding(s) in {', '.join(sorted({f['group'] for f in found}))}"
              for section, found in doc["findings"].items() if found]
    incomplete = [f"the {state} state was not checked: {why}" for state, why in doc["skipped_states"].items()]
    if not doc["tests"]:
        incomplete.append("no test ran")
    if doc["meta"]["exitstatus"] not in (0, 1):
        incomplete.append(f"pytest ended with exit status {doc['meta']['exitstatus']} (interrupted or a usage error)")
    status = "NO-GO" if no_go else "INCOMPLETE" if incomplete else "GO"
    return {"status": status, "reasons": no_go + incomplete, "counts": counts}


def _empty() -> dict[str, Any]:
    return {"tests": {}, "findings": {}, "migrate_seconds": 0.0, "exclusive_lock_seconds": 0.0}


def _message(report: pytest.TestReport) -> str:
    """The skip reason, or the first lines of a failure (the suites already put their findings there)."""
    if report.passed:
        return ""
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    lines = report.longreprtext.strip().splitlines()
    return "\n".join(lines[:40] + ([f"... ({len(lines) - 40} more lines)"] if len(lines) > 40 else []))


def _meta(settings: Any, pipeline: Any, exitstatus: int, started: float, version: str | None) -> dict[str, Any]:
    server = {"backend": settings.backend, "where": pipeline.server.describe() if pipeline else None, "version": version}
    return {
        "title": f"{SCHEMA} restructure verification",
        "database": SCHEMA,
        "server": server,
        "scale": settings.scale,
        "seed": settings.seed,
        "groups": list(settings.groups),
        "contract": _relative(settings.contract),
        "migrations": _relative(settings.alembic),
        "commit": commit(),
        "started": datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
        "seconds": round(time.time() - started, 1),
        "exitstatus": exitstatus,
        "python": platform.python_version(),
        "pytest": pytest.__version__,
        "command": " ".join(["pytest", *sys.argv[1:]]) if Path(sys.argv[0]).name in ("pytest", "py.test") else None,
    }


def commit() -> str:
    """The commit of the repository the run started in, with ``+dirty`` when tracked files differ from it."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=Path.cwd(), capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()

    try:
        head = git("rev-parse", "--short=12", "HEAD")
        return head + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"


def _relative(path: Any) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _rls(config: pytest.Config, contract: Path) -> dict[str, dict[str, Any]]:
    """Each probed database's matrix, with the group of every object (from the contract, else its findings)."""
    reports = config.stash.get(RLS_REPORTS, {})
    if not reports:
        return {}
    from synap_verify.rls import setup

    out = {}
    for label, result in reports.items():
        probes = result.probes
        groups = {f.table: f.group for f in result.findings} | setup(contract).groups
        out[label] = {
            "role": probes.role, "writes": probes.writes, "seconds": round(probes.seconds, 2),
            "matrix": probes.matrix, "groups": {name: groups.get(name, "") for name in probes.matrix},
            "notes": list(probes.notes), "findings": [f.as_dict() for f in result.findings],
        }
    return out


def _group_of(revision: str) -> str:
    prefix = revision.rsplit("_", 1)[0]
    return prefix if prefix in GROUPS else NO_GROUP


def migration_section(pipeline: Any) -> dict[str, Any]:
    """The pipeline's migration steps and stage timings (also the rehearsal's report)."""
    if pipeline is None:
        return {"steps": [], "timings": {}}
    steps = [{**asdict(step), "group": _group_of(step.revision), "seconds": round(step.seconds, 3)}
             for step in pipeline.steps]
    reused = [name for name in pipeline.cached.stored if name in pipeline.cached.used] if pipeline.cached else []
    return {"steps": steps, "timings": {k: round(v, 2) for k, v in pipeline.timings.items()}, "reused": reused}


def load_section(pipeline: Any) -> dict[str, Any] | None:
    """What the load stage generated, per table (also the rehearsal's report)."""
    report = getattr(pipeline, "load_report", None)
    if report is None:
        return None
    return {"rows": dict(sorted(report.rows.items(), key=lambda kv: -kv[1])), "total_rows": report.total_rows,
            "seconds": round(report.seconds, 2), "bytes": report.bytes, "scenarios": dict(report.scenarios),
            "notes": list(report.notes)}


def _comparison(result: Any) -> dict[str, Any]:
    """One benchmarked query as the table row and the samples (ms, thinned evenly) its plot needs.

    A query that could not be measured (its BENCH-ERROR finding says why) has no timing: its timing
    fields are None, so the page shows a dash and the verdict, and the plot leaves it out.
    """
    t = result.confirmed or result.timing

    def thin(samples: list[float]) -> list[float]:
        step = max(1, len(samples) // MAX_SAMPLES)
        return [round(s * 1000, 4) for s in samples[::step]]

    timed: dict[str, Any] = {"before_ms": None, "after_ms": None, "ratio": None, "ci": None, "p": None}
    if t is not None:
        timed = {"before_ms": round(t.before_ms, 4), "after_ms": round(t.after_ms, 4), "ratio": round(t.ratio, 4),
                 "ci": [round(c, 4) for c in t.ci], "p": t.p}
    return {"query": result.query.name, "group": result.query.group, **timed,
            "confirmed": result.confirmed is not None, "buffers_before": result.before_plan.buffers,
            "buffers_after": result.after_plan.buffers, "plan": result.plan_change, "verdict": result.verdict,
            "cached_plan": f"{result.before_plan.cache}/{result.after_plan.cache}" if result.before_plan.cache else "",
            "accepted": asdict(result.query.accepted) if result.query.accepted else None,
            "samples_before": thin(result.samples.before), "samples_after": thin(result.samples.after)}
