"""Where the harness's own data lives: package resources, so an installed wheel finds them anywhere.

The contract, the legacy schema and its expected findings, the data profiles, the benchmark workload and
the load-test configuration ship inside the package (``synap_verify/fixtures``); the reference
restructure ships as the ``synapscale`` package. Every one of them can be replaced by an option.
"""

from __future__ import annotations

import importlib.util
from importlib.resources import files
from pathlib import Path


def fixture(*parts: str) -> Path:
    """A file under the package's ``fixtures`` folder (installed wheels are unpacked, so it is a real path)."""
    return Path(str(files("synap_verify").joinpath("fixtures", *parts)))


def suites_dir() -> Path:
    """The built-in verification suites the plugin collects wherever it is installed."""
    return Path(str(files("synap_verify").joinpath("suites")))


def _reference_migrations() -> Path:
    """The reference restructure's Alembic migrations (found without importing the reference package)."""
    spec = importlib.util.find_spec("synapscale")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the reference package 'synapscale' is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "migrations"


REFERENCE_MIGRATIONS = _reference_migrations()
CONTRACT = fixture("contract.yaml")
GENERIC_CONTRACT = fixture("contracts", "generic.yaml")  # the global rules only, for any multi-tenant schema
LEGACY_SCHEMA = fixture("legacy", "schema.sql")
EXPECTED_LEGACY = fixture("legacy", "expected_findings.yaml")
LEGACY_GROUPS = fixture("legacy", "groups.toml")
PROFILES = fixture("profiles.toml")
WORKLOAD = fixture("workload.yaml")
LOAD_CONFIG = fixture("loadtests", "config.toml")
LOAD_THRESHOLDS = fixture("loadtests", "thresholds.toml")
