"""Run a workload to completion at fixed bus frequencies (the `performance` and
`powersave` policies, and the building block of the oracle)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from memlat.errors import MemlatError
from memlat.governor.spec import N_COUNTERS, CounterTrace
from memlat.sim.power import Energy, PowerModel
from memlat.sim.profile import SimProfile
from memlat.sim.state import BusState, Executor
from memlat.sim.workload import Workload

DEFAULT_DT_US = 4000  # the X1E/glymur firmware window (algorithm.md §3.5: sample_ms 4)


@dataclass(slots=True)
class RunResult:
    """Outcome of one closed-loop run."""

    workload: str
    time_s: float  # exact completion time
    windows: int
    energy: Energy
    instructions: float
    trace: CounterTrace | None
    ddr_bytes: float
    llcc_bytes: float

    @property
    def edp(self) -> float:
        """Energy-delay product in J*s (decisions.md §4)."""
        return self.energy.total_j * self.time_s

    def as_dict(self) -> dict[str, float | str]:
        """Flat JSON-friendly summary."""
        return {"workload": self.workload, "time_s": self.time_s, "windows": self.windows,
                "energy_cpu_j": self.energy.cpu_j, "energy_ddr_j": self.energy.ddr_j,
                "energy_llcc_j": self.energy.llcc_j, "energy_j": self.energy.total_j,
                "edp_js": self.edp, "instructions": self.instructions}


def nearest_opp(ladder: list[float], mhz: float) -> float:
    """The lowest ladder OPP >= mhz (the top OPP if mhz is above the ladder)."""
    for f in ladder:
        if f >= mhz - 1e-9:
            return f
    return ladder[-1]


def simulate_fixed(workload: Workload, profile: SimProfile, ddr_mhz: float | None = None,
                   llcc_mhz: float | None = None, *, dt_us: int = DEFAULT_DT_US,
                   seed: int = 0, keep_trace: bool = True,
                   max_windows: int = 2_000_000) -> RunResult:
    """Run `workload` to completion with both buses pinned (None = the top OPP).

    Energy is accounted until the last window in which work finished (that window is
    counted whole); time is the exact completion time.
    """
    ddr = profile.ddr.max_mhz if ddr_mhz is None else float(ddr_mhz)
    llcc = profile.llcc.max_mhz if llcc_mhz is None else float(llcc_mhz)
    ex = Executor(workload, profile, seed=seed)
    power = PowerModel(profile)
    bus = BusState(ddr, llcc)
    energy = Energy()
    dts: list[np.ndarray] = []
    deltas: list[np.ndarray] = []
    ddr_bytes = llcc_bytes = 0.0
    windows = 0
    while not ex.done:
        if windows >= max_windows:
            raise MemlatError(f"workload {workload.name!r} did not finish within "
                              f"{max_windows} windows")
        counters, work = ex.step(bus, dt_us)
        windows += 1
        energy.add(power.window(dt_us, ddr, llcc, work.busy_us, work.cpu_mhz,
                                work.ddr_bytes, work.llcc_bytes))
        ddr_bytes += work.ddr_bytes
        llcc_bytes += work.llcc_bytes
        if keep_trace:
            dts.append(counters.dt_us)
            deltas.append(counters.deltas)
    trace = None
    if keep_trace:
        trace = CounterTrace(np.stack(dts) if dts else np.zeros((0, ex.ncpus), np.int64),
                             np.stack(deltas) if deltas
                             else np.zeros((0, ex.ncpus, N_COUNTERS), np.uint64))
    assert ex.finish_us is not None
    return RunResult(workload.name, ex.finish_us / 1e6, windows, energy, ex.retired, trace,
                     ddr_bytes, llcc_bytes)
