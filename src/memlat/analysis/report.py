"""The report folder of `memlat run` (decisions.md §5): a page to read, then the data.

Layout under the output folder (written whole or not at all, see
memlat.analysis.outdir):

* `index.html`: the self-contained front page (plots embedded): the suite-wide verdict
  first, a table per workload, the plots, the settings and the command to reproduce;
  `summary.md` says the same in Markdown (memlat.analysis.report_page);
* `results.json`: the run's settings and one summary object per (workload, policy),
  plus the oracle frontier of every workload (time, energy breakpoints);
* `overview.png`: energy and slowdown against performance per workload and policy;
* `energy_vs_slowdown.png`: one panel per workload, energy and slowdown relative to
  performance, every policy visible, the oracle frontier E*(T) a line (decisions.md §4:
  nothing below the line is reachable);
* `busfreq_<workload>.png`: DDR and LLCC frequency over time, one row per policy on its
  own time axis, the workload phases shaded and named;
* `trans_stat/<workload>/<bus>`: devfreq trans_stat text for the memlat policy's DDR
  and LLCC, rendered by memlat.agent.devfreq exactly as Linux prints it;
* `.memlat-manifest`: every file above, so `--force` later removes exactly these.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: the report is written to files
import matplotlib.pyplot as plt
import matplotlib.transforms as mtransforms
import numpy as np

from memlat.agent.devfreq import DevfreqDevice
from memlat.analysis.outdir import MANIFEST, staged_folder
from memlat.analysis.report_page import Figure, WorkloadSection, render_html, render_markdown
from memlat.analysis.verdict import Verdict, compute_verdict
from memlat.sim.batch import default_jobs, worker_pool
from memlat.sim.results import RunResult, Timeline

# what write_report may write (relative paths), for the --force check before a run
REPORT_PATTERNS = ("results.json", "index.html", "summary.md", "*.png", "trans_stat/*")
TRANS_STAT_BUSES = ("ddr", "llcc")  # ddr_qos is a 0/1 level, not a devfreq OPP table


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def write_json(path: Path, results: Sequence[RunResult], settings: dict[str, Any],
               frontiers: dict[str, tuple[np.ndarray, np.ndarray]]) -> Path:
    """results.json: settings, summaries, and the oracle frontier per workload."""
    doc = {
        "settings": settings,
        "results": [r.summary() for r in results],
        "oracle_frontier": {w: {"time_s": t.tolist(), "energy_j": e.tolist()}
                            for w, (t, e) in frontiers.items()},
    }
    path.write_text(json.dumps(doc, indent=2, sort_keys=True, default=_json_default) + "\n")
    return path


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.integer | np.floating):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _merge_spans(spans: list[tuple[str, float, float]]) -> list[tuple[str, float, float]]:
    """Join adjacent spans of the same phase."""
    merged: list[tuple[str, float, float]] = []
    for name, start, end in spans:
        if merged and merged[-1][0] == name:
            merged[-1] = (name, merged[-1][1], end)
        else:
            merged.append((name, start, end))
    return merged


# ---------------------------------------------------------------------------- plots
_COLORS = {"memlat": "#d62728", "performance": "#1f77b4", "powersave": "#2ca02c",
           "static-map": "#9467bd", "bwmon": "#ff7f0e", "oracle": "#555555"}
_MARKERS = {"memlat": "o", "performance": "^", "powersave": "v", "static-map": "s",
            "bwmon": "D", "oracle": "*"}
_DENSE_TRANSITIONS = 40  # more changes than this in one run: draw range + mean, not lines


def _color(policy: str) -> str:
    if policy in _COLORS:
        return _COLORS[policy]
    return f"C{sum(map(ord, policy)) % 10}"


def _fit_label(name: str, width_chars: float) -> str | None:
    """`name`, shortened with an ellipsis to `width_chars`; None when nothing useful fits."""
    if len(name) <= width_chars:
        return name
    if width_chars >= 5:
        return name[: int(width_chars) - 1] + "…"
    return None


def _shade_phases(ax: Any, spans: list[tuple[str, float, float]], end_s: float,
                  ax_width_in: float, label: bool) -> None:
    """Alternate grey bands per phase; a name (shortened to fit) inside each wide band."""
    for i, (name, start, end) in enumerate(spans):
        ax.axvspan(start, end, color="0.86" if i % 2 else "0.94", zorder=0, lw=0)
        if not label or end_s <= 0:
            continue
        chars = (end - start) / end_s * ax_width_in * 72 / (6.5 * 0.62)
        text = _fit_label(name, chars)
        if text:
            ax.text(start + 0.004 * end_s, 0.96, text, transform=ax.get_xaxis_transform(),
                    fontsize=6.5, ha="left", va="top", color="0.25", clip_on=True, zorder=6)


def _binned(edges: np.ndarray, y: np.ndarray, nbins: int
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Time-weighted mean and the min/max of `y` (per window between `edges`) in `nbins`
    equal time bins: (bin edges, lo, hi, mean). Empty bins repeat the previous bin."""
    bins = np.linspace(edges[0], edges[-1], nbins + 1)
    mid = (edges[:-1] + edges[1:]) / 2
    idx = np.clip(np.searchsorted(bins, mid, side="right") - 1, 0, nbins - 1)
    dt = np.diff(edges)
    weight = np.bincount(idx, weights=dt, minlength=nbins)
    total = np.bincount(idx, weights=dt * y, minlength=nbins)
    lo = np.full(nbins, np.inf)
    hi = np.full(nbins, -np.inf)
    np.minimum.at(lo, idx, y)
    np.maximum.at(hi, idx, y)
    mean = np.divide(total, weight, out=np.full(nbins, np.nan), where=weight > 0)
    for k in range(nbins):
        if weight[k] <= 0:
            prev = k - 1 if k else 0
            lo[k], hi[k], mean[k] = lo[prev], hi[prev], mean[prev]
    return bins, lo, hi, mean


def _draw_bus(ax: Any, tl: Timeline, column: str, color: str) -> bool:
    """One bus of one run on its own time axis; True when drawn as range + mean."""
    edges = np.append(tl.t_s, tl.t_s[-1] + tl.dt_s[-1])
    y = np.asarray(getattr(tl, column), dtype=float)
    changes = int(np.count_nonzero(np.diff(y)))
    if changes <= _DENSE_TRANSITIONS:
        keep = np.r_[True, y[1:] != y[:-1]]  # only the steps: lossless for where="post"
        ax.step(np.append(edges[:-1][keep], edges[-1]), np.append(y[keep], y[-1]),
                where="post", color=color, lw=1.4, zorder=4)
        return False
    nbins = int(max(20, min(150, len(tl) // 4)))
    bins, lo, hi, mean = _binned(edges, y, nbins)
    ax.fill_between(bins, np.append(lo, lo[-1]), np.append(hi, hi[-1]), step="post",
                    color=color, alpha=0.22, lw=0, zorder=3)
    ax.step(bins, np.append(mean, mean[-1]), where="post", color=color, lw=1.4, zorder=4)
    return True


def plot_bus_timeline(path: Path, workload: str, results: Sequence[RunResult]) -> Path:
    """DDR and LLCC frequency over time, one row per policy, each on its own time axis.

    Every run shows its own phases as grey bands (names shortened to fit). A run whose
    frequency changes more than _DENSE_TRANSITIONS times (frame workloads) is drawn as the
    time-weighted mean per time bin with the bin's min..max range shaded, instead of a
    solid block of vertical lines. The frequency scale is shared down each column.
    """
    runs = [r for r in results if r.timeline is not None and len(r.timeline)]
    n = max(1, len(runs))
    fig_w = 12.0
    fig, axes = plt.subplots(n, 2, figsize=(fig_w, 1.05 + 1.45 * n), squeeze=False,
                             sharey="col", gridspec_kw={"width_ratios": [1, 1]})
    dense_any = False
    for row, r in enumerate(runs):
        tl = r.timeline
        assert tl is not None
        end_s = float(tl.t_s[-1] + tl.dt_s[-1])
        spans = _merge_spans(tl.phase_spans())
        for col, (column, bus) in enumerate((("ddr_mhz", "DDR"), ("llcc_mhz", "LLCC"))):
            ax = axes[row, col]
            _shade_phases(ax, spans, end_s, fig_w * 0.40, label=col == 0)
            dense_any |= _draw_bus(ax, tl, column, _color(r.policy))
            ax.set_xlim(0, end_s)
            ax.grid(True, alpha=0.3, lw=0.5)
            ax.tick_params(labelsize=7)
            if row == 0:
                ax.set_title(f"{bus} frequency (MHz)", fontsize=9)
            if row == n - 1:
                ax.set_xlabel("time (s), each run on its own axis", fontsize=8)
        slow = "" if r.slowdown is None else f"  x{r.slowdown:.3f}"
        axes[row, 0].set_ylabel(r.policy, fontsize=9, color=_color(r.policy),
                                fontweight="bold" if r.policy == "memlat" else "normal")
        axes[row, 1].text(1.0, 1.02, f"{end_s:.3f} s{slow}", transform=axes[row, 1].transAxes,
                          ha="right", va="bottom", fontsize=7, color="0.3")
    for col in range(2):
        top = max((float(np.max(getattr(r.timeline, c))) for r in runs if r.timeline
                   for c in (("ddr_mhz",), ("llcc_mhz",))[col]), default=1.0)
        axes[0, col].set_ylim(0, top * 1.22)  # headroom for the phase names
    note = ("; dense switching drawn as mean (line) and range (band) per time bin"
            if dense_any else "")
    fig.suptitle(f"{workload}: bus frequency per policy (grey bands: workload phases{note})",
                 fontsize=10)
    # fixed margins in inches: tight_layout re-renders every text several times and was
    # most of the report's time (one figure per workload)
    height = fig.get_figheight()
    fig.subplots_adjust(left=0.07, right=0.985, top=1 - 0.55 / height,
                        bottom=0.5 / height, hspace=0.45, wspace=0.12)
    fig.savefig(path, dpi=100, pil_kwargs={"compress_level": 1})
    plt.close(fig)
    return path


def _spread(points: list[tuple[float, float]], radius: float = 0.035) -> list[float]:
    """Horizontal offsets (in points) that separate markers closer than `radius` (axes
    fraction) so no policy hides another; 0 for a marker alone."""
    clusters: list[list[int]] = []
    for i, (x, y) in enumerate(points):
        for cl in clusters:
            if any(abs(points[j][0] - x) < radius and abs(points[j][1] - y) < radius
                   for j in cl):
                cl.append(i)
                break
        else:
            clusters.append([i])
    offsets = [0.0] * len(points)
    for cl in clusters:
        for k, i in enumerate(cl):
            offsets[i] = (k - (len(cl) - 1) / 2) * 10.0
    return offsets


def _rel_range(values: list[float], floor: float, min_span: float) -> tuple[float, float]:
    """Axis limits covering `values` and `floor`, at least `min_span` wide, padded."""
    lo, hi = min([*values, floor]), max([*values, floor])
    if hi - lo < min_span:
        mid = (hi + lo) / 2
        lo, hi = min(lo, mid - min_span / 2), max(hi, mid + min_span / 2)
    pad = 0.08 * (hi - lo)
    return lo - pad, hi + pad


def plot_energy_vs_slowdown(path: Path, results: Sequence[RunResult],
                            frontiers: dict[str, tuple[np.ndarray, np.ndarray]],
                            max_slowdown: float = 1.15) -> Path:
    """One panel per workload: energy vs slowdown, both relative to `performance` (%).

    Axes span at least 10 points of energy and 6 % of slowdown, so a 0.3 % difference
    looks small. Markers that would coincide are spread sideways by a few points, so every
    policy stays visible; memlat is drawn on top. Policies slower than `max_slowdown` are
    listed as off-scale. The oracle frontier E*(T) is the dashed line (decisions.md §4:
    nothing below it is reachable).
    """
    workloads = list(dict.fromkeys(r.workload for r in results))
    ncols = min(3, max(1, len(workloads)))
    nrows = math.ceil(len(workloads) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.5 * nrows + 0.8),
                             squeeze=False)
    handles: dict[str, Any] = {}
    order = sorted(dict.fromkeys(r.policy for r in results), key=lambda p: p == "memlat")
    for ax, workload in zip(axes.flat, workloads, strict=False):
        rows = [r for r in results if r.workload == workload and r.slowdown is not None]
        perf = next((r for r in rows if r.policy == "performance"), None)
        if perf is None or perf.energy_j <= 0:
            ax.set_title(f"{workload} (no performance run)", fontsize=9)
            continue
        rel = {r.policy: ((float(r.slowdown or 1.0) - 1) * 100,
                          (r.energy_j / perf.energy_j - 1) * 100) for r in rows}
        shown = {p: xy for p, xy in rel.items() if xy[0] <= (max_slowdown - 1) * 100}
        off = [p for p in rel if p not in shown]
        xlo, xhi = _rel_range([x for x, _ in shown.values()], 0.0, 6.0)
        ylo, yhi = _rel_range([y for _, y in shown.values()], 0.0, 10.0)
        ax.set_xlim(xlo, xhi)
        ax.set_ylim(ylo, yhi)
        if workload in frontiers:
            t, e = frontiers[workload]
            fx = (np.asarray(t) / perf.time_s - 1) * 100
            fy = (np.asarray(e) / perf.energy_j - 1) * 100
            keep = fx <= xhi
            line = ax.plot(fx[keep], fy[keep], color="0.35", lw=1.1, ls="--", zorder=1)[0]
            handles.setdefault("oracle frontier E*(T)", line)
        ax.axhline(0, color="0.6", lw=0.6, zorder=0)
        ax.axvline(0, color="0.6", lw=0.6, zorder=0)
        names = [p for p in order if p in shown]
        frac = [((shown[p][0] - xlo) / (xhi - xlo), (shown[p][1] - ylo) / (yhi - ylo))
                for p in names]
        for p, dx in zip(names, _spread(frac), strict=True):
            trans = mtransforms.offset_copy(ax.transData, fig=fig, x=dx, y=0, units="points")
            mine = p == "memlat"
            h = ax.scatter([shown[p][0]], [shown[p][1]], transform=trans,
                           marker=_MARKERS.get(p, "o"), s=80 if mine else 46,
                           color=_color(p), edgecolors="black", linewidths=0.6,
                           zorder=6 if mine else 4)
            handles.setdefault(p, h)
        if off:
            text = "off-scale:\n" + "\n".join(
                f"{p} +{rel[p][0]:.0f} % time, {rel[p][1]:+.0f} % energy" for p in off)
            ax.text(0.98, 0.97, text, transform=ax.transAxes, ha="right", va="top",
                    fontsize=6.5, bbox={"facecolor": "white", "alpha": 0.85, "lw": 0.5})
        ax.set_title(workload, fontsize=10)
        ax.set_xlabel("slowdown vs performance (%)", fontsize=8)
        ax.set_ylabel("energy vs performance (%)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(True, alpha=0.3, lw=0.5)
    for ax in list(axes.flat)[len(workloads):]:
        ax.set_visible(False)
    labels = [p for p in dict.fromkeys(r.policy for r in results) if p in handles]
    labels += [k for k in handles if k not in labels]
    if labels:
        fig.legend([handles[k] for k in labels], labels, loc="lower center",
                   ncol=len(labels), fontsize=8, frameon=False)
    fig.suptitle("Energy (CPU + DDR + LLCC) vs slowdown, relative to performance; lower "
                 "left is better.\nMarkers that coincide are spread sideways a few points",
                 fontsize=10)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_overview(path: Path, verdict: Verdict, clip_pct: float = 60.0) -> Path:
    """The suite at a glance: energy change and slowdown vs performance per workload and
    policy (horizontal bars). Axes stop at `clip_pct`, so a policy that is several times
    slower (powersave) does not squash the few-percent differences that matter; a bar cut
    there carries its value. memlat's bars are outlined and labelled."""
    policies = [p for p in verdict.policies if p != "performance"]
    rows = [*verdict.workloads, "suite"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 1.4 + 0.16 * len(rows) * max(2, len(policies))),
                             sharey=True)
    height = 0.8 / max(1, len(policies))
    for ax, key, title in ((axes[0], "energy_pct", "energy vs performance (%)"),
                           (axes[1], "slowdown_pct", "slowdown vs performance (%)")):
        every: list[float] = []
        for k, p in enumerate(policies):
            vals = []
            for w in rows:
                cell = verdict.suite.get(p) if w == "suite" else verdict.cells.get((w, p))
                vals.append(math.nan if cell is None else float(getattr(cell, key)))
            every += [v for v in vals if not math.isnan(v)]
            y = np.arange(len(rows)) + (k - (len(policies) - 1) / 2) * height
            shown = [v if math.isnan(v) else max(-100.0, min(v, clip_pct)) for v in vals]
            mine = p == "memlat"
            ax.barh(y, shown, height=height * 0.9, color=_color(p), label=p,
                    edgecolor="black" if mine else "none", lw=0.6, zorder=3 if mine else 2)
            for yy, v in zip(y, vals, strict=True):
                if math.isnan(v):
                    continue
                if v > clip_pct:
                    ax.text(clip_pct, yy, f" {v:.0f}", va="center", fontsize=6)
                elif mine:
                    ax.text(v, yy, f" {v:+.1f} " if key == "energy_pct" else f" {v:.2f} ",
                            va="center", ha="left" if v >= 0 else "right", fontsize=6.5,
                            fontweight="bold", color=_color(p))
        lo = min([0.0, *every])
        hi = min(clip_pct, max([0.0, *every]))
        lo, hi = _rel_range([lo, hi], 0.0, 10.0)
        ax.set_xlim(max(lo, -105.0), min(hi, clip_pct * 1.12))
        ax.axvline(0, color="black", lw=0.6)
        ax.set_title(title, fontsize=9)
        ax.grid(True, axis="x", alpha=0.3)
        ax.tick_params(labelsize=7)
    axes[0].set_yticks(np.arange(len(rows)), rows)
    axes[0].invert_yaxis()
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=max(1, len(labels)), fontsize=8,
               frameon=False)
    fig.suptitle(f"Each policy against performance, per workload and for the suite (suite: "
                 f"total energy, geometric-mean slowdown); bars cut at {clip_pct:g} % "
                 "carry their value", fontsize=10)
    fig.tight_layout(rect=(0, 0.035, 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def trans_stat_text(timeline: Timeline, bus: str, ladder_mhz: Sequence[float],
                    sample_ms: float) -> str:
    """devfreq trans_stat of one bus over a run, as Linux renders it (kernel format).

    The remote governor records the firmware's frequency once per polling period
    (protocol.md §3.7); here once per simulated window, at the window's end time in ms.
    Frequencies are in Hz like devfreq's OPP table.
    """
    col = {"ddr": timeline.ddr_mhz, "llcc": timeline.llcc_mhz}[bus]
    opps_hz = [round(f * 1_000_000) for f in ladder_mhz]
    first = round(float(col[0]) * 1_000_000) if len(timeline) else opps_hz[-1]
    dev = DevfreqDevice.create(bus, opps_hz, polling_ms=max(1, int(sample_ms)),
                               initial_freq=first, now_ms=0)
    end_ms = 0
    for t, dt, f in zip(timeline.t_s, timeline.dt_s, col, strict=True):
        dev.record(round(float(f) * 1_000_000), round(float(t) * 1000))
        end_ms = round((float(t) + float(dt)) * 1000)
    return dev.trans_stat(end_ms)


def write_trans_stats(out: Path, result: RunResult, ladders: dict[str, Sequence[float]],
                      sample_ms: float) -> list[Path]:
    """trans_stat/<workload>/<bus> for one run (the memlat policy in `memlat run`)."""
    if result.timeline is None:
        return []
    folder = out / "trans_stat" / _slug(result.workload)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for bus in TRANS_STAT_BUSES:
        path = folder / bus
        path.write_text(trans_stat_text(result.timeline, bus, ladders[bus], sample_ms))
        paths.append(path)
    return paths


def _plot_bus_timeline_job(job: tuple[Path, str, list[RunResult]]) -> Path:
    return plot_bus_timeline(*job)


def write_report(out: Path | str, results: Sequence[RunResult], *,
                 frontiers: dict[str, tuple[np.ndarray, np.ndarray]],
                 ladders: dict[str, Sequence[float]], sample_ms: float,
                 settings: dict[str, Any], trans_stat_policy: str = "memlat",
                 force: bool = False) -> list[Path]:
    """Write the whole report folder; returns every path written (under `out`).

    The report is built in a temporary sibling folder and moved into place when complete
    (memlat.analysis.outdir): an interrupted run leaves no partial report, a non-empty
    `out` is refused unless `force` (which replaces only memlat's previous files).
    Raises ConfigError naming `out` when it cannot be used.
    """
    out = Path(out)
    budget = float(settings.get("oracle_budget", 0.05))
    verdict = compute_verdict(results, budget=budget)
    with staged_folder(out, force=force) as tmp:
        write_json(tmp / "results.json", results, settings, frontiers)
        overview: list[Figure] = []
        if any(p != "performance" for p in verdict.suite):
            path = plot_overview(tmp / "overview.png", verdict)
            overview.append(Figure(path.name, "Energy and slowdown against performance, per "
                                   "workload and for the suite", path.read_bytes()))
        path = plot_energy_vs_slowdown(tmp / "energy_vs_slowdown.png", results, frontiers,
                                       max_slowdown=1.15)
        overview.append(Figure(path.name, "Energy vs slowdown per workload, relative to "
                               "performance, with the oracle frontier", path.read_bytes()))
        sections = []
        plots = [(tmp / f"busfreq_{_slug(w)}.png", w, [r for r in results if r.workload == w])
                 for w in verdict.workloads]
        # one figure per workload, drawn in parallel: matplotlib's drawing is most of a
        # default run's time (docs/simulation.md)
        with worker_pool(max(1, min(default_jobs(), len(plots)))) as pool:
            list(pool.map(_plot_bus_timeline_job, plots))
        for path, workload, rows in plots:
            ref = next((r for r in rows if r.policy == "performance" and r.timeline), None)
            stats: list[str] = []
            for r in rows:
                if r.policy == trans_stat_policy:
                    stats += [p.relative_to(tmp).as_posix()
                              for p in write_trans_stats(tmp, r, ladders, sample_ms)]
            sections.append(WorkloadSection(
                workload, Figure(path.name, f"{workload}: DDR and LLCC frequency per policy",
                                 path.read_bytes()),
                phases=_merge_spans(ref.timeline.phase_spans()) if ref and ref.timeline
                else [], trans_stat=stats))
        (tmp / "index.html").write_text(render_html(verdict, results, overview=overview,
                                                    sections=sections, settings=settings),
                                        encoding="utf-8")
        (tmp / "summary.md").write_text(render_markdown(verdict, results, overview=overview,
                                                        sections=sections, settings=settings),
                                        encoding="utf-8")
        written = sorted(p.relative_to(tmp) for p in tmp.rglob("*") if p.is_file())
    return [out / p for p in written] + [out / MANIFEST]
