"""The report folder of `memlat run` (decisions.md §5): JSON, PNG plots, trans_stat.

Layout under the output folder:

* `results.json`: the run's settings and one summary object per (workload, policy),
  plus the oracle frontier of every workload (time, energy breakpoints);
* `busfreq_<workload>.png`: DDR and LLCC frequency over time, one line per policy,
  with the workload phases shaded and labelled;
* `energy_vs_slowdown.png`: one panel per workload, each policy a point, the oracle
  frontier E*(T) a line (decisions.md §4: nothing below the line is reachable);
* `trans_stat/<workload>/<bus>`: devfreq trans_stat text for the memlat policy's DDR
  and LLCC, rendered by memlat.agent.devfreq exactly as Linux prints it.
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
import numpy as np

from memlat.agent.devfreq import DevfreqDevice
from memlat.sim.results import RunResult, Timeline

TRANS_STAT_BUSES = ("ddr", "llcc")  # ddr_qos is a 0/1 level, not a devfreq OPP table
_STYLES = {"memlat": dict(ls="-", lw=1.0, zorder=4),
           "performance": dict(ls="--", lw=2.0, zorder=3),
           "powersave": dict(ls=":", lw=2.0, zorder=3),
           "static-map": dict(ls="-.", lw=1.5, zorder=3),
           "bwmon": dict(ls="-", lw=1.2, zorder=3),
           "oracle": dict(ls="-", lw=3.0, alpha=0.45, zorder=2)}
_MARKERS = {"memlat": "o", "performance": "^", "powersave": "v", "static-map": "s",
            "bwmon": "D", "oracle": "*"}


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


def _shade_phases(ax: Any, spans: list[tuple[str, float, float]], label: bool) -> None:
    """Alternate grey bands per phase span; phase names along the top when `label`.

    A name is written only on spans wide enough to hold it (>= 4 % of the run), so
    workloads with many short repeated phases stay readable.
    """
    total = spans[-1][2] - spans[0][1] if spans else 0.0
    for i, (name, start, end) in enumerate(spans):
        ax.axvspan(start, end, color="0.82" if i % 2 else "0.92", zorder=0, lw=0)
        if label and end - start >= 0.04 * total:
            ax.text(start, 1.01, name, transform=ax.get_xaxis_transform(), fontsize=7,
                    rotation=20, ha="left", va="bottom", clip_on=False)


def _merge_spans(spans: list[tuple[str, float, float]]) -> list[tuple[str, float, float]]:
    """Join adjacent spans of the same phase; cap the count so labels stay readable."""
    merged: list[tuple[str, float, float]] = []
    for name, start, end in spans:
        if merged and merged[-1][0] == name:
            merged[-1] = (name, merged[-1][1], end)
        else:
            merged.append((name, start, end))
    return merged


def _changes(t: np.ndarray, dt: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Step-plot points of a piecewise-constant series: only where the value changes,
    plus the end of the last window (lossless for a `where="post"` step plot)."""
    if not len(y):
        return t, y
    keep = np.r_[True, y[1:] != y[:-1]]
    return np.append(t[keep], t[-1] + dt[-1]), np.append(y[keep], y[-1])


def _save(fig: Any, path: Path, *, left: float = 0.07, right: float = 0.98,
          bottom: float = 0.08, top: float = 0.9, hspace: float = 0.25,
          wspace: float = 0.25) -> None:
    """Fixed margins instead of tight_layout (which re-renders the text several times),
    fast PNG compression."""
    fig.subplots_adjust(left=left, right=right, bottom=bottom, top=top, hspace=hspace,
                        wspace=wspace)
    fig.savefig(path, dpi=100, pil_kwargs={"compress_level": 1})
    plt.close(fig)


def plot_bus_timeline(path: Path, workload: str, results: Sequence[RunResult]) -> Path:
    """DDR and LLCC frequency over time for every policy, phases shaded and labelled.

    The phase bands come from the `performance` run (the nominal schedule) when present.
    """
    fig, axes = plt.subplots(2, 1, figsize=(11, 6.5), sharex=True)
    ref = next((r for r in results if r.policy == "performance" and r.timeline), None)
    ref = ref or next((r for r in results if r.timeline), None)
    spans = _merge_spans(ref.timeline.phase_spans()) if ref and ref.timeline else []
    for ax, bus, title in ((axes[0], "ddr_mhz", "DDR"), (axes[1], "llcc_mhz", "LLCC")):
        _shade_phases(ax, spans, label=ax is axes[0])
        for r in results:
            tl = r.timeline
            if tl is None or not len(tl):
                continue
            t, y = _changes(tl.t_s, tl.dt_s, getattr(tl, bus))
            ax.step(t, y, where="post", label=r.policy, **_STYLES.get(r.policy, {"lw": 1.1}))
        ax.set_ylabel(f"{title} frequency (MHz)")
        ax.grid(True, alpha=0.3)
    axes[1].set_xlabel("time (s)")
    axes[0].legend(loc="upper right", fontsize=8, ncol=3, framealpha=0.9)
    fig.suptitle(f"Bus frequency over time: {workload} (shaded: workload phases)", y=0.995)
    _save(fig, path, top=0.88)
    return path


def plot_energy_vs_slowdown(path: Path, results: Sequence[RunResult],
                            frontiers: dict[str, tuple[np.ndarray, np.ndarray]],
                            max_slowdown: float = 1.15) -> Path:
    """One panel per workload: energy vs slowdown for each policy, oracle frontier as a line.

    The x axis stops at `max_slowdown` so the interesting region stays readable; policies
    beyond it are listed in the panel as off-scale with their slowdown and energy.
    """
    workloads = list(dict.fromkeys(r.workload for r in results))
    ncols = min(3, max(1, len(workloads)))
    nrows = math.ceil(len(workloads) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.0 * ncols, 4.0 * nrows), squeeze=False)
    for ax, workload in zip(axes.flat, workloads, strict=False):
        rows = [r for r in results if r.workload == workload and r.slowdown is not None]
        perf = next((r for r in rows if r.policy == "performance"), None)
        shown = [r for r in rows if (r.slowdown or 1.0) <= max_slowdown]
        off = [r for r in rows if (r.slowdown or 1.0) > max_slowdown]
        x_hi = max([r.slowdown or 1.0 for r in shown] + [1.02]) * 1.01
        if workload in frontiers and perf is not None:
            t, e = frontiers[workload]
            sd = t / perf.time_s
            keep = sd <= x_hi
            ax.plot(np.append(sd[keep], x_hi), np.append(e[keep], np.interp(x_hi, sd, e)),
                    color="0.35", lw=1.2, ls="--", label="oracle frontier E*(T)", zorder=1)
        for r in shown:
            ax.scatter([r.slowdown], [r.energy_j], marker=_MARKERS.get(r.policy, "o"), s=52,
                       label=r.policy, zorder=3, alpha=0.85)
        if off:
            text = "off-scale:\n" + "\n".join(f"{r.policy} x{r.slowdown:.2f}, {r.energy_j:.3g} J"
                                               for r in off)
            ax.text(0.5, 0.97, text, transform=ax.transAxes, ha="center", va="top",
                    fontsize=7, bbox={"facecolor": "white", "alpha": 0.8, "lw": 0.5})
        ax.set_xlim(min(0.995, min([r.slowdown or 1.0 for r in shown] + [1.0]) - 0.005), x_hi)
        ax.set_title(workload, fontsize=10)
        ax.set_xlabel("slowdown vs performance (x)")
        ax.set_ylabel("energy (J)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="upper right", framealpha=0.6)
    for ax in list(axes.flat)[len(workloads):]:
        ax.set_visible(False)
    fig.suptitle("Energy vs slowdown per policy (CPU + DDR + LLCC); "
                 "no schedule lies below the oracle frontier")
    _save(fig, path, left=0.06, bottom=0.06, top=0.92, hspace=0.4, wspace=0.3)
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


def write_report(out: Path | str, results: Sequence[RunResult], *,
                 frontiers: dict[str, tuple[np.ndarray, np.ndarray]],
                 ladders: dict[str, Sequence[float]], sample_ms: float,
                 settings: dict[str, Any], trans_stat_policy: str = "memlat") -> list[Path]:
    """Write the whole report folder; returns every path written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [write_json(out / "results.json", results, settings, frontiers)]
    workloads = list(dict.fromkeys(r.workload for r in results))
    for workload in workloads:
        rows = [r for r in results if r.workload == workload]
        paths.append(plot_bus_timeline(out / f"busfreq_{_slug(workload)}.png", workload, rows))
        for r in rows:
            if r.policy == trans_stat_policy:
                paths += write_trans_stats(out, r, ladders, sample_ms)
    paths.append(plot_energy_vs_slowdown(out / "energy_vs_slowdown.png", results, frontiers))
    return paths
