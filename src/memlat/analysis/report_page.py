"""The report's front page: `index.html` (self-contained) and `summary.md`.

Both say the same thing in the same order: the suite-wide verdict first (energy saved
against `performance`, slowdown, distance to the oracle, per bus; see
memlat.analysis.verdict), then one table per workload, the plots, the settings and the
exact command that reproduces the run.

index.html embeds every plot as a `data:` URI, so the single file opens from anywhere
with no server; a few lines of script mark `<body data-images="ok:N">` once every image
decoded (or `broken:K` and a visible warning otherwise).
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from memlat.analysis.verdict import BUS_PARTS, ORACLE, Verdict
from memlat.sim.results import RunResult


@dataclass(slots=True)
class Figure:
    """One plot: file name in the report folder, caption, PNG bytes."""

    name: str
    caption: str
    png: bytes


@dataclass(slots=True)
class WorkloadSection:
    """What the page shows for one workload beside its table."""

    name: str
    figure: Figure | None
    phases: list[tuple[str, float, float]] = field(default_factory=list)
    trans_stat: list[str] = field(default_factory=list)  # relative paths


def _pct(value: float | None, digits: int = 1) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:+.{digits}f} %"


def _summary_rows(v: Verdict) -> list[list[str]]:
    rows = []
    for p in v.policies:
        c = v.suite.get(p)
        if c is None:
            continue
        worst = v.worst.get(p)
        rows.append([p, _pct(c.energy_pct), *(_pct(c.bus_pct[b]) for b, _ in BUS_PARTS),
                     f"{c.slowdown_pct:.2f} %",
                     f"{worst[0]} ({worst[1]:.2f} %)" if worst else "-",
                     "-" if p == ORACLE else _pct(c.oracle_gap_pct)])
    return rows


SUMMARY_HEADER = ["policy", "energy vs performance", "CPUs", "DDR", "LLCC",
                  "slowdown (geo-mean)", "worst slowdown", "energy vs oracle"]
WORKLOAD_HEADER = ["policy", "time s", "slowdown", "energy J", "vs performance",
                   "vs oracle", "E cpu J", "E ddr J", "E llcc J", "EDP J*s", "trans ddr",
                   "trans llcc", "trans qos"]


def _workload_rows(v: Verdict, results: Sequence[RunResult], workload: str
                   ) -> list[list[str]]:
    rows = []
    for r in results:
        if r.workload != workload:
            continue
        c = v.cells.get((workload, r.policy))
        rows.append([r.policy, f"{r.time_s:.3f}",
                     "-" if r.slowdown is None else f"x{r.slowdown:.4f}",
                     f"{r.energy_j:.3f}", _pct(c.energy_pct if c else None),
                     "-" if r.policy == ORACLE or c is None else _pct(c.oracle_gap_pct),
                     f"{r.e_cpu_j:.3f}", f"{r.e_ddr_j:.3f}", f"{r.e_llcc_j:.3f}",
                     f"{r.edp:.3f}", str(r.transitions.get("ddr", 0)),
                     str(r.transitions.get("llcc", 0)), str(r.transitions.get("ddr_qos", 0))])
    return rows


def _phase_text(phases: list[tuple[str, float, float]]) -> str:
    return ", ".join(f"{name} {start:.3f}-{end:.3f} s" for name, start, end in phases)


# ------------------------------------------------------------------------------ HTML
_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;
max-width:1240px;padding:0 16px;color:#1b1b1b}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd}
h3{font-size:15px;margin:22px 0 6px}.meta{color:#555;margin:0 0 12px}
.headline{font-size:15px;background:#f3f7fb;border-left:4px solid #2b6cb0;padding:10px 14px}
table{border-collapse:collapse;margin:6px 0 10px;font-variant-numeric:tabular-nums}
th,td{border:1px solid #d5d5d5;padding:3px 8px;text-align:right}th{background:#f2f2f2}
td:first-child,th:first-child{text-align:left}tr.subject td{font-weight:600;background:#fff7e6}
td.good{color:#17692c}td.bad{color:#b02a2a}ul.losses li{margin:2px 0}
figure{margin:10px 0 18px}figure img{max-width:100%;height:auto;border:1px solid #e3e3e3}
figcaption{color:#555;font-size:13px}
pre{background:#f6f6f6;padding:8px 10px;white-space:pre-wrap;overflow-wrap:anywhere}
#settings-table td{text-align:left}
.warn{background:#fde8e8;border:1px solid #b02a2a;padding:8px}.small{font-size:12px;color:#555}
"""

_SCRIPT = """
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var broken = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); });
  document.body.setAttribute("data-images",
      broken.length ? "broken:" + broken.length : "ok:" + imgs.length);
  if (broken.length) {
    var p = document.createElement("p");
    p.className = "warn";
    p.textContent = broken.length + " plot(s) of this report failed to load.";
    document.body.insertBefore(p, document.body.firstChild);
  }
});
"""


def _cls(text: str, col: str) -> str:
    if col in ("energy vs performance", "CPUs", "DDR", "LLCC", "vs performance") \
            and text.startswith(("+", "-")) and text != "-":
        return ' class="good"' if text.startswith("-") else ' class="bad"'
    return ""


def _html_table(header: list[str], rows: list[list[str]], *, table_id: str = "",
                subject: str = "") -> str:
    ident = f' id="{table_id}"' if table_id else ""
    out = [f"<table{ident}><thead><tr>"
           + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr></thead><tbody>"]
    for row in rows:
        mark = ' class="subject"' if row[0] == subject else ""
        out.append(f"<tr{mark}>" + "".join(
            f"<td{_cls(cell, header[i])}>{html.escape(cell)}</td>"
            for i, cell in enumerate(row)) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def _html_figure(fig: Figure) -> str:
    data = base64.b64encode(fig.png).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(fig.caption)}"'
            f' data-file="{html.escape(fig.name)}"><figcaption>{html.escape(fig.caption)} '
            f'(<a href="{html.escape(fig.name)}">{html.escape(fig.name)}</a>)</figcaption>'
            "</figure>")


def render_html(v: Verdict, results: Sequence[RunResult], *, overview: Sequence[Figure],
                sections: Sequence[WorkloadSection], settings: dict[str, Any]) -> str:
    """The whole index.html as one string (UTF-8, no external resources)."""
    e = html.escape
    soc = settings.get("soc", "?")
    title = f"memlat report: {soc}, {len(v.workloads)} workloads, {len(v.policies)} policies"
    parts = ["<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{e(title)}</title><style>{_CSS}</style></head>",
             '<body data-images="pending">', f"<h1>{e(title)}</h1>",
             f'<p class="meta">seed {e(str(settings.get("seed", "-")))} · simulator '
             f'{e(str(settings.get("path", "-")))} · oracle budget '
             f'{v.budget * 100:g} % · simulated in {e(str(settings.get("elapsed_s", "-")))} s'
             " · <a href=\"#settings\">settings and command</a></p>",
             '<section id="verdict"><h2>Verdict</h2>',
             f'<p class="headline" id="headline">{e(v.headline)}</p>',
             _html_table(SUMMARY_HEADER, _summary_rows(v), table_id="summary",
                         subject=v.subject),
             '<p class="small">Energy: the suite total (all workloads summed) of CPUs + DDR + '
             "LLCC, against performance; negative saves. Slowdown: completion time against "
             "performance, geometric mean over the workloads. Energy vs oracle: above the "
             "lowest energy reachable within the oracle's slowdown budget.</p>"]
    if v.losses:
        parts.append(f"<h3>Where {e(v.subject)} loses</h3><ul class=\"losses\">" + "".join(
            f'<li><a href="#w-{e(w)}">{e(w)}</a>: {e(why)}</li>' for w, why in v.losses)
            + "</ul>")
    parts += [_html_figure(f) for f in overview]
    parts.append("</section>")
    parts.append('<section id="workloads"><h2>Per workload</h2>')
    for s in sections:
        parts.append(f'<h3 id="w-{e(s.name)}">{e(s.name)}</h3>')
        parts.append(_html_table(WORKLOAD_HEADER, _workload_rows(v, results, s.name),
                                 subject=v.subject))
        if s.figure is not None:
            parts.append(_html_figure(s.figure))
        if s.phases:
            parts.append(f'<p class="small">Phases (performance run): '
                         f"{e(_phase_text(s.phases))}</p>")
        if s.trans_stat:
            parts.append('<p class="small">devfreq trans_stat of memlat: ' + ", ".join(
                f'<a href="{e(p)}">{e(p)}</a>' for p in s.trans_stat) + "</p>")
    parts.append("</section>")
    parts.append('<section id="settings"><h2>Settings</h2>')
    rows = [[k, _setting(v_)] for k, v_ in sorted(settings.items()) if k != "command"]
    parts.append(_html_table(["setting", "value"], rows, table_id="settings-table"))
    if settings.get("command"):
        parts.append("<h3>Reproduce</h3><pre><code id=\"command\">"
                     f"{e(str(settings['command']))}</code></pre>")
    parts.append("</section>")
    parts.append(f"<script>{_SCRIPT}</script></body></html>")
    return "\n".join(parts) + "\n"


def _setting(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(x) for x in value)
    return "-" if value is None else str(value)


# -------------------------------------------------------------------------- Markdown
def _md_table(header: list[str], rows: list[list[str]]) -> str:
    def esc(s: str) -> str:
        return s.replace("|", "\\|")

    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def render_markdown(v: Verdict, results: Sequence[RunResult], *, overview: Sequence[Figure],
                    sections: Sequence[WorkloadSection], settings: dict[str, Any]) -> str:
    """summary.md: the same summary as index.html, plots linked as files."""
    soc = settings.get("soc", "?")
    out = [f"# memlat report: {soc}, {len(v.workloads)} workloads, {len(v.policies)} policies",
           "", "## Verdict", "", v.headline, "", _md_table(SUMMARY_HEADER, _summary_rows(v)),
           "", "Energy: suite total (CPUs + DDR + LLCC) against performance; negative saves. "
           "Slowdown: geometric mean over the workloads. Energy vs oracle: above the lowest "
           "energy reachable within the oracle's slowdown budget.", ""]
    if v.losses:
        out += [f"Where {v.subject} loses:", ""]
        out += [f"- {w}: {why}" for w, why in v.losses]
        out.append("")
    out += [f"![{f.caption}]({f.name})" for f in overview]
    out += ["", "## Per workload", ""]
    for s in sections:
        out += [f"### {s.name}", "", _md_table(WORKLOAD_HEADER,
                                              _workload_rows(v, results, s.name)), ""]
        if s.figure is not None:
            out += [f"![{s.figure.caption}]({s.figure.name})", ""]
        if s.phases:
            out += [f"Phases (performance run): {_phase_text(s.phases)}", ""]
        if s.trans_stat:
            out += ["devfreq trans_stat of memlat: "
                    + ", ".join(f"[{p}]({p})" for p in s.trans_stat), ""]
    out += ["## Settings", "", _md_table(["setting", "value"], [
        [k, _setting(x)] for k, x in sorted(settings.items()) if k != "command"]), ""]
    if settings.get("command"):
        out += ["Reproduce:", "", "```sh", str(settings["command"]), "```", ""]
    return "\n".join(out)
