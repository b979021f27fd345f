"""The verification report: a real pytester run of the contract and RLS suites with a seeded finding,
the page rendered by headless Chromium (Debian's package), and a synthetic report of 150 tables.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path
from typing import Any

import pytest

from synap_verify.cli import main
from synap_verify.groups import GROUPS
from synap_verify.report.collect import SUITE_SECTIONS, summarise_groups, verdict
from synap_verify.report.html import render
from synap_verify.resources import suites_dir

SEEDED = '''
from synap_verify.findings import Finding
from synap_verify.stash import record


def test_seeded_loss(pytestconfig):
    record(pytestconfig, "nothing-lost", [Finding("EQ-ROWS", "analytics", "analytics_events", "3 rows <b>lost</b>",
                                                  expected="100", actual="97")])
'''
BANNER = {"GO": (0x1A, 0x7F, 0x37), "NO-GO": (0xCF, 0x22, 0x2E), "INCOMPLETE": (0x9A, 0x67, 0x00)}


@pytest.fixture(scope="module")
def report_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], str]:
    """One subprocess run: the built-in contract and RLS suites on analytics at tiny scale, beside a seeded test."""
    folder = tmp_path_factory.mktemp("report_run")
    (folder / "test_seeded.py").write_text(SEEDED)
    out = folder / "out" / "report.html"
    done = subprocess.run(["python", "-m", "pytest", "-p", "no:cacheprovider", "-q", "--synap-scale=tiny",
                           "--synap-group=analytics", "--synap-suites=contract,rls", f"--synap-report={out}",
                           "--synap-cache=off", "--rootdir", str(folder), "test_seeded.py"],
                          cwd=folder, capture_output=True, text=True, timeout=600)
    assert out.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    return out, json.loads(out.with_suffix(".json").read_text()), done.stdout


def test_report_of_a_run_names_what_produced_it(report_run: tuple[Path, dict[str, Any], str]) -> None:
    out, doc, stdout = report_run
    meta = doc["meta"]
    assert re.match(r"\d+\.\d+", meta["server"]["version"]), meta["server"]
    assert (meta["scale"], meta["groups"], meta["server"]["backend"]) == ("tiny", ["analytics"], "embedded")
    assert meta["commit"] and meta["seed"] == 20240101
    assert f"synap-verify: report {out}" in stdout
    assert {"contract", "rls", "nothing-lost"} <= set(doc["sections_run"])
    assert [s["revision"] for s in doc["migration"]["steps"]] == ["foundation", "analytics_1"]
    assert doc["load"]["total_rows"] > 0
    assert "analytics_events" in doc["rls"]["migrated"]["matrix"]


def test_seeded_finding_makes_it_no_go_and_is_escaped(report_run: tuple[Path, dict[str, Any], str]) -> None:
    out, doc, _ = report_run
    assert doc["verdict"]["status"] == "NO-GO"
    assert any(r.startswith("nothing-lost: 1 finding(s) in analytics") for r in doc["verdict"]["reasons"])
    assert doc["groups"]["analytics"]["findings"]["nothing-lost"] == 1
    page = out.read_text()
    assert "3 rows &lt;b&gt;lost&lt;/b&gt;" in page and "<b>lost</b>" not in page
    assert page.index("NO-GO") < page.index('id="groups"')  # the verdict comes first


def test_report_is_self_contained(report_run: tuple[Path, dict[str, Any], str]) -> None:
    page = report_run[0].read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page, re.I)
    assert "<script" not in page and "<link" not in page and "@import" not in page and "url(" not in page


def test_from_json_rebuilds_the_same_page(report_run: tuple[Path, dict[str, Any], str], tmp_path: Path) -> None:
    out = report_run[0]
    assert main(["report", "--from-json", str(out.with_suffix(".json")), "--out", str(tmp_path / "again.html")]) == 0
    assert (tmp_path / "again.html").read_text() == out.read_text()


def test_renders_in_headless_chromium(report_run: tuple[Path, dict[str, Any], str]) -> None:
    out, doc, _ = report_run
    pixels = screenshot(out, out.with_suffix(".png"))
    assert_not_blank(pixels, BANNER[doc["verdict"]["status"]])


def synthetic(tables: int = 150) -> dict[str, Any]:
    """A report of ``tables`` tables over every group: findings, a full RLS matrix, queries and steps."""
    names = [f"table_{i:03d}_{GROUPS[i % len(GROUPS)]}" for i in range(tables)]
    group_of = {n: GROUPS[i % len(GROUPS)] for i, n in enumerate(names)}
    probes = ("SELECT", "UPDATE", "DELETE", "INSERT", "MOVE", "NOCTX", "LOCAL", "DRIFT")
    matrix = {n: {p: "LEAK" if i % 37 == 0 and p == "SELECT" else "pass" for p in probes} for i, n in enumerate(names)}
    findings = [{"rule": "G1", "group": group_of[n], "table": n, "column": "payload", "constraint": None,
                 "expected": "jsonb", "actual": "json", "message": f"{n}.payload is json"} for n in names[::10]]
    tests = [{"nodeid": f"suites/test_contract.py::test_contract[{group_of[n]}-{n}]", "suite": "contract",
              "group": group_of[n], "outcome": "failed" if n in names[::10] else "passed", "seconds": 0.01,
              "message": f"1 contract finding(s) for {n}" if n in names[::10] else ""} for n in names]
    steps = [{"revision": f"{g}_1", "direction": "up", "doc": f"{g}: restructure", "seconds": 0.5 + i / 10, "group": g,
              "locks": [{"relation": n, "mode": "AccessExclusiveLock", "seconds": 0.2} for n in names if group_of[n] == g]}
             for i, g in enumerate(GROUPS)]
    bench = [{"query": f"query_{i}", "group": GROUPS[i % len(GROUPS)], "before_ms": 1.0, "after_ms": 1.02, "ratio": 1.02,
              "ci": [0.98, 1.04], "p": 0.3, "confirmed": False, "buffers_before": 100, "buffers_after": 98,
              "plan": "=", "verdict": "pass", "samples_before": [1.0 + j / 100 for j in range(120)],
              "samples_after": [1.02 + j / 100 for j in range(120)]} for i in range(30)]
    doc: dict[str, Any] = {
        "meta": {"title": "synapscale_db restructure verification", "database": "synapscale_db",
                 "server": {"backend": "embedded", "where": "postgres@/tmp/x:5432/postgres", "version": "18.0"},
                 "scale": "small", "seed": 1, "groups": list(GROUPS), "contract": "fixtures/contract.yaml",
                 "migrations": "synapscale/migrations", "commit": "0123456789ab", "started": "2025-01-01T00:00:00+00:00",
                 "seconds": 90.0, "exitstatus": 1, "python": "3.11", "pytest": "8", "command": None},
        "sections_run": ["contract", "rls", "benchmark", "migrations"], "tests": tests,
        "findings": {"contract": findings}, "benchmark": bench,
        "rls": {"migrated": {"role": "synapscale_app", "writes": True, "seconds": 3.0, "matrix": matrix,
                             "groups": group_of, "notes": []}},
        "migration": {"steps": steps, "timings": {"provision": 1.0, "load": 20.0, "migrate": 12.0}},
        "load": {"rows": {n: 1000 for n in names}, "total_rows": 150_000, "seconds": 20.0, "bytes": 10**8,
                 "scenarios": {}, "notes": []},
        "skipped_states": {},
    }
    doc["groups"] = summarise_groups(doc, GROUPS)
    doc["verdict"] = verdict(doc)
    return doc


def test_readable_at_150_tables(tmp_path: Path) -> None:
    """Summary first, one line per group, problem rows of the matrix unfolded, the rest folded; small file."""
    doc = synthetic(150)
    page = render(doc)
    assert len(page) < 1_500_000
    top = page[:page.index("<details")]
    assert "NO-GO" in top and all(f'href="#g-{g}"' in top for g in GROUPS)
    assert page.count("<details") >= len(GROUPS) + 2
    assert all(n in page for n in doc["rls"]["migrated"]["matrix"])
    path = tmp_path / "150.html"
    path.write_text(page)
    assert_not_blank(screenshot(path, tmp_path / "150.png"), BANNER["NO-GO"])


def test_accepted_query_shows_its_ceiling_and_reason_and_is_no_problem() -> None:
    doc = synthetic(20)
    doc["benchmark"][0].update(verdict="accepted", ratio=1.3,
                               accepted={"ratio": 1.4, "blocks": 2.0, "why": "RLS <WITH CHECK>"})
    doc["benchmark"][1].update(verdict="FAIL TIME", cached_plan="custom/generic")
    page = render(doc)
    assert "accepted up to 1.40x, +2 blocks: RLS &lt;WITH CHECK&gt;" in page
    assert "<td>custom/generic</td>" in page
    rows = re.findall(r'<tr( class="problem")?><td[^>]*>(query_[01])<', page)
    assert set(rows) == {("", "query_0"), (' class="problem"', "query_1")}, rows  # per group and overall


def screenshot(page: Path, png: Path) -> list[list[tuple[int, ...]]]:
    """Headless Chromium's screenshot of ``page`` (1400x2000), decoded to rows of pixels (top 600 rows)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("no chromium on PATH: install Debian's chromium package (.ci/run does) to check the rendering")
    with tempfile.TemporaryDirectory(prefix="synap-chromium-") as profile:
        subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                        "--disable-background-networking", "--disable-component-update", "--disable-sync",
                        f"--user-data-dir={profile}", f"--screenshot={png}", "--window-size=1400,2000",
                        page.resolve().as_uri()], capture_output=True, timeout=120, check=False)
    assert png.exists() and png.stat().st_size > 0, "chromium wrote no screenshot"
    return decode_png(png.read_bytes(), max_rows=600)


def decode_png(data: bytes, max_rows: int) -> list[list[tuple[int, ...]]]:
    """The first ``max_rows`` rows of an 8-bit RGB/RGBA PNG (enough to see the page is not blank)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height, channels = 8, b"", 0, 0, 3
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour in (2, 6), (depth, colour)
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw, stride = zlib.decompressobj().decompress(idat), width * channels
    rows, prev = [], bytearray(stride)
    for r in range(min(height, max_rows)):
        kind, line = raw[r * (stride + 1)], bytearray(raw[r * (stride + 1) + 1:(r + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, corner = prev[i], prev[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF
        rows.append([tuple(line[i:i + 3]) for i in range(0, stride, channels)])
        prev = line
    return rows


def assert_not_blank(rows: list[list[tuple[int, ...]]], banner: tuple[int, int, int]) -> None:
    """Many colours, a fair share of ink, and the verdict banner's colour: the page rendered, styled."""
    pixels = [p for row in rows for p in row]
    colours = set(pixels)
    ink = sum(1 for p in pixels if p != (255, 255, 255)) / len(pixels)
    assert len(colours) > 50, f"only {len(colours)} colours: the screenshot looks blank"
    assert ink > 0.05, f"{ink:.1%} of the top of the page is not white"
    assert pixels.count(banner) > 1000, "the verdict banner is not visible"


def test_api_reference_is_not_stale() -> None:
    from synap_verify.report import apiref

    assert apiref.OUT.read_text() == apiref.render(apiref.openapi()), \
        "docs/api-reference.md is stale: run python -m synap_verify.report.apiref"


ERRORED_QUERY = '''
from synap_verify.bench.gate import failed
from synap_verify.bench.workload import Query
from synap_verify.stash import record


def test_errored_query(pytestconfig):
    query = Query("broken_query", "analytics", "SELECT 1", "SELECT 1", "SELECT 1", table="analytics_events")
    record(pytestconfig, "benchmark", [failed(query, RuntimeError("relation does not exist"))])
'''


def test_report_of_a_query_that_errored(tmp_path: Path) -> None:
    """A benchmark query that could not be measured has no timing: the report shows it, with its finding."""
    (tmp_path / "test_errored.py").write_text(ERRORED_QUERY)
    out = tmp_path / "report.html"
    done = subprocess.run(["python", "-m", "pytest", "-p", "no:cacheprovider", "-q", f"--synap-report={out}",
                           "--rootdir", str(tmp_path), str(tmp_path / "test_errored.py")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in done.stdout + done.stderr and out.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    doc = json.loads(out.with_suffix(".json").read_text())
    (row,) = doc["benchmark"]
    assert (row["query"], row["ratio"], row["verdict"]) == ("broken_query", None, "FAIL ERROR")
    assert doc["verdict"]["status"] == "NO-GO" and doc["findings"]["benchmark"][0]["rule"] == "BENCH-ERROR"
    page = out.read_text()
    assert re.search(r'<tr class="problem"><td[^>]*>broken_query</td>(<td[^>]*>-</td>){6}', page), page


def test_every_suite_lands_in_a_section() -> None:
    """The suite -> section map names exactly the packaged suites: none left out, none that no longer exists."""
    assert set(SUITE_SECTIONS) == {p.stem for p in suites_dir().glob("test_*.py")}
