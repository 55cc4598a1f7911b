"""Bus policies compared by `memlat run` (decisions.md §4), as parameters of the kernel.

A policy answers, once per window, the bus state of the *next* window from what a real
implementation could have observed: the previous window's counter deltas, the bytes each
bus moved in it (bwmon's hardware counters see CPU and non-CPU traffic), and the CPU
frequencies cpufreq requests now (what a static OPP table follows). The answer is always on
the bus ladders. The decisions themselves run inside the run loop (memlat.sim.kernel.decide);
the classes here only validate their settings and pack them into arrays (`pack`).

* `Fixed` - both buses pinned (ladder OPPs, snapped up); `Performance` (the top, QoS 1)
  and `Powersave` (the bottom, QoS 0) are Fixed. Fixed-frequency runs are this policy.
* `StaticMap` - CPU-OPP -> bus table, as upstream opp-peak-kBps does (algorithm.md §5):
  the memlat map of each CPU's cluster applied to its *requested* frequency, no IPM or
  stall gating, the maximum over CPUs; a CPU with nothing to run requests 0 (the first
  row of its map).
* `Bwmon` - icc-bwmon style (algorithm.md §5): the OPP ceiling of the last window's
  measured bandwidth x 100 / io_percent (80 on SM8550); up at once, down only after
  `down_count` consecutive windows below (icc-bwmon's zone-1 count is 16 raw 4 ms samples;
  4 governor windows here is the same order). DDR-QoS is not a bwmon bus: level 0.
* `Memlat` - the CPUCP governor with exactly the configuration the emulated CPUCP holds
  after our agent programmed it over SCMI (memlat.agent.offline.programmed_governor:
  boot, probe once, read the firmware state back). Before the first vote the buses stay
  at their boot state, the top OPPs (docs/simulation.md). Group votes (kHz, a 0/1 level
  for DDR-QoS) are snapped up to the ladders (the DCVS layer runs the lowest OPP >= the
  vote, algorithm.md §2.5).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from memlat.agent.offline import programmed_governor
from memlat.config.model import SocConfig
from memlat.errors import ConfigError
from memlat.governor._numba import pack_governor
from memlat.governor.spec import GovernorConfig, MonitorSpec
from memlat.sim import kernel as K

POLICIES = ("memlat", "performance", "powersave", "static-map", "bwmon", "oracle")
ONLINE = tuple(p for p in POLICIES if p != "oracle")


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

    def index(self, bus: str, mhz: float) -> int:
        """Ladder index of the OPP ceiling of `mhz` on `bus` ("ddr" or "llcc")."""
        ladder = self.ddr if bus == "ddr" else self.llcc
        return min(bisect.bisect_left(ladder, mhz - 1e-9), len(ladder) - 1)


@dataclass(slots=True)
class PolicyPack:
    """A policy as the kernel's arrays (layout: memlat.sim.kernel)."""

    pol_i: np.ndarray
    pol_f: np.ndarray
    sm: tuple[np.ndarray, ...]  # sm_has, sm_keys, sm_vals, sm_nrows, sm_minmax, sm_level
    sm_ncfg: int
    gov: tuple[np.ndarray, ...]  # gov_i, cmax, grp_ev, grp_adapt, grp_bus, mon_* (8)


def _empty_static_map(ncpus: int) -> tuple[tuple[np.ndarray, ...], int]:
    return ((np.zeros((3, ncpus), np.bool_), np.zeros((3, ncpus, 1), np.int64),
             np.zeros((3, ncpus, 1), np.int64), np.zeros((3, ncpus), np.int64),
             np.zeros((3, ncpus, 2), np.int64), np.zeros(3, np.int64)), 0)


_BUS_OF = {"ddr": K.B_DDR, "llcc": K.B_LLCC, "ddr_qos": K.B_QOS}


def pack_memlat(config: GovernorConfig, ncpus: int,
                roles: dict[int, str] | None = None) -> tuple[np.ndarray, ...]:
    """The governor's arrays (memlat.governor._numba.pack_governor) plus each group's bus.

    roles: hw_type -> bus name ("ddr", "llcc", "ddr_qos"); default: the group names.
    """
    arrays = pack_governor(config, ncpus)
    names = roles or {g.hw_type: g.name.lower() for g in config.groups}
    grp_bus = np.array([_BUS_OF.get(names.get(g.hw_type, ""), -1) for g in config.groups],
                       np.int64)
    return (*arrays[:4], grp_bus, *arrays[4:])


def _no_governor(ncpus: int) -> tuple[np.ndarray, ...]:
    return pack_memlat(GovernorConfig(ncpus=ncpus, groups=()), ncpus)


class Policy:
    """Base of every online policy: a name and `pack(ladders, ncpus)`."""

    name: str = "policy"

    def pack(self, ladders: Ladders, ncpus: int) -> PolicyPack:  # pragma: no cover
        """The kernel's arrays for this policy."""
        raise NotImplementedError

    @staticmethod
    def _pack(kind: int, ncpus: int, ddr: int = 0, llcc: int = 0, qos: int = 0,
              down: int = 0, io_pct: float = 100.0,
              sm: tuple[tuple[np.ndarray, ...], int] | None = None,
              gov: tuple[np.ndarray, ...] | None = None) -> PolicyPack:
        sm_arrays, ncfg = sm or _empty_static_map(ncpus)
        return PolicyPack(np.array([kind, ddr, llcc, qos, down], np.int64),
                          np.array([io_pct], np.float64), sm_arrays, ncfg,
                          gov or _no_governor(ncpus))


@dataclass(frozen=True, slots=True)
class Fixed(Policy):
    """Both buses pinned: MHz snapped up to the ladders (None = the top OPP)."""

    ddr_mhz: float | None = None
    llcc_mhz: float | None = None
    ddr_qos: int = 1
    name: str = "fixed"

    def pack(self, ladders: Ladders, ncpus: int) -> PolicyPack:
        """A fixed vote every window."""
        d = len(ladders.ddr) - 1 if self.ddr_mhz is None else ladders.index("ddr", self.ddr_mhz)
        ll = (len(ladders.llcc) - 1 if self.llcc_mhz is None
              else ladders.index("llcc", self.llcc_mhz))
        return self._pack(K.POL_FIXED, ncpus, d, ll, self.ddr_qos)


def Performance() -> Fixed:
    """Buses pinned at the top OPP, QoS 1 (the baseline of every slowdown)."""
    return Fixed(None, None, 1, name="performance")


def Powersave() -> Fixed:
    """Buses pinned at the lowest OPP, QoS 0."""
    return Fixed(0.0, 0.0, 0, name="powersave")


def _ipm_monitor_for(cpu: int, monitors: Sequence[MonitorSpec]) -> MonitorSpec | None:
    """The first non-compute monitor whose mask holds `cpu` (its cluster's map)."""
    for mon in monitors:
        if not mon.compute and mon.cpumask >> cpu & 1:
            return mon
    return None


@dataclass(frozen=True, slots=True)
class StaticMap(Policy):
    """CPU-OPP -> bus table from the memlat maps (see the module docstring)."""

    config: GovernorConfig
    name: str = "static-map"

    def pack(self, ladders: Ladders, ncpus: int) -> PolicyPack:
        """Per bus and CPU: its cluster's map rows, min/max and level flag."""
        cfg = self.config
        names = [g.name.lower() for g in cfg.groups]
        rows = max([len(m.map_rows) for _, _, m in cfg.monitors] + [1])
        has = np.zeros((3, ncpus), np.bool_)
        keys = np.zeros((3, ncpus, rows), np.int64)
        vals = np.zeros((3, ncpus, rows), np.int64)
        nrows = np.zeros((3, ncpus), np.int64)
        minmax = np.zeros((3, ncpus, 2), np.int64)
        level = np.zeros(3, np.int64)
        for bus, b in (("ddr", K.B_DDR), ("llcc", K.B_LLCC), ("ddr_qos", K.B_QOS)):
            if bus not in names:
                continue
            grp = cfg.groups[names.index(bus)]
            for cpu in range(min(ncpus, cfg.ncpus)):
                mon = _ipm_monitor_for(cpu, grp.monitors)
                if mon is None:
                    continue
                has[b, cpu] = True
                level[b] = int(mon.is_level)
                for r, (key, val) in enumerate(mon.map_rows):
                    keys[b, cpu, r] = key
                    vals[b, cpu, r] = val
                nrows[b, cpu] = len(mon.map_rows)
                minmax[b, cpu] = (mon.min_freq, mon.max_freq)
        return self._pack(K.POL_STATIC_MAP, ncpus,
                          sm=((has, keys, vals, nrows, minmax, level), cfg.ncpus))


@dataclass(frozen=True, slots=True)
class Bwmon(Policy):
    """Bandwidth-driven, icc-bwmon style (see the module docstring).

    initial: the (DDR MHz, LLCC MHz, QoS) before the first observation (None: the top).
    """

    io_percent: float = 80.0
    down_count: int = 4
    initial: tuple[float, float, int] | None = None
    name: str = "bwmon"

    def __post_init__(self) -> None:
        if not 0 < self.io_percent <= 100:
            raise ValueError(f"io_percent must be in (0, 100], got {self.io_percent}")
        if self.down_count < 1:
            raise ValueError(f"down_count must be >= 1, got {self.down_count}")

    def pack(self, ladders: Ladders, ncpus: int) -> PolicyPack:
        """Initial state and headroom."""
        if self.initial is None:
            d, ll, q = len(ladders.ddr) - 1, len(ladders.llcc) - 1, 1
        else:
            d = ladders.index("ddr", self.initial[0])
            ll = ladders.index("llcc", self.initial[1])
            q = self.initial[2]
        return self._pack(K.POL_BWMON, ncpus, d, ll, q, self.down_count, self.io_percent)


@dataclass(slots=True)
class Memlat(Policy):
    """memlat as the firmware runs it (see the module docstring).

    config: the GovernorConfig to run; None (default) programs it the one way, over SCMI:
    memlat.agent.offline.programmed_governor boots an emulated CPUCP, our agent probes it
    (once, when the policy is made) and the firmware's state is read back. Pass a config
    only when it came from that same call (a tuner that already checked it).
    """

    soc: SocConfig
    config: GovernorConfig | None = None
    dialect: str | None = None
    name: str = "memlat"

    def __post_init__(self) -> None:
        if self.config is None:
            self.config = programmed_governor(self.soc, self.dialect)

    def pack(self, ladders: Ladders, ncpus: int) -> PolicyPack:
        """The governor's arrays; groups map to buses by the profile's group keys."""
        assert self.config is not None
        roles = {g.hw_type: g.key for g in self.soc.groups}
        return self._pack(K.POL_MEMLAT, ncpus, gov=pack_memlat(self.config, ncpus, roles))


def make_policy(name: str, soc: SocConfig) -> Policy:
    """An online policy by name (`oracle` is not online: memlat.analysis.oracle)."""
    if name == "performance":
        return Performance()
    if name == "powersave":
        return Powersave()
    if name == "static-map":
        return StaticMap(programmed_governor(soc))
    if name == "bwmon":
        return Bwmon()
    if name == "memlat":
        return Memlat(soc)
    raise ConfigError(f"unknown policy {name!r} (have: {', '.join(POLICIES)})",
                      location="--policies")
