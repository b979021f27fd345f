"""`synap-verify load --migrate` phased runs on embedded PostgreSQL: the old application through the expand, the new
one from the switch, the contract, and the seeded zero-downtime defects each failing the run.

Apart from the load runner's own tests (tests/test_load.py); each is a real Locust run bounded in seconds.
"""

from __future__ import annotations

import importlib.util
import json
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from loadruns import Runs, finish, side_by_side
from loadruns import rules as _rules
from loadruns import run as _run

from synap_verify.loadtest.config import CONFIG_FILE

# Locust runs in its own process: importing it here would monkey-patch this one with gevent.
pytestmark = pytest.mark.skipif(importlib.util.find_spec("locust") is None, reason="locust is not installed")

PHASED = ("--migrate", "--scale", "tiny", "--before", "2", "--after", "1", "--switch", "2", "--workers", "0")
# every renamed table and column, read and written under the old names, a read-after-write check after each write
RENAMED_STATEMENTS = {"messages list", "message insert", "turn insert", "turns list", "message feedback insert",
                      "execution insert (metadata)", "execution metadata update", "activity insert (metadata)",
                      "node execution insert (metadata)", "queue insert (metadata)", "agent insert (provider)",
                      "agent read-after-write",
                      "workflow_executions read-after-write", "workspace_activities read-after-write",
                      "node_executions read-after-write", "workflow_execution_queue read-after-write"}


def _phase(summary: dict[str, Any], name: str) -> dict[str, Any]:
    return next(p for p in summary["phases"] if p["phase"] == name)


def _mix(path: Path, weights: dict[str, int]) -> Path:
    """The packaged mix with some tasks' weights changed, written to ``path``."""
    text = CONFIG_FILE.read_text()
    for task, weight in weights.items():
        text = re.sub(rf"^{task} = \d+", f"{task} = {weight}", text, flags=re.M)
    path.write_text(text)
    return path


def _renamed_only() -> dict[str, int]:
    """Weights of a mix of only the tasks that name old tables and columns, at equal weights (the tasks of SQL
    valid on both schemas off)."""
    packaged = tomllib.loads(CONFIG_FILE.read_text())
    return dict.fromkeys(packaged["sql"]["weights"], 0) | dict.fromkeys(packaged["renamed"]["weights"], 1)


def test_phased_migration_serves_the_old_and_the_new_application(tmp_path: Path) -> None:
    """The old application's SQL (old table and column names, dropped columns read) through the expand, the new
    one's from the switch on, the contract once the old one stopped: no failed request in any phase.

    Only the renamed tasks run, at equal weights, for 12 users (about 100 tasks before the switch), so each
    meets the old names: at the packaged mix a task of weight 1 in 30 never ran in about one run in five."""
    mix = _mix(tmp_path / "mix.toml", _renamed_only())
    code, summary = _run(tmp_path / "run", *PHASED, "--config", str(mix), "--users", "12", "--spawn-rate", "12")
    assert code == (1 if summary["findings"] else 0)
    assert not _rules(summary) & {"LOAD-FAILED-REQUESTS", "LOAD-STEP-FAILED", "LOAD-STEP-BLOCKING"}, summary["findings"]
    assert [p["phase"] for p in summary["phases"]] == ["before", "expand", "switch", "contract", "after"]
    steps = [s["step"] for s in summary["steps"]]
    assert steps[-2:] == ["expanded", "restructured"] and len(steps) == 18
    assert _phase(summary, "expand")["old"]["requests"] > 0 and _phase(summary, "after")["new"]["requests"] > 0
    assert _phase(summary, "after")["old"]["requests"] == 0  # stopped at the switch, before the contract
    old = summary["by_app_and_name"]["old"]
    assert set(old) >= RENAMED_STATEMENTS, RENAMED_STATEMENTS - set(old)
    assert "| contract |" in (tmp_path / "run" / "phases.md").read_text()


# the old application's task whose statements meet each seeded defect (synap_verify/fixtures/loadtests/config.toml)
FOCUS = {"missing-view": "conversation_turns", "unsynced-column": "execution_metadata", "unsynced-list": "role_permissions"}
SEEDED = {"missing-view": 'relation "synapscale_db.llms_conversations_turns" does not exist',
          "unsynced-column": "not kept in sync",
          "unsynced-list": "rbac_roles.permissions reads",
          "old-app-at-contract": "contract refused"}


REFERENCE_WORKLOAD = Path(__file__).parents[1] / "loadtests" / "workloads" / "reference-small.yaml"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    """The four seeded runs and the workload run, started together when the first of their tests asks: each
    only has to meet its own defect, or to fail no request, and each is mostly waiting.

    The task that meets the defect weighs most of the mix: at its packaged weight (about one task run in 30) the
    dropped list's task sometimes never ran in the short switch phase, and the run passed without meeting it.
    At the contract the old application runs only tasks naming old names: the contract's guard reads the last
    statement of each connected session (no pg_stat_statements here), and with the packaged mix the old
    application's few sessions had all last run SQL valid on both schemas in one of five test runs, so the
    contract went through and the old application's requests failed instead."""
    folder = tmp_path_factory.mktemp("runs")
    argv = {"workload": (*PHASED, "--workload-from", str(REFERENCE_WORKLOAD))}
    for defect in SEEDED:
        mix = _mix(folder / f"{defect}.toml", {FOCUS[defect]: 40} if defect in FOCUS else _renamed_only())
        argv[defect] = (*PHASED, "--seeded-defect", defect, "--config", str(mix))
    with side_by_side(folder, argv) as started:
        yield started


@pytest.mark.parametrize(("defect", "expected"), list(SEEDED.items()))
def test_seeded_zero_downtime_defect_fails_the_run(runs: Runs, defect: str, expected: str) -> None:
    """A compatibility view left out (the old application's statements on it fail), a renamed column or a dropped
    list no longer synced (the read-after-write check fails), the old application still connected at the contract (refused)."""
    _, code, summary = finish(runs, defect)
    assert code == 1 and summary["seeded_defect"] == defect
    messages = " ".join(f["message"] for f in summary["findings"])
    assert expected in messages, summary["findings"]
    if defect == "old-app-at-contract":
        assert summary["steps"][-1]["step"] == "restructured" and summary["steps"][-1]["error"]
    else:
        failed = {name for p in summary["phases"] for name in p["failed_statements"]}
        assert failed and all(n.startswith(("old: ", "new: ")) for n in failed), failed


def test_phased_migration_runs_a_workload_in_both_applications_names(runs: Runs) -> None:
    """The reference API's statements (new names) mapped back for the old application through the expand and
    run as taken by the new one from the switch on: each statement's mapped names reported, nothing fails."""
    out, code, summary = finish(runs, "workload")
    assert not _rules(summary) & {"LOAD-FAILED-REQUESTS", "LOAD-STEP-FAILED"}, summary["findings"]
    assert code == (1 if summary["findings"] else 0)
    mapped = summary["statement_workload"]["mapped"]
    assert {m["written_in"] for m in mapped} == {"new"}
    assert {n for m in mapped for n in m["mapped"]} >= {"llms_messages -> messages",
                                                        "workflow_executions.meta_data -> metadata"}
    old = json.loads((out / "statements-legacy.json").read_text())["statements"]
    new = json.loads((out / "statements-new.json").read_text())["statements"]
    assert [s["name"] for s in old] == [s["name"] for s in new]
    assert any("synapscale_db.llms_messages" in s["sql"] for s in old)
    assert not any("llms_messages" in s["sql"] or "meta_data" in s["sql"] for s in new)
    assert _phase(summary, "expand")["old"]["requests"] > 0 and _phase(summary, "after")["new"]["requests"] > 0
    mapped_names = {m["name"] for m in mapped}
    assert mapped_names & set(summary["by_app_and_name"]["old"]) and mapped_names & set(summary["by_app_and_name"]["new"])
