"""The installed plugin: built-in suites collected from any folder, families selected, every option from every source."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from synap_verify.plugin import OPTIONS
from synap_verify.settings import DEFAULT_SUITES, SUITES, Settings
from synap_verify.stash import SETTINGS

REPO = Path(__file__).resolve().parents[1]


def collected(result: pytest.RunResult) -> list[str]:
    """The node ids a ``--collect-only -q`` run printed."""
    return [line for line in result.stdout.lines if "::" in line and not line.startswith(("ERROR", "FAILED"))]


def modules(ids: list[str]) -> set[str]:
    return {Path(node.split("::")[0]).name for node in ids}


@pytest.fixture(scope="module")
def repository_items() -> list[str]:
    """What ``pytest --synap-group=analytics`` collects in this repository (its testpaths are the built-in suites)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                           "--synap-group=analytics"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return [Path(line.split("::")[0]).name + "::" + line.split("::", 1)[1]
            for line in done.stdout.splitlines() if "::" in line]


def test_an_empty_folder_collects_the_same_items_as_the_repository(pytester: pytest.Pytester,
                                                                    repository_items: list[str]) -> None:
    result = pytester.runpytest_subprocess("--collect-only", "-q", "-p", "no:cacheprovider", "--synap-group=analytics")
    assert result.ret == 0, result.stdout.str()[-2000:]
    here = [Path(node.split("::")[0]).name + "::" + node.split("::", 1)[1] for node in collected(result)]
    assert here == repository_items
    assert modules(here) == {"test_migrations.py", "test_contract.py", "test_integrity.py", "test_json_properties.py",
                             "test_rls.py", "test_api.py"}, "bench (test_regression.py) is not a default family"


def test_the_users_own_tests_and_conftest_run_beside_the_suites(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("import pytest\n\n@pytest.fixture\ndef tenant_header():\n    return 'X-Org'\n")
    pytester.makepyfile(test_app="def test_app(tenant_header):\n    assert tenant_header == 'X-Org'\n")
    result = pytester.runpytest_subprocess("--collect-only", "-q", "-p", "no:cacheprovider", "--synap-group=analytics",
                                           "--synap-suites=contract")
    assert modules(collected(result)) == {"test_app.py", "test_contract.py"}
    ran = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider", "test_app.py")  # named paths: no suites added
    ran.assert_outcomes(passed=1)


def test_suite_families_select_modules_and_a_typo_is_one_line(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--collect-only", "-q", "-p", "no:cacheprovider", "--synap-suites=rls,bench")
    assert modules(collected(result)) == {"test_rls.py", "test_regression.py"}
    bad = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--synap-suites=rsl")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["ERROR: unknown suite 'rsl'; did you mean 'rls'? (--synap-suites: migrations, *)"])


def test_the_bench_suite_under_xdist_is_one_line(pytester: pytest.Pytester) -> None:
    """Two workers would time each other's work into the gate's samples; other suites take -n."""
    bad = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--synap-suites=rls,bench", "-n", "2")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["ERROR: the bench suite times queries and cannot share the machine with other xdist "
                              "workers: run --synap-suites=bench without -n"])


def test_xdist_workers_steal_the_suites_items_unless_the_user_chose(pytester: pytest.Pytester) -> None:
    """``-n`` alone runs the suites with work stealing: their items differ a thousandfold in cost, and xdist's
    default ``load`` handed one worker every API shard in its first chunk (it ran 40 s alone at the end). A
    ``--dist`` the user gives is kept, and a run of the user's own named tests is left as xdist makes it."""
    pytester.makepyfile(test_app="def test_app():\n    pass\n")
    common = ("-p", "no:cacheprovider", "-v", "-n", "1")  # one worker is enough to see the scheduler chosen
    suites = pytester.runpytest_subprocess(*common, "--synap-suites=rls", "-k", "no_such_test")
    assert suites.ret == pytest.ExitCode.NO_TESTS_COLLECTED, suites.stderr.str()  # -n is fine for the other suites
    suites.stdout.fnmatch_lines(["scheduling tests via WorkStealingScheduling"])
    chosen = pytester.runpytest_subprocess(*common, "--synap-suites=rls", "-k", "no_such_test", "--dist", "load")
    chosen.stdout.fnmatch_lines(["scheduling tests via LoadScheduling"])
    own = pytester.runpytest_subprocess(*common, "test_app.py")
    own.stdout.fnmatch_lines(["scheduling tests via LoadScheduling"])
    own.assert_outcomes(passed=1)


def test_a_run_of_the_suites_freezes_what_collection_made_and_a_run_of_the_users_tests_does_not(
        pytester: pytest.Pytester) -> None:
    """After collection a run of the suites leaves what it made to the end of the session, outside the garbage
    collector's walks; a run of the user's own named tests is untouched. Seeded defect: without the hook the count
    of frozen objects is 0 in both runs."""
    pytester.makepyfile(test_app="import gc\n\ndef test_app():\n    print('frozen', gc.get_freeze_count())\n")

    def frozen(result: pytest.RunResult) -> int:
        found = re.search(r"frozen (\d+)", result.stdout.str())
        assert found, result.stdout.str()
        return int(found.group(1))

    common = ("-p", "no:cacheprovider", "-s", "-q")
    assert frozen(pytester.runpytest_subprocess(*common, "--synap-suites=rls", "-k", "test_app")) > 10_000
    assert frozen(pytester.runpytest_subprocess(*common, "test_app.py")) == 0


def test_a_suite_whose_extra_is_missing_is_left_out_and_named(pytester: pytest.Pytester) -> None:
    """Installed without the api extra (Schemathesis absent: its module entry is None, so import and find_spec see
    no package), a default run collects every other suite and names the install; naming the suite is one line.

    Seeded defect: the suites collected whatever is installed, and the API suite's import failed collection with a
    traceback for every plain ``pip install synap-verify``."""
    pytester.makeconftest("import sys\nsys.modules['schemathesis'] = None\n")
    hidden = ("-p", "no:cacheprovider", "-p", "no:schemathesis")
    result = pytester.runpytest_subprocess("--collect-only", "-q", *hidden)
    assert result.ret == pytest.ExitCode.OK
    assert modules(collected(result)) == {SUITES[f] for f in DEFAULT_SUITES} - {"test_api.py"}
    result.stdout.fnmatch_lines(["synap-verify: the api suite needs schemathesis: pip install 'synap-verify[api]' "
                                 "(left out of this run)"])
    named = pytester.runpytest_subprocess("--collect-only", "-q", *hidden, "--synap-suites=api,rls")
    assert named.ret == pytest.ExitCode.USAGE_ERROR
    named.stderr.fnmatch_lines(["ERROR: the api suite needs schemathesis: pip install 'synap-verify[api]'"])
    pytester.makepyfile(test_app="def test_app():\n    pass\n")
    own = pytester.runpytest_subprocess("-q", *hidden, "test_app.py")  # only the user's tests: nothing left out
    assert own.ret == pytest.ExitCode.OK and "api suite" not in own.stdout.str()


def test_disabling_the_plugin_leaves_only_the_users_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_app="def test_app():\n    pass\n")
    result = pytester.runpytest_subprocess("--collect-only", "-q", "-p", "no:cacheprovider", "-p", "no:synap_verify")
    assert modules(collected(result)) == {"test_app.py"}


# option -> (a value as a user writes it, the value Settings must hold). Every option of the plugin is here:
# test_every_option_is_covered fails when one is added without a case.
CASES: dict[str, tuple[str, Any]] = {
    "group": ("analytics", ("analytics",)),
    "suites": ("rls", ("rls",)),
    "backend": ("system", "system"),
    "dsn": ("postgresql://u@127.0.0.1:9/app_test", "postgresql://u@127.0.0.1:9/app_test"),
    "dsn-disposable": ("true", True),
    "scale": ("tiny", "tiny"),
    "seed": ("7", 7),
    "alembic": ("migrations", "<tmp>/migrations"),
    "contract": ("contract.yaml", "<tmp>/contract.yaml"),
    "baseline": ("schema.sql", "<tmp>/schema.sql"),
    "baseline-prelude": ("schema.sql", "<tmp>/schema.sql"),
    "baseline-skip-missing": ("true", True),
    "stats": ("schema.sql", "<tmp>/schema.sql"),
    "stats-scale": ("0.5", 0.5),
    "cache": ("off", None),
    "keep": ("true", True),
    "run-dir": ("out", "<tmp>/out"),
    "report": ("out/report.html", "<tmp>/out/report.html"),
    "api": ("app.main:app", "app.main:app"),
    "api-url": ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
    "api-header": ("Authorization: Bearer t", ("Authorization: Bearer t",)),
    "api-tenant": ("a=X-Tenant: 1\n  b=X-Tenant: 2", ("a=X-Tenant: 1", "b=X-Tenant: 2")),
    "api-tenant-id": ("b=6f1c0f0e-0000-4000-8000-000000000001", ("b=6f1c0f0e-0000-4000-8000-000000000001",)),
    "api-login": ("/auth/login", "/auth/login"),
    "api-login-body": ("{}", "{}"),
    "api-login-token": ("data.token", "data.token"),
    "api-login-header": ("X-Token: {token}", "X-Token: {token}"),
    "api-login-tenant-id": ("user.tenant_id", "user.tenant_id"),
    "api-public": ("GET /health", ("GET /health",)),
    "bench-round-trip-ms": ("0.25", 0.25),
    "bench-unprepared": ("true", True),
    "bench-rounds": ("12", 12),
}
FLAGS = {name for name, (_, kwargs) in OPTIONS.items() if kwargs.get("action") == "store_true"}


def test_every_option_is_covered() -> None:
    assert set(CASES) == set(OPTIONS)


# a configuration parsed in this process runs pytest's unraisable-exception cleanup when the test ends: five
# full garbage collections of this large process, about 0.6 s per test, for configurations that run nothing
QUICK = ("-p", "no:unraisableexception")


@pytest.mark.parametrize("source", ["cli", "ini", "pyproject", "env"])
@pytest.mark.parametrize("option", list(CASES))
def test_each_option_reaches_settings_from_each_source(option: str, source: str, pytester: pytest.Pytester,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    text, expected = CASES[option]
    for name in ("migrations", "out"):
        (pytester.path / name).mkdir(exist_ok=True)
    for name in ("contract.yaml", "schema.sql"):
        (pytester.path / name).write_text("")
    monkeypatch.chdir(pytester.path)
    key = option.replace("-", "_")
    args: list[str] = []
    if source == "cli":
        args = [f"--synap-{option}"] if option in FLAGS else [f"--synap-{option}={v.strip()}" for v in text.split("\n")]
    elif source == "ini":
        pytester.makeini(f"[pytest]\nsynap_{key} = {text}\n")
    elif source == "pyproject":
        pytester.makepyprojecttoml(f"[tool.synap_verify]\n{key} = {text!r}\n".replace("'", '"'))
    else:
        monkeypatch.setenv(f"SYNAP_{key.upper()}", text)
    settings: Settings = pytester.parseconfigure(*QUICK, *args).stash[SETTINGS]
    field = "groups" if option == "group" else key
    want = expected.replace("<tmp>", str(pytester.path.resolve())) if isinstance(expected, str) else expected
    got = getattr(settings, field)
    assert (str(got) if isinstance(got, Path) else got) == want


def test_the_command_line_wins_over_files_and_environment(pytester: pytest.Pytester,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyprojecttoml('[tool.synap_verify]\nscale = "prod"\nbench_rounds = 3\n')
    monkeypatch.setenv("SYNAP_SCALE", "small")
    monkeypatch.setenv("SYNAP_BENCH_ROUNDS", "4")
    settings = pytester.parseconfigure(*QUICK, "--synap-scale=tiny").stash[SETTINGS]
    assert (settings.scale, settings.bench_rounds) == ("tiny", 3)


def test_a_bad_value_from_a_file_is_one_usage_line(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml('[tool.synap_verify]\nbench_rounds = "many"\n')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert re.search(r"ERROR: --synap-bench-rounds must be a number, got 'many'", result.stderr.str())
