"""Replay: the emulated firmware's governor over a recorded counter trace.

decisions.md §5: `memlat replay --soc NAME --trace FILE --out FILE` writes a CSV with
columns window,group,khz: the group vote after each window (a level 0/1 for ddr_qos).
The trace may be CSV, Parquet or `perf stat -I -x, -A` output (memlat.traces).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from memlat.agent.offline import programmed_governor
from memlat.config.profiles import load_profile
from memlat.errors import ConfigError
from memlat.governor.engine import run_trace
from memlat.governor.spec import UNUSED_EVENT, GovernorConfig
from memlat.qcom.ids import HwType
from memlat.traces import load_event_table, read_trace


def governor_config_for_soc(name: str) -> GovernorConfig:
    """The GovernorConfig the emulated firmware holds once SoC profile `name` (or YAML
    file) was probed into it (`memlat.agent.offline.programmed_governor`)."""
    return programmed_governor(load_profile(name))


def group_names(config: GovernorConfig) -> list[str]:
    """Output names of the groups: ddr, llcc, ddr_qos (decisions.md §5)."""
    names = []
    for grp in config.groups:
        name = grp.name.strip().lower().replace("-", "_")
        names.append(name or HwType.label(grp.hw_type))
    return names


def required_counters(config: GovernorConfig) -> list[int]:
    """Counters a trace must carry for `config`: those that can change a decision.

    Instructions, cycles and every miss event always; constant cycles for method 0;
    FE/BE stall only when some monitor can boost (the floors gate only the boost,
    algorithm.md §2.1); WB/ACC when a group configures both. Other counters may be
    absent and read as 0.
    """
    ev = config.common
    need = {ev.inst, ev.cyc}
    if config.method == 0:
        need.add(ev.const_cyc)
    boost = any(m.freq_scale_pct and not m.compute for _, _, m in config.monitors)
    if boost:
        need |= {ev.fe_stall, ev.be_stall}
    for grp in config.groups:
        need.add(grp.miss_event)
        if grp.wb_event != UNUSED_EVENT and grp.acc_event != UNUSED_EVENT:
            need |= {grp.wb_event, grp.acc_event}
    need.discard(UNUSED_EVENT)
    return sorted(need)


def replay_frame(config: GovernorConfig, votes: np.ndarray) -> pl.DataFrame:
    """(windows, groups) votes -> the long window,group,khz table, window-major."""
    w, g = votes.shape
    return pl.DataFrame({
        "window": np.repeat(np.arange(w, dtype=np.int64), g),
        "group": np.tile(np.array(group_names(config), dtype=object), w).tolist(),
        "khz": votes.reshape(-1).astype(np.int64),
    })


def replay(soc: str, trace_path: Path, out_path: Path, *, use_numba: bool = False,
           perf_events: Path | None = None, fmt: str = "auto") -> pl.DataFrame:
    """Run SoC `soc`'s governor over the trace file and write the votes CSV."""
    config = governor_config_for_soc(soc)
    trace = read_trace(trace_path, fmt=fmt, ncpus=config.ncpus,
                       required_counters=required_counters(config),
                       perf_events=load_event_table(perf_events) if perf_events else None)
    result = run_trace(config, trace, use_numba=use_numba)
    frame = replay_frame(config, result.group_votes)
    try:
        frame.write_csv(out_path)
    except OSError as exc:
        raise ConfigError(f"cannot write: {exc.strerror}", source=str(out_path)) from exc
    return frame
