"""The committed ER diagrams (docs/er) are what the catalogs give today: regenerated and compared."""

from __future__ import annotations

from pathlib import Path

import pytest

from synap_verify.report import er


@pytest.fixture(scope="module")
def pages() -> dict[str, str]:
    return er.pages(er.read_schemas())


def test_committed_diagrams_are_not_stale(pages: dict[str, str], tmp_path: Path) -> None:
    er.write(pages, tmp_path)
    assert not er.stale(pages, tmp_path)  # the writer and the comparison agree
    different = er.stale(pages, Path(__file__).resolve().parents[1] / "docs" / "er")
    assert not different, f"docs/er is stale ({', '.join(different)}): run synap-verify er --out docs/er"


def test_changes_are_highlighted(pages: dict[str, str]) -> None:
    llm, workflows = pages["llm.md"], pages["workflows.md"]
    assert "table `llms_messages` renamed `messages`" in llm
    assert "messages:::changed {" in llm and "llms_messages:::changed {" in llm
    assert 'int rating "dropped"' in llm
    assert 'jsonb metadata "renamed from meta_data, was json"' in workflows
    assert '"workflow_id CASCADE (was NO ACTION)"' in workflows
    assert "backup_" in pages["backup.md"] and ":::dropped" in pages["backup.md"]
    assert "migration_archive:::new" in pages["foundation.md"]


def test_stale_page_is_reported(pages: dict[str, str], tmp_path: Path) -> None:
    er.write(pages, tmp_path)
    (tmp_path / "llm.md").write_text("edited by hand\n")
    (tmp_path / "gone.md").write_text("a group that no longer exists\n")
    assert er.stale(pages, tmp_path) == ["gone.md", "llm.md"]
    er.write(pages, tmp_path)
    assert not er.stale(pages, tmp_path)
