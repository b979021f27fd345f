"""The latency timeline as a standalone SVG: every request, migration steps shaded and named.

Written by hand (matplotlib is not a dependency of the harness): a log latency axis, one dot per
request (failures as red crosses), one band per step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from pathlib import Path

from synap_verify.loadtest.blocking import StepWindow
from synap_verify.loadtest.timeline import Request

W, H = 1200, 520
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 40, 150
MAX_POINTS = 20_000


def svg(requests: Sequence[Request], steps: Sequence[StepWindow], title: str, bound_s: float | None = None) -> str:
    """An SVG document; ``bound_s`` draws the blocking bound as a horizontal line."""
    t0 = min([r.start for r in requests] + [s.start for s in steps], default=0.0)
    t1 = max([r.end for r in requests] + [s.end for s in steps], default=t0 + 1)
    span = max(t1 - t0, 1e-3)
    top_ms = max([r.ms for r in requests] + [1.0, (bound_s or 0) * 1000])
    lo, hi = -1.0, math.ceil(math.log10(top_ms * 1.2))
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM

    def x(t: float) -> float:
        return LEFT + (t - t0) / span * pw

    def y(ms: float) -> float:
        return TOP + ph - (math.log10(max(ms, 10 ** lo)) - lo) / (hi - lo) * ph

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="11">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{LEFT}" y="22" font-size="14">{escape(title)}</text>']
    for i, s in enumerate(steps):
        fill = "#f4c7c3" if s.error else ("#fde9c8" if i % 2 else "#e3ecfa")
        out.append(f'<rect x="{x(s.start):.1f}" y="{TOP}" width="{max(x(s.end) - x(s.start), 1.0):.1f}" height="{ph}" '
                   f'fill="{fill}" opacity="0.8"><title>{escape(s.name)}: {s.seconds:.2f} s</title></rect>')
        lx = (x(s.start) + x(s.end)) / 2
        out.append(f'<text transform="translate({lx:.1f},{TOP + ph + 8}) rotate(60)" font-size="9">{escape(s.name)}</text>')
    for e in range(int(lo), int(hi) + 1):
        yy = y(10 ** e)
        out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{LEFT - 6}" y="{yy + 4:.1f}" text-anchor="end">{10 ** e:g} ms</text>')
    step = 10 ** math.floor(math.log10(span)) / (2 if span / 10 ** math.floor(math.log10(span)) < 4 else 1)
    t = 0.0
    while t <= span:
        out.append(f'<text x="{x(t0 + t):.1f}" y="{TOP + ph + 135}" text-anchor="middle">{t:g} s</text>')
        t += step
    if bound_s:
        out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y(bound_s * 1000):.1f}" y2="{y(bound_s * 1000):.1f}" '
                   f'stroke="#c00" stroke-dasharray="6 4"/><text x="{W - RIGHT - 4}" y="{y(bound_s * 1000) - 4:.1f}" '
                   f'text-anchor="end" fill="#c00">blocking bound {bound_s:g} s</text>')
    stride = max(1, math.ceil(len(requests) / MAX_POINTS))
    dots = [f"M{x(r.start):.1f},{y(r.ms):.1f}h0.1" for r in requests[::stride] if r.ok]
    out.append(f'<path d="{" ".join(dots)}" stroke="#2a62b8" stroke-width="2.4" stroke-linecap="round" opacity="0.6"/>')
    for r in requests:
        if not r.ok:
            cx, cy = x(r.start), y(r.ms)
            out.append(f'<path d="M{cx - 3:.1f},{cy - 3:.1f}l6,6m0,-6l-6,6" stroke="#c00" stroke-width="1.5">'
                       f'<title>{escape(r.name)}: {escape(r.error)}</title></path>')
    out.append(f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>')
    out.append(f'<text x="{LEFT + pw / 2}" y="{H - 2}" text-anchor="middle">seconds since the load started '
               f'(dots: requests, x: failures, bands: migration steps)</text></svg>')
    return "\n".join(out)


def write(path: Path, requests: Sequence[Request], steps: Sequence[StepWindow], title: str,
          bound_s: float | None = None) -> Path:
    path.write_text(svg(requests, steps, title, bound_s))
    return path
