"""`devfreq_frequency` events -> per-bus frequency timelines, trans_stat, vote comparison.

Timelines: for each devfreq device (dev_name ddr, llcc, ddr-qos for the memlat devfreq
driver, protocol.md §3.7) the (time, Hz) steps in trace order. trans_stat: the kernel's
text (memlat.agent.devfreq.render_trans_stat, drivers/devfreq/devfreq.c
trans_stat_show) accumulated from the transitions by devfreq_update_status, from the
first traced timestamp to the last, at HZ=1000 (1 jiffy = 1 ms). The OPP table is the
profile group's (`Group.opp_hz`, synthetic 1/100 Hz for level groups) when the device
is a group of the profile, else every frequency the trace shows.

Comparison with a counter trace of the same period: memlat's governor
(memlat.governor.engine.run_trace) runs over the counters with the programmed profile;
window w of the counter trace spans [t0 + w*dt, t0 + (w+1)*dt), t0 being the time the
firmware started sampling (the START_TIMER reply) unless given. The board's vote for
window w is the devfreq frequency in effect half a window after the window ended (the
driver reads the firmware's vote once per window); the governor's vote is snapped up to
the group's OPP ladder as the DCVS layer does (algorithm.md §2.5).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from memlat.agent.devfreq import DevfreqStats, render_trans_stat
from memlat.agent.offline import programmed_governor
from memlat.analysis.decode.ftrace import DevfreqFreq
from memlat.config.model import Group, SocConfig
from memlat.governor.engine import run_trace
from memlat.governor.spec import CounterTrace

NS_PER_MS = 1_000_000


@dataclass
class Timeline:
    """One device's frequency steps: times (ns) and frequencies (Hz) after each change."""

    dev_name: str
    t_ns: list[int] = field(default_factory=list)
    freq_hz: list[int] = field(default_factory=list)
    initial_hz: int = 0

    def at(self, t_ns: int) -> int:
        """The frequency in effect at `t_ns` (the initial one before the first change)."""
        i = int(np.searchsorted(np.asarray(self.t_ns, np.int64), t_ns, side="right"))
        return self.initial_hz if i == 0 else self.freq_hz[i - 1]


def timelines(events: list[DevfreqFreq]) -> dict[str, Timeline]:
    """Per-device timelines, devices in order of first appearance."""
    out: dict[str, Timeline] = {}
    for ev in events:
        tl = out.get(ev.dev_name)
        if tl is None:
            tl = out[ev.dev_name] = Timeline(ev.dev_name, initial_hz=ev.prev_freq)
        tl.t_ns.append(ev.where.ts_ns or 0)
        tl.freq_hz.append(ev.freq)
    return out


def _group_for(soc: SocConfig | None, dev_name: str) -> Group | None:
    if soc is None:
        return None
    for g in soc.groups:
        if dev_name in (g.name, g.key):
            return g
    return None


def trans_stat(tl: Timeline, start_ns: int, end_ns: int, soc: SocConfig | None = None) -> str:
    """The device's trans_stat text over [start_ns, end_ns] (see the module docstring)."""
    group = _group_for(soc, tl.dev_name)
    seen = {tl.initial_hz, *tl.freq_hz} - {0}
    table = tuple(group.opp_hz()) if group is not None else tuple(sorted(seen))
    if not set(seen) <= set(table):
        table = tuple(sorted(set(table) | seen))
    stats = DevfreqStats(table, previous_freq=tl.initial_hz,
                         last_update_ms=start_ns // NS_PER_MS)
    for t, f in zip(tl.t_ns, tl.freq_hz, strict=True):
        stats.update_status(f, t // NS_PER_MS)
        stats.previous_freq = f
    stats.update_status(stats.previous_freq, end_ns // NS_PER_MS)
    return render_trans_stat(stats)


@dataclass
class BusComparison:
    """Board versus governor on one bus: agreement and the first divergence."""

    group: str
    windows: int
    agree: int
    first_divergence: dict[str, Any] | None = None

    @property
    def agreement_pct(self) -> float:
        """Share of windows where both votes are equal, in %."""
        return 100.0 * self.agree / self.windows if self.windows else 100.0

    def as_json(self) -> dict[str, Any]:
        """JSON object."""
        return {"kind": "devfreq-compare", "group": self.group, "windows": self.windows,
                "agree": self.agree, "agreement_pct": round(self.agreement_pct, 3),
                "first_divergence": self.first_divergence}

    def describe(self) -> str:
        """One line."""
        text = (f"{self.group}: board and memlat governor agree on {self.agree}/"
                f"{self.windows} windows ({self.agreement_pct:.1f} %)")
        fd = self.first_divergence
        if fd:
            text += (f"; first divergence at window {fd['window']} (t={fd['t_s']:.6f} s): "
                     f"board {fd['board']} {fd['unit']}, governor {fd['governor']} {fd['unit']}")
        return text


def _snap_up(ladder: np.ndarray, votes: np.ndarray) -> np.ndarray:
    idx = np.searchsorted(ladder, votes, side="left")
    return ladder[np.minimum(idx, len(ladder) - 1)]


def compare(tls: dict[str, Timeline], soc: SocConfig, counters: CounterTrace,
            start_ns: int) -> list[BusComparison]:
    """Per group of `soc` that the trace has a timeline for (module docstring)."""
    config = programmed_governor(soc)
    votes = run_trace(config, counters).group_votes  # (W, G), kHz or level
    dt_ns = counters.dt_us[:, 0].astype(np.int64) * 1000
    ends = start_ns + np.cumsum(dt_ns)
    probe_t = ends + dt_ns // 2
    out = []
    for gi, group in enumerate(soc.groups):
        tl = tls.get(group.name) or tls.get(group.key)
        if tl is None:
            continue
        ladder = np.asarray(group.ladder, np.int64)
        gov = _snap_up(ladder, votes[:, gi].astype(np.int64))
        board_hz = np.asarray([tl.at(int(t)) for t in probe_t], np.int64)
        board = (board_hz >= 100).astype(np.int64) if group.is_level else board_hz // 1000
        same = board == gov
        comp = BusComparison(group.name, len(gov), int(same.sum()))
        if not same.all():
            w = int(np.argmin(same))
            comp.first_divergence = {"window": w, "t_s": float(ends[w] - dt_ns[w]) / 1e9,
                                     "board": int(board[w]), "governor": int(gov[w]),
                                     "unit": "level" if group.is_level else "kHz"}
        out.append(comp)
    return out


def devfreq_events_for_votes(soc: SocConfig, counters: CounterTrace, start_ns: int,
                             delay_ns: int = 150_000) -> list[tuple[int, str, int, int]]:
    """The devfreq_frequency events a board running memlat's governor would log:
    (t_ns, dev_name, freq Hz, prev_freq Hz), a change `delay_ns` after its window ended.

    Used to build example and test traces; the boot state is every bus at its top OPP.
    """
    config = programmed_governor(soc)
    votes = run_trace(config, counters).group_votes
    dt_ns = counters.dt_us[:, 0].astype(np.int64) * 1000
    ends = start_ns + np.cumsum(dt_ns)
    events = []
    for gi, group in enumerate(soc.groups):
        opp = group.opp_hz()
        ladder = np.asarray(group.ladder, np.int64)
        gov = _snap_up(ladder, votes[:, gi].astype(np.int64))
        prev = opp[-1]
        for w, v in enumerate(gov):
            hz = opp[list(group.ladder).index(int(v))]
            if hz != prev:
                events.append((int(ends[w]) + delay_ns, group.name, hz, prev))
                prev = hz
    events.sort()
    return events
