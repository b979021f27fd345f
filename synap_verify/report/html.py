"""The report as one self-contained HTML page: inline CSS and SVG, no script, no font, no link out.

Rendered from the report document alone (see ``collect``), so it can be rebuilt from the JSON twin.
Readable at 150 tables: the go/no-go summary and one line per group come first; details per group are
folded unless that group has a problem; the RLS matrix shows problem rows unless unfolded.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from synap_verify.report import SECTIONS

STATUS_CLASS = {"GO": "go", "NO-GO": "nogo", "INCOMPLETE": "incomplete"}
CELL = {"pass": ("ok", "·"), "LEAK": ("bad", "LEAK"), "not covered": ("warn", "nc"), "error": ("err", "ERR"),
        "n/a": ("na", "–")}
FINDING_COLUMNS = ("rule", "table", "column", "constraint", "expected", "actual", "message")

CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1f2328;background:#fff}
main{max-width:1320px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:22px;margin:8px 0} h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
h3{font-size:15px;margin:14px 0 6px}
.verdict{border-radius:8px;padding:14px 18px;margin:12px 0;color:#fff}
.verdict b{font-size:26px;letter-spacing:.5px;margin-right:12px}
.go{background:#1a7f37}.nogo{background:#cf222e}.incomplete{background:#9a6700}
.verdict ul{margin:6px 0 0;padding-left:20px}
dl.meta{display:grid;grid-template-columns:max-content 1fr max-content 1fr;gap:2px 14px;margin:8px 0}
dl.meta dt{color:#59636e}dl.meta dd{margin:0;font-family:ui-monospace,monospace;font-size:13px}
nav a{margin-right:12px}
table{border-collapse:collapse;margin:6px 0;font-size:13px}
th,td{border:1px solid #d0d7de;padding:3px 7px;text-align:left;vertical-align:top;overflow-wrap:anywhere}
th{background:#f6f8fa;position:sticky;top:0}
td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.problem td:first-child{border-left:4px solid #cf222e}
.ok{color:#1a7f37}.bad{background:#ffebe9;color:#cf222e;font-weight:600}.warn{background:#fff8c5}
.err{background:#fbefff;color:#8250df}.na{color:#8c959f}
td.cell{text-align:center;font-family:ui-monospace,monospace;font-size:12px;padding:1px 5px}
details{margin:4px 0;border:1px solid #d0d7de;border-radius:6px;padding:4px 10px}
details[open]{padding-bottom:10px} summary{cursor:pointer;font-weight:600}
pre{background:#f6f8fa;padding:6px 8px;overflow-x:auto;font-size:12px;margin:2px 0;white-space:pre-wrap;
overflow-wrap:anywhere}
.muted{color:#59636e} .mono{font-family:ui-monospace,monospace;font-size:12px}
.scroll{max-height:640px;overflow:auto}
svg text{font:11px system-ui,sans-serif;fill:#1f2328}
"""


def render(doc: Mapping[str, Any]) -> str:
    """The whole page."""
    meta, verdict = doc["meta"], doc["verdict"]
    parts = [
        f"<h1>{_e(meta['title'])}</h1>",
        _verdict(verdict),
        _meta(meta),
        "<nav>" + " ".join(f'<a href="#{a}">{t}</a>' for a, t in (
            ("groups", "groups"), ("benchmark", "benchmark"), ("migration", "migration"), ("rls", "RLS matrix"),
            ("api", "API"), ("load", "load run"), ("tests", "tests"))) + "</nav>",
        _groups(doc),
        _benchmark(doc["benchmark"]),
        _migration(doc["migration"]),
        _rls(doc["rls"]),
        _api(doc["tests"]),
        _load(doc["load"]),
        _tests(doc["tests"]),
    ]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_e(verdict['status'])} · {_e(meta['title'])}</title><style>{CSS}</style></head>"
            f"<body><main>{''.join(parts)}</main></body></html>\n")


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _table(head: Sequence[str], rows: Iterable[Sequence[Any]], classes: Sequence[str] = (),
           numeric: Sequence[int] = ()) -> str:
    """Cells are escaped unless they are already markup (a ``Markup`` str)."""
    out = ["<table><thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr></thead><tbody>"]
    for i, row in enumerate(rows):
        cls = f' class="{classes[i]}"' if i < len(classes) and classes[i] else ""
        cells = "".join(f"<td{' class=n' if j in numeric else ''}>{c if isinstance(c, Markup) else _e(c)}</td>"
                        for j, c in enumerate(row))
        out.append(f"<tr{cls}>{cells}</tr>")
    return "".join(out) + "</tbody></table>"


class Markup(str):
    """Already-escaped HTML, to put in a table cell as is."""


def _verdict(verdict: Mapping[str, Any]) -> str:
    reasons = "".join(f"<li>{_e(r)}</li>" for r in verdict["reasons"])
    counts = ", ".join(f"{n} {k}" for k, n in sorted(verdict["counts"].items())) or "no tests"
    return (f'<div class="verdict {STATUS_CLASS[verdict["status"]]}"><b>{_e(verdict["status"])}</b>{_e(counts)}'
            f"{'<ul>' + reasons + '</ul>' if reasons else ''}</div>")


def _meta(meta: Mapping[str, Any]) -> str:
    server = meta["server"]
    items = [("database", meta["database"]), ("PostgreSQL", server["version"] or "not started"),
             ("backend", f"{server['backend']} {server['where'] or ''}"), ("scale / seed", f"{meta['scale']} / {meta['seed']}"),
             ("commit", meta["commit"]), ("groups", ", ".join(meta["groups"])),
             ("started (UTC)", meta["started"]), ("duration", f"{meta['seconds']} s (pytest exit {meta['exitstatus']})"),
             ("contract", meta["contract"]), ("migrations", meta["migrations"]),
             ("python / pytest", f"{meta['python']} / {meta['pytest']}"), ("command", meta["command"] or "-")]
    return '<dl class="meta">' + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in items) + "</dl>"


def _groups(doc: Mapping[str, Any]) -> str:
    """One line per group, then per group its findings, RLS rows, queries and migration step, folded."""
    sections = doc["sections_run"]
    not_run = [s for s in SECTIONS if s not in sections]
    head = ["group", "passed", "failed", "skipped", *sections, "migrate s", "longest ACCESS EXCLUSIVE s"]
    rows, classes, details = [], [], []
    for group, g in doc["groups"].items():
        tests, found = g["tests"], g["findings"]
        bad = tests.get("failed", 0) + tests.get("error", 0) + sum(found.values())
        rows.append([Markup(f'<a href="#g-{_e(group)}">{_e(group)}</a>'), tests.get("passed", 0),
                     tests.get("failed", 0) + tests.get("error", 0), tests.get("skipped", 0),
                     *(found.get(s, 0) or "" for s in sections), f"{g['migrate_seconds']:.2f}",
                     f"{g['exclusive_lock_seconds']:.2f}"])
        classes.append("problem" if bad else "")
        details.append(_group_detail(doc, group, open_=bool(bad)))
    numeric = range(1, len(head))
    return ('<h2 id="groups">Groups</h2><p class="muted">Findings per section; a non-empty cell is a problem. '
            "Details are folded for groups without one. "
            f"Not run in this session: {_e(', '.join(not_run) or 'none')}.</p>"
            + _table(head, rows, classes, numeric) + "".join(details))


def _group_detail(doc: Mapping[str, Any], group: str, open_: bool) -> str:
    parts = []
    for section, found in doc["findings"].items():
        mine = [f for f in found if f["group"] == group]
        if mine:
            parts.append(f"<h3>{_e(section)}: {len(mine)} finding(s)</h3>" + _findings(mine))
    failed = [t for t in doc["tests"] if t["group"] == group and t["outcome"] in ("failed", "error")]
    if failed:
        parts.append("<h3>failed tests</h3>" + "".join(
            f"<details><summary class=mono>{_e(t['nodeid'])}</summary><pre>{_e(t['message'])}</pre></details>"
            for t in failed))
    migrated = doc["rls"].get("migrated")
    if migrated:
        names = [n for n, g in migrated["groups"].items() if g == group]
        if names:
            parts.append("<h3>RLS matrix (migrated)</h3>" + _matrix(migrated["matrix"], names))
    queries = [b for b in doc["benchmark"] if b["group"] == group]
    if queries:
        parts.append("<h3>benchmark</h3>" + _bench_table(queries))
    steps = [s for s in doc["migration"]["steps"] if s["group"] == group]
    if steps:
        parts.append("<h3>migration</h3>" + _steps_table(steps))
    body = "".join(parts) or '<p class="muted">nothing to report for this group</p>'
    return (f'<details id="g-{_e(group)}"{" open" if open_ else ""}><summary>{_e(group)}</summary>{body}</details>')


def _findings(found: Sequence[Mapping[str, Any]]) -> str:
    return _table(FINDING_COLUMNS, [[f.get(c) or "" for c in FINDING_COLUMNS] for f in found])


def _matrix(matrix: Mapping[str, Mapping[str, str]], names: Iterable[str]) -> str:
    probes = list(dict.fromkeys(p for row in matrix.values() for p in row))
    rows = []
    for name in sorted(names):
        cells = []
        for probe in probes:
            cls, text = CELL.get(matrix[name].get(probe, "n/a"), ("err", "?"))
            cells.append(f'<td class="cell {cls}">{text}</td>')
        rows.append(f"<tr><td class=mono>{_e(name)}</td>{''.join(cells)}</tr>")
    head = "<tr><th>object</th>" + "".join(f"<th>{_e(p)}</th>" for p in probes) + "</tr>"
    return f'<div class="scroll"><table><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table></div>'


def _rls(rls: Mapping[str, Mapping[str, Any]]) -> str:
    out = ['<h2 id="rls">RLS probe matrix</h2><p class="muted">· pass, LEAK a cross-tenant leak, nc not covered by a '
           "policy, ERR probe error, – not probed. The legacy matrix shows the defects the restructure removes.</p>"]
    if not rls:
        return out[0] + '<p class="muted">The RLS suite did not run.</p>'
    for label, r in rls.items():
        matrix = r["matrix"]
        problems = [n for n, row in matrix.items() if any(s not in ("pass", "n/a") for s in row.values())]
        cells = [s for row in matrix.values() for s in row.values()]
        out.append(f"<h3>{_e(label)}: {len(matrix)} objects probed as {_e(r['role'])} "
                   f"({'read/write' if r['writes'] else 'read-only'}) in {r['seconds']} s, "
                   f"{cells.count('LEAK')} LEAK, {cells.count('not covered')} not covered, {cells.count('error')} errors</h3>")
        out.append(_matrix(matrix, problems) if problems else '<p class="ok">every probe passed or did not apply</p>')
        out.append(f"<details><summary>all {len(matrix)} objects</summary>{_matrix(matrix, matrix)}</details>")
    return "".join(out)


def _bench_table(queries: Sequence[Mapping[str, Any]]) -> str:
    head = ["query", "before ms", "after ms", "ratio", "95% CI", "p", "buffers", "cached plan", "plan", "verdict",
            "samples"]
    rows = [[b["query"], *_timed_cells(b), b.get("cached_plan") or "-", b["plan"], _bench_verdict(b),
             Markup(_strip_plot(b["samples_before"], b["samples_after"]))] for b in queries]
    classes = ["problem" if b["verdict"].startswith("FAIL") else "" for b in queries]
    return _table(head, rows, classes, numeric=(1, 2, 3, 5))


def _timed_cells(b: Mapping[str, Any]) -> list[str]:
    """Before, after, ratio, interval, p and buffers; dashes for a query that could not be measured."""
    if b["ratio"] is None:
        return ["-"] * 6
    return [f"{b['before_ms']:.3f}", f"{b['after_ms']:.3f}", f"{b['ratio']:.3f}", f"{b['ci'][0]:.3f}–{b['ci'][1]:.3f}",
            f"{b['p']:.1e}", f"{b['buffers_before']} → {b['buffers_after']}"]


def _bench_verdict(b: Mapping[str, Any]) -> str:
    """The verdict, with the accepted ceilings and their reason where the query is over the budget within them."""
    a = b.get("accepted")
    if b["verdict"] != "accepted" or not a:
        return str(b["verdict"])
    return f"accepted up to {a['ratio']:.2f}x, +{a['blocks']:g} blocks: {a['why']}"


def _benchmark(bench: Sequence[Mapping[str, Any]]) -> str:
    out = '<h2 id="benchmark">Benchmark (G6: no query more than 5% slower)</h2>'
    if not bench:
        return out + ('<p class="muted">The benchmark gate did not run in this session '
                      "(<span class=mono>pytest --synap-suites=bench --synap-report=…</span>).</p>")
    timed = [b for b in bench if b["ratio"] is not None]
    return (out + '<p class="muted">Median time after/before with its 95% interval; the dashed line is the 1.05 budget. '
            "Samples: before (blue) and after (orange), ms, median ticked.</p>"
            + (_forest_plot(timed) if timed else "") + _bench_table(bench))


def _forest_plot(bench: Sequence[Mapping[str, Any]]) -> str:
    """Ratio and interval per query against the 1.00 and 1.05 lines."""
    label_w, plot_w, row_h = 260, 520, 18
    lo = min(0.8, *(b["ci"][0] for b in bench))
    hi = max(1.2, *(b["ci"][1] for b in bench))

    def x(v: float) -> float:
        return label_w + (v - lo) / (hi - lo) * plot_w

    height = row_h * len(bench) + 26
    out = [f'<svg width="{label_w + plot_w + 20}" height="{height}" role="img">']
    for v, dash in ((1.0, ""), (1.05, ' stroke-dasharray="4 3"')):
        out.append(f'<line x1="{x(v):.1f}" x2="{x(v):.1f}" y1="0" y2="{height - 18}" stroke="#cf222e"{dash}/>'
                   f'<text x="{x(v) - 10:.1f}" y="{height - 4}">{v:.2f}</text>')
    for i, b in enumerate(bench):
        y = i * row_h + 10
        colour = "#1a7f37" if b["verdict"] == "pass" else "#cf222e"
        out.append(f'<text x="0" y="{y + 4}">{_e(b["query"][:40])}</text>'
                   f'<line x1="{x(b["ci"][0]):.1f}" x2="{x(b["ci"][1]):.1f}" y1="{y}" y2="{y}" '
                   f'stroke="{colour}" stroke-width="2"/>'
                   f'<circle cx="{x(b["ratio"]):.1f}" cy="{y}" r="3.5" fill="{colour}"/>')
    return "".join(out) + "</svg>"


def _strip_plot(before: Sequence[float], after: Sequence[float]) -> str:
    """Two rows of dots on one linear scale (the 95th percentile of both sides bounds it)."""
    width, height = 220, 30
    values = sorted((*before, *after))
    if not values:
        return ""
    top = values[min(len(values) - 1, int(len(values) * 0.95))] * 1.1 or 1.0
    out = [f'<svg width="{width}" height="{height}">']
    for y, samples, colour in ((8, before, "#0969da"), (22, after, "#bc4c00")):
        for s in samples:
            out.append(f'<circle cx="{min(s, top) / top * (width - 4) + 2:.1f}" cy="{y}" r="1.6" fill="{colour}" '
                       'fill-opacity=".35"/>')
        if samples:
            median = sorted(samples)[len(samples) // 2]
            mx = min(median, top) / top * (width - 4) + 2
            out.append(f'<line x1="{mx:.1f}" x2="{mx:.1f}" y1="{y - 6}" y2="{y + 6}" stroke="{colour}" stroke-width="2"/>')
    return "".join(out) + "</svg>"


def _steps_table(steps: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    for s in steps:
        locks = sorted(s["locks"], key=lambda lk: -lk["seconds"])[:5]
        held = "; ".join(f"{lk['relation']} {lk['mode'].removesuffix('Lock')} {lk['seconds']:.2f}s" for lk in locks)
        more = f" (+{len(s['locks']) - 5} more)" if len(s["locks"]) > 5 else ""
        rows.append([s["revision"], s["direction"], s["doc"], f"{s['seconds']:.2f}", held + more])
    return _table(["revision", "direction", "what", "seconds", "longest locks held (strongest mode per relation)"], rows,
                  numeric=(3,))


def _migration(migration: Mapping[str, Any]) -> str:
    out = '<h2 id="migration">Migration steps and locks</h2>'
    steps = migration["steps"]
    if not steps:
        reused = migration.get("reused") or []
        why = f" the states came from the state cache ({', '.join(reused)}); --synap-cache=off reruns and times it" \
            if reused else ""
        return out + f'<p class="muted">No migration ran in this session.{_e(why)}</p>'
    timings = ", ".join(f"{k} {v:.2f} s" for k, v in migration["timings"].items())
    return (out + f'<p class="muted">Pipeline: {_e(timings)}. Bars: step time; red: the longest ACCESS EXCLUSIVE '
            "lock the step was seen holding (the time the application would wait).</p>"
            + _steps_chart(steps) + _steps_table(steps))


def _steps_chart(steps: Sequence[Mapping[str, Any]]) -> str:
    label_w, plot_w, row_h = 160, 600, 16
    top = max(s["seconds"] for s in steps) or 1.0
    out = [f'<svg width="{label_w + plot_w + 70}" height="{row_h * len(steps) + 4}">']
    for i, s in enumerate(steps):
        y = i * row_h + 2
        exclusive = max((lk["seconds"] for lk in s["locks"] if lk["mode"] == "AccessExclusiveLock"), default=0.0)
        out.append(f'<text x="0" y="{y + 11}">{_e(s["revision"])}</text>'
                   f'<rect x="{label_w}" y="{y}" width="{s["seconds"] / top * plot_w:.1f}" height="{row_h - 4}" fill="#0969da"/>'
                   f'<rect x="{label_w}" y="{y + 3}" width="{min(exclusive, s["seconds"]) / top * plot_w:.1f}" '
                   f'height="{row_h - 10}" fill="#cf222e"/>'
                   f'<text x="{label_w + s["seconds"] / top * plot_w + 4:.1f}" y="{y + 11}">{s["seconds"]:.2f}s</text>')
    return "".join(out) + "</svg>"


def _api(tests: Sequence[Mapping[str, Any]]) -> str:
    mine = [t for t in tests if t["suite"] == "api"]
    out = '<h2 id="api">API</h2>'
    if not mine:
        return out + '<p class="muted">The API suite did not run.</p>'
    counts: dict[str, int] = {}
    for t in mine:
        counts[t["outcome"]] = counts.get(t["outcome"], 0) + 1
    rows = [[t["nodeid"].split("::", 1)[-1], t["outcome"], f"{t['seconds']:.2f}",
             t["message"].splitlines()[0] if t["message"] else ""] for t in mine]
    classes = ["problem" if t["outcome"] in ("failed", "error") else "" for t in mine]
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    return (out + f"<p>{len(mine)} checks: {_e(summary)}</p>"
            + f'<details{" open" if any(classes) else ""}><summary>every API check</summary>'
            + _table(["check", "outcome", "seconds", "first line"], rows, classes, numeric=(2,)) + "</details>")


def _load(load: Mapping[str, Any] | None) -> str:
    out = '<h2 id="load">Load run</h2>'
    if not load:
        return out + '<p class="muted">No data was loaded in this session (nothing needed the legacy state).</p>'
    notes = "".join(f"<li>{_e(n)}</li>" for n in load["notes"])
    scenarios = ", ".join(f"{k}: {v:,}" for k, v in load["scenarios"].items())
    per_table = _table(["table", "rows"], [[t, f"{n:,}"] for t, n in load["rows"].items()], numeric=(1,))
    return (out + f"<p>{load['total_rows']:,} rows in {len(load['rows'])} tables, {load['seconds']} s, "
            f"{load['bytes'] / 1e6:.1f} MB sent. Scenarios: {_e(scenarios) or 'none'}.</p>"
            + (f"<ul>{notes}</ul>" if notes else "")
            + f"<details><summary>rows per table</summary>{per_table}</details>")


def _tests(tests: Sequence[Mapping[str, Any]]) -> str:
    notable = [t for t in tests if t["outcome"] != "passed"]
    out = f'<h2 id="tests">Tests</h2><p>{len(tests)} tests; those not passed:</p>'
    if not notable:
        return out + '<p class="ok">none</p>'
    rows = [[t["suite"], t["group"], t["nodeid"].split("::", 1)[-1], t["outcome"],
             Markup(f"<pre>{_e(t['message'])}</pre>") if t["outcome"] != "skipped" else t["message"]] for t in notable]
    return out + _table(["suite", "group", "test", "outcome", "message"], rows,
                        ["problem" if t["outcome"] != "skipped" else "" for t in notable])
