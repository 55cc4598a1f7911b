"""The first-order closed-loop performance model (decisions.md §4, algorithm.md §4.4).

Latency (ns, f in MHz), model-params.md §1.3:

    L_llcc = L0 + K_llcc / f_llcc
    L_ddr  = L0 + K_llcc / f_llcc + D0 + K_ddr / f_ddr + W(rho)

Time per instruction (ns):

    T/I = CPI0 * 1000 / f_cpu + ((mpki_llcc - mpki_ddr) * L_llcc + mpki_ddr * L_ddr) / (1000 * MLP)

Reading of the decisions.md §4 formula: `mpki_llcc` counts every L2 miss that reaches the
LLCC (the workloads' "L2 MPKI", and what L2_D_RFILL counts); `mpki_ddr` are those that also
miss the LLCC. A DDR miss pays L_ddr, which already contains the LLCC path, so only the
LLCC *hits* (mpki_llcc - mpki_ddr) pay L_llcc. This is workloads.md §6's CPI formula and
reproduces the §8 sanity values (tests/sim/test_sim_model.py).

Queueing (M/M/1 style, algorithm.md §4.4): rho = demanded DDR bandwidth (CPU + non-CPU,
CPU part at the unloaded latency) / (eta * peak), capped at rho_max; W = S * rho / (1 - rho)
with S = 64 B / (bytes_per_cycle * f_ddr), one line's service time on one channel.
Saturation: if the CPU traffic at the loaded latency still exceeds the achievable
bandwidth (eta * peak minus the non-CPU traffic, which is served first), L_ddr is raised
until it fits (Little's law), so delivered bandwidth never exceeds eta * peak.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from memlat.governor.spec import (
    CNT_CYCLES,
    CPU_CYCLES,
    INST_RETIRED,
    L2_D_RFILL,
    N_COUNTERS,
    STALL_BACKEND_MEM,
    CounterWindow,
)
from memlat.sim.profile import SimProfile

LINE_BYTES = 64.0  # one queueing "request" is one cache line
_NEWTON_STEPS = 12
_MIN_CPU_SHARE = 0.05  # CPUs always keep >= 5 % of eta*peak, so latency stays finite


@dataclass(slots=True)
class PhaseArrays:
    """Per-CPU phase parameters, each an array of shape (ncpus,). Idle CPUs hold defaults."""

    cpi0: np.ndarray
    mpki_llcc: np.ndarray
    mpki_ddr: np.ndarray
    mlp: np.ndarray
    read_frac: np.ndarray
    bytes_per_miss: np.ndarray
    cpu_mhz: np.ndarray

    @classmethod
    def idle(cls, ncpus: int) -> PhaseArrays:
        """Arrays for `ncpus` CPUs with harmless defaults (no misses, 1000 MHz)."""
        return cls(cpi0=np.ones(ncpus), mpki_llcc=np.zeros(ncpus), mpki_ddr=np.zeros(ncpus),
                   mlp=np.ones(ncpus), read_frac=np.ones(ncpus),
                   bytes_per_miss=np.full(ncpus, LINE_BYTES), cpu_mhz=np.full(ncpus, 1000.0))

    @classmethod
    def uniform(cls, ncpus: int, **values: float) -> PhaseArrays:
        """Every CPU with the same parameters (keyword per field; others default)."""
        arr = cls.idle(ncpus)
        for k, v in values.items():
            getattr(arr, k)[:] = v
        return arr


@dataclass(frozen=True, slots=True)
class WindowLatency:
    """The latencies one window sees, and why."""

    l_llcc_ns: float
    l_ddr_ns: float
    unloaded_ddr_ns: float
    rho: float  # DDR utilisation fed to the queueing term (after the cap)
    saturated: bool  # the bandwidth cap raised L_ddr beyond the M/M/1 term


@dataclass(slots=True)
class PerInstruction:
    """Per-CPU costs of one instruction under a WindowLatency (arrays of shape (ncpus,))."""

    rate: np.ndarray  # instructions per microsecond while busy
    stall_cycles: np.ndarray  # memory (back-end) stall cycles per instruction
    refills: np.ndarray  # L2 refills (misses reaching LLCC) per instruction
    ddr_bytes: np.ndarray  # DDR bytes moved per instruction (reads / read_frac)
    llcc_bytes: np.ndarray  # LLCC bytes moved per instruction


class MemoryModel:
    """Latency and per-instruction cost for one SoC profile (decisions.md §4)."""

    def __init__(self, profile: SimProfile):
        self.profile = profile
        self.lat = profile.latency

    def llcc_latency_ns(self, llcc_mhz: float) -> float:
        """Unloaded LLCC-hit latency: L0 + K_llcc / f_llcc."""
        return self.lat.l0_ns + self.lat.k_llcc_ns_mhz / llcc_mhz

    def ddr_latency_ns(self, ddr_mhz: float, llcc_mhz: float) -> float:
        """Unloaded DDR-miss latency: L0 + K_llcc / f_llcc + D0 + K_ddr / f_ddr."""
        return self.llcc_latency_ns(llcc_mhz) + self.lat.d0_ns + self.lat.k_ddr_ns_mhz / ddr_mhz

    def queue_ns(self, bus: str, mhz: float, demand_bytes_per_us: float) -> tuple[float, float]:
        """M/M/1 waiting time (ns) and the capped utilisation rho on `bus` ("ddr"/"llcc")."""
        b = self.profile.ddr if bus == "ddr" else self.profile.llcc
        rho = demand_bytes_per_us / (self.lat.eta * b.peak_bytes_per_us(mhz))
        rho = min(max(rho, 0.0), self.lat.rho_max)
        service_ns = LINE_BYTES / (b.bytes_per_cycle * mhz) * 1000.0
        return service_ns * rho / (1.0 - rho), rho

    @staticmethod
    def _split(ph: PhaseArrays, l_llcc: float, jitter: np.ndarray | None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """a (ns/inst independent of L_ddr), b (DDR misses per inst / MLP), mpki_llcc, mpki_ddr."""
        ml, md = ph.mpki_llcc, ph.mpki_ddr
        if jitter is not None:
            ml, md = ml * jitter, md * jitter
        a = ph.cpi0 * 1000.0 / ph.cpu_mhz + (ml - md) * l_llcc / (1000.0 * ph.mlp)
        b = md / (1000.0 * ph.mlp)
        return a, b, ml, md

    def window_latency(self, ddr_mhz: float, llcc_mhz: float, ph: PhaseArrays,
                       busy_frac: np.ndarray, noncpu_bytes_per_us: float = 0.0,
                       jitter: np.ndarray | None = None) -> WindowLatency:
        """Latencies for a window in which CPU c is busy about busy_frac[c] of the time."""
        l_llcc = self.llcc_latency_ns(llcc_mhz)
        l_ddr0 = self.ddr_latency_ns(ddr_mhz, llcc_mhz)
        a, b, ml, md = self._split(ph, l_llcc, jitter)
        per_miss = ph.bytes_per_miss / ph.read_frac
        k_ddr = busy_frac * md * per_miss  # CPU c's DDR traffic in bytes/us = k / (a + b L)
        if self.lat.llcc_queueing:
            k_llcc = busy_frac * ml * per_miss
            w, _ = self.queue_ns("llcc", llcc_mhz, float(np.sum(k_llcc / (a + b * l_ddr0))))
            l_llcc += w
            l_ddr0 += w
            a, b, ml, md = self._split(ph, l_llcc, jitter)
        demand = float(np.sum(k_ddr / (a + b * l_ddr0))) + noncpu_bytes_per_us
        w, rho = self.queue_ns("ddr", ddr_mhz, demand)
        l_ddr = l_ddr0 + w
        peak = self.profile.ddr.peak_bytes_per_us(ddr_mhz) * self.lat.eta
        cap = max(peak - noncpu_bytes_per_us, _MIN_CPU_SHARE * peak)
        traffic = float(np.sum(k_ddr / (a + b * l_ddr)))
        saturated = traffic > cap * (1 + 1e-9)
        if saturated:
            # T(L) = sum k/(a+bL) is convex and decreasing: Newton from the left converges
            # monotonically to the latency at which the CPU traffic equals the cap.
            for _ in range(_NEWTON_STEPS):
                den = a + b * l_ddr
                t = float(np.sum(k_ddr / den))
                dt = -float(np.sum(k_ddr * b / (den * den)))
                if dt == 0.0:
                    break
                step = (t - cap) / -dt
                l_ddr += step
                if step < 1e-9 * l_ddr:
                    break
        return WindowLatency(l_llcc, l_ddr, l_ddr0, rho, saturated)

    def per_instruction(self, ph: PhaseArrays, lat: WindowLatency,
                        jitter: np.ndarray | None = None) -> PerInstruction:
        """Per-CPU instruction rate and per-instruction stalls, refills and bytes."""
        a, b, ml, md = self._split(ph, lat.l_llcc_ns, jitter)
        tpi_ns = a + b * lat.l_ddr_ns
        mem_ns = tpi_ns - ph.cpi0 * 1000.0 / ph.cpu_mhz
        per_miss = ph.bytes_per_miss / ph.read_frac / 1000.0
        return PerInstruction(rate=1000.0 / tpi_ns, stall_cycles=mem_ns * ph.cpu_mhz / 1000.0,
                              refills=ml / 1000.0, ddr_bytes=md * per_miss,
                              llcc_bytes=ml * per_miss)

    def ipc(self, ph: PhaseArrays, ddr_mhz: float, llcc_mhz: float) -> np.ndarray:
        """Unloaded IPC per CPU at the given bus frequencies (no queueing)."""
        lat = self.window_latency(ddr_mhz, llcc_mhz, ph, np.zeros_like(ph.cpi0))
        pi = self.per_instruction(ph, lat)
        return pi.rate / ph.cpu_mhz

    def step(self, ph: PhaseArrays, busy_us: np.ndarray, dt_us: int, ddr_mhz: float,
             llcc_mhz: float, noncpu_gbps: float = 0.0,
             const_mhz: np.ndarray | None = None) -> tuple[CounterWindow, np.ndarray]:
        """One window with CPU c busy for busy_us[c]: (counter deltas, instructions retired).

        A stateless building block: the run loop (memlat.sim.kernel) adds work tracking,
        phase changes and exact rounding; this rounds each delta to the nearest integer.
        const_mhz: the rate of the constant counter per CPU (default: the cluster maximum).
        """
        busy = np.clip(np.asarray(busy_us, dtype=float), 0.0, dt_us)
        lat = self.window_latency(ddr_mhz, llcc_mhz, ph, busy / dt_us, noncpu_gbps * 1000.0)
        pi = self.per_instruction(ph, lat)
        inst = busy * pi.rate
        if const_mhz is None:  # CPUs 0..n-1 of the profile
            const_mhz = (self.profile.cpu_max_mhz[:len(busy)]
                         if self.profile.const_counter_mhz is None
                         else np.full(len(busy), self.profile.const_counter_mhz))
        deltas = np.zeros((len(busy), N_COUNTERS), dtype=np.uint64)
        deltas[:, CPU_CYCLES] = np.rint(busy * ph.cpu_mhz)
        deltas[:, CNT_CYCLES] = np.rint(busy * const_mhz)
        deltas[:, INST_RETIRED] = np.rint(inst)
        deltas[:, STALL_BACKEND_MEM] = np.rint(inst * pi.stall_cycles)
        deltas[:, L2_D_RFILL] = np.rint(inst * pi.refills)
        return CounterWindow(np.full(len(busy), dt_us, dtype=np.int64), deltas), inst
