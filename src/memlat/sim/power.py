"""Power and energy of CPUs, LLCC and DDR per window (decisions.md §4, model-params.md §3).

Per window of dt microseconds:

* DDR: background power of the current OPP (static + clocked, model-params.md §3.2)
  times dt, plus pJ/B times the bytes moved (CPU misses / read fraction + non-CPU traffic).
* LLCC: background power of its OPP (model-params.md §3.3) times dt, plus pJ/B times the
  CPU L2-miss traffic it serves (non-CPU traffic is assumed to bypass it).
* CPUs: each core's busy power at its frequency (the cluster curve) for its busy time
  (stalled cycles burn the same power, algorithm.md §4.4), idle power otherwise, plus the
  cluster's static power scaled by the busiest core's busy fraction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from memlat.sim.profile import SimProfile

_NJ_PER_MW_US = 1e-9  # 1 mW for 1 us = 1 nJ


@dataclass(slots=True)
class Energy:
    """Energy in joules per component."""

    cpu_j: float = 0.0
    ddr_j: float = 0.0
    llcc_j: float = 0.0

    @property
    def total_j(self) -> float:
        """Sum over components."""
        return self.cpu_j + self.ddr_j + self.llcc_j

    def add(self, other: Energy) -> None:
        """Accumulate `other` into this one."""
        self.cpu_j += other.cpu_j
        self.ddr_j += other.ddr_j
        self.llcc_j += other.llcc_j

    def as_dict(self) -> dict[str, float]:
        """{"cpu": J, "ddr": J, "llcc": J, "total": J}."""
        return {"cpu": self.cpu_j, "ddr": self.ddr_j, "llcc": self.llcc_j,
                "total": self.total_j}


class PowerModel:
    """Energy accounting for one SoC profile."""

    def __init__(self, profile: SimProfile):
        self.profile = profile
        self._members = [np.asarray(cl.cpus) for cl in profile.clusters]
        self._idle_mw = np.array([cl.power.idle_core_mw for cl in profile.clusters])
        self._static_mw = np.array([cl.power.cluster_static_mw for cl in profile.clusters])
        self._cluster_of = profile.cluster_of
        self._core_key: bytes | None = None
        self._core_mw = np.zeros(profile.ncpus)

    def cpu_core_mw(self, cpu_mhz: np.ndarray) -> np.ndarray:
        """Busy power (mW) of each CPU at cpu_mhz[c] (its cluster's curve)."""
        mhz = np.asarray(cpu_mhz, dtype=float)
        key = mhz.tobytes()
        if key != self._core_key:
            out = np.empty(self.profile.ncpus)
            for cl, idx in zip(self.profile.clusters, self._members, strict=True):
                out[idx] = cl.power.core_mw(mhz[idx])
            self._core_key, self._core_mw = key, out
        return self._core_mw

    def cpu_energy_j(self, dt_us: float, busy_us: np.ndarray, cpu_mhz: np.ndarray) -> float:
        """CPU energy of one window: busy, idle and cluster static parts."""
        busy = np.asarray(busy_us, dtype=float)
        total_mw_us = float(np.dot(busy, self.cpu_core_mw(cpu_mhz)))
        total_mw_us += float(np.dot(dt_us - busy, self._idle_mw[self._cluster_of]))
        busiest = np.zeros(len(self._static_mw))
        np.maximum.at(busiest, self._cluster_of, busy)
        total_mw_us += float(np.dot(busiest, self._static_mw))
        return total_mw_us * _NJ_PER_MW_US

    def ddr_energy_j(self, dt_us: float, ddr_mhz: float, bytes_moved: float) -> float:
        """DDR energy of one window at ddr_mhz moving `bytes_moved` bytes."""
        return (self.profile.ddr.power_mw(ddr_mhz) * dt_us * _NJ_PER_MW_US
                + self.profile.ddr.pj_per_byte * bytes_moved * 1e-12)

    def llcc_energy_j(self, dt_us: float, llcc_mhz: float, bytes_moved: float) -> float:
        """LLCC energy of one window at llcc_mhz serving `bytes_moved` bytes."""
        return (self.profile.llcc.power_mw(llcc_mhz) * dt_us * _NJ_PER_MW_US
                + self.profile.llcc.pj_per_byte * bytes_moved * 1e-12)

    def window(self, dt_us: float, ddr_mhz: float, llcc_mhz: float, busy_us: np.ndarray,
               cpu_mhz: np.ndarray, ddr_bytes: float, llcc_bytes: float) -> Energy:
        """Energy of one window, per component."""
        return Energy(cpu_j=self.cpu_energy_j(dt_us, busy_us, cpu_mhz),
                      ddr_j=self.ddr_energy_j(dt_us, ddr_mhz, ddr_bytes),
                      llcc_j=self.llcc_energy_j(dt_us, llcc_mhz, llcc_bytes))
