"""Bus policies compared by `memlat run` (decisions.md §4).

A policy is asked once per window for the bus state of the *next* window, given what a
real implementation could have observed: the previous window's counter deltas, the bytes
the buses moved in it (bwmon's hardware counters see CPU and non-CPU traffic), and the
CPU frequencies cpufreq requests now (what a static OPP table follows). It answers a
`BusVote` (DDR MHz, LLCC MHz, DDR-QoS level), always on the bus ladders.

Policies here: `performance`, `powersave`, `static-map` (algorithm.md §5, opp-peak-kBps
tables derived from the memlat maps) and `bwmon` (algorithm.md §5, icc-bwmon style).
`memlat` lives in memlat.sim.memlat_policy (it boots the emulated CPUCP and programs it
over SCMI); `oracle` is not online at all (memlat.analysis.oracle).
"""

from __future__ import annotations

import bisect
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from memlat.governor.reference import map_lookup
from memlat.governor.spec import CounterWindow, GovernorConfig, MonitorSpec


@dataclass(frozen=True, slots=True)
class BusVote:
    """What the buses run at during one window: MHz on the ladders, QoS level 0/1."""

    ddr_mhz: float
    llcc_mhz: float
    ddr_qos: int = 0


@dataclass(frozen=True, slots=True)
class Ladders:
    """The OPP ladders (MHz, ascending) and the peak bytes/us per MHz of each bus.

    ddr_bytes_per_mhz = bytes per cycle x channels, so peak bytes/us = MHz x that
    (model-params.md §2.1).
    """

    ddr: tuple[float, ...]
    llcc: tuple[float, ...]
    ddr_bytes_per_mhz: float = 32.0
    llcc_bytes_per_mhz: float = 128.0

    @staticmethod
    def snap_up(ladder: Sequence[float], mhz: float) -> float:
        """The lowest OPP >= mhz (the top OPP when mhz is above the ladder)."""
        i = bisect.bisect_left(ladder, mhz - 1e-9)
        return float(ladder[min(i, len(ladder) - 1)])

    def ddr_up(self, mhz: float) -> float:
        """DDR OPP ceiling of `mhz`."""
        return self.snap_up(self.ddr, mhz)

    def llcc_up(self, mhz: float) -> float:
        """LLCC OPP ceiling of `mhz`."""
        return self.snap_up(self.llcc, mhz)

    @property
    def top(self) -> BusVote:
        """Both buses at their highest OPP, QoS level 1."""
        return BusVote(self.ddr[-1], self.llcc[-1], 1)

    @property
    def bottom(self) -> BusVote:
        """Both buses at their lowest OPP, QoS level 0."""
        return BusVote(self.ddr[0], self.llcc[0], 0)


@dataclass(slots=True)
class Observation:
    """What an online policy sees before window `index` (about the window before it).

    counters: the previous window's per-CPU counter deltas (None before the first);
    ddr_bytes / llcc_bytes: bytes moved on each bus in the previous window, DDR including
    non-CPU traffic; prev_dt_us: that window's length; cpu_req_mhz: the frequency each
    CPU requests for the coming window (0 for a CPU with nothing to run).
    """

    index: int
    now_us: float
    cpu_req_mhz: np.ndarray
    counters: CounterWindow | None = None
    ddr_bytes: float = 0.0
    llcc_bytes: float = 0.0
    prev_dt_us: float = 0.0


class Policy(ABC):
    """An online bus policy: `reset()` before a run, then `decide()` once per window."""

    name: str = "policy"

    def __init__(self, ladders: Ladders) -> None:
        self.ladders = ladders

    def reset(self) -> None:  # noqa: B027 - stateless policies need nothing
        """Forget everything from a previous run."""

    @abstractmethod
    def decide(self, obs: Observation) -> BusVote:
        """Bus state for the coming window."""

    def close(self) -> None:  # noqa: B027 - most policies hold no resources
        """Release resources (the memlat policy's emulated platform)."""


class PerformancePolicy(Policy):
    """Buses pinned at the top OPP (the baseline of every slowdown)."""

    name = "performance"

    def decide(self, obs: Observation) -> BusVote:
        """Always the top of both ladders."""
        return self.ladders.top


class PowersavePolicy(Policy):
    """Buses pinned at the lowest OPP."""

    name = "powersave"

    def decide(self, obs: Observation) -> BusVote:
        """Always the bottom of both ladders."""
        return self.ladders.bottom


def _ipm_monitor_for(cpu: int, monitors: Sequence[MonitorSpec]) -> MonitorSpec | None:
    """The first non-compute monitor whose mask holds `cpu` (its cluster's map)."""
    for mon in monitors:
        if not mon.compute and mon.cpumask >> cpu & 1:
            return mon
    return None


class StaticMapPolicy(Policy):
    """CPU-OPP -> bus table, as upstream opp-peak-kBps does (algorithm.md §5).

    Upstream derives each CPU OPP's peak bandwidths from the memlat maps (value x bus
    width), so the table is exactly the memlat map of the CPU's cluster, applied to the
    *requested* cpufreq of every CPU, with no IPM or stall gating; the bus gets the
    maximum over CPUs. A CPU with nothing to run requests nothing (schedutil drops an
    idle CPU to its minimum), which the map turns into its first row.
    """

    name = "static-map"

    def __init__(self, ladders: Ladders, config: GovernorConfig) -> None:
        super().__init__(ladders)
        self.config = config
        # group index per bus by name; groups not present leave that bus at the bottom
        names = [g.name.lower() for g in config.groups]
        self._group = {bus: names.index(bus) if bus in names else None
                       for bus in ("ddr", "llcc", "ddr_qos")}

    def _bus(self, bus: str, req: np.ndarray) -> float:
        g = self._group[bus]
        if g is None:
            return 0.0
        grp = self.config.groups[g]
        best = 0.0
        for cpu in range(min(len(req), self.config.ncpus)):
            mon = _ipm_monitor_for(cpu, grp.monitors)
            if mon is None:
                continue
            value = map_lookup(mon.map_rows, int(req[cpu]))
            khz = value if mon.is_level else value * 1000
            best = max(best, float(min(max(khz, mon.min_freq), mon.max_freq)))
        return best

    def decide(self, obs: Observation) -> BusVote:
        """Map every CPU's requested MHz through its cluster's map; max over CPUs."""
        req = np.asarray(obs.cpu_req_mhz, dtype=float)
        ddr = self._bus("ddr", req) / 1000.0
        llcc = self._bus("llcc", req) / 1000.0
        qos = int(self._bus("ddr_qos", req))
        return BusVote(self.ladders.ddr_up(ddr), self.ladders.llcc_up(llcc), qos)


class BwmonPolicy(Policy):
    """Bandwidth-driven, icc-bwmon style (algorithm.md §5).

    Each window's measured bytes on a bus (DDR: everything, incl. GPU/video/camera
    traffic the CPU counters never see; LLCC: CPU-side traffic) give a bandwidth; the
    vote is the OPP ceiling of bandwidth x 100 / io_percent (the downstream bw_hwmon
    headroom, io_percent 80 on SM8550, algorithm.md §5). Like icc-bwmon's zones, a
    higher ceiling is taken at once (zone-3 count 1) and a lower one only after
    `down_count` consecutive windows below the current OPP (zone-1 count 16 in icc-bwmon;
    4 here because our sample is the governor window, not icc-bwmon's 4 ms raw sample,
    and 16 x 4 ms = 64 ms is the same order). DDR-QoS is not a bwmon bus: level 0.
    """

    name = "bwmon"

    def __init__(self, ladders: Ladders, io_percent: float = 80.0, down_count: int = 4,
                 initial: BusVote | None = None) -> None:
        super().__init__(ladders)
        if not 0 < io_percent <= 100:
            raise ValueError(f"io_percent must be in (0, 100], got {io_percent}")
        self.io_percent = io_percent
        self.down_count = down_count
        self.initial = initial or ladders.top
        self.reset()

    def reset(self) -> None:
        """Start at the initial state with empty down counters."""
        self._cur = self.initial
        self._below = {"ddr": 0, "llcc": 0}

    def _ceil(self, bus: str, nbytes: float, dt_us: float) -> float:
        if dt_us <= 0:
            return getattr(self._cur, f"{bus}_mhz")
        per_mhz = (self.ladders.ddr_bytes_per_mhz if bus == "ddr"
                   else self.ladders.llcc_bytes_per_mhz)
        need_mhz = nbytes / dt_us * 100.0 / self.io_percent / per_mhz
        ladder = self.ladders.ddr if bus == "ddr" else self.ladders.llcc
        return self.ladders.snap_up(ladder, need_mhz)

    def _step(self, bus: str, target: float) -> float:
        cur = getattr(self._cur, f"{bus}_mhz")
        if target >= cur:
            self._below[bus] = 0
            return target
        self._below[bus] += 1
        if self._below[bus] >= self.down_count:
            self._below[bus] = 0
            return target
        return cur

    def decide(self, obs: Observation) -> BusVote:
        """OPP ceiling of the last window's bandwidth with io_percent headroom."""
        if obs.counters is None:
            return self._cur
        ddr = self._step("ddr", self._ceil("ddr", obs.ddr_bytes, obs.prev_dt_us))
        llcc = self._step("llcc", self._ceil("llcc", obs.llcc_bytes, obs.prev_dt_us))
        self._cur = BusVote(ddr, llcc, 0)
        return self._cur
