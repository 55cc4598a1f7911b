"""Closed-loop simulation: workloads, the performance/latency model, power, the executor.

Typical use::

    from memlat.sim import load_profile, load_suite, simulate_fixed
    prof = load_profile("x1e80100")
    res = simulate_fixed(load_suite()["mcf"], prof, ddr_mhz=547, llcc_mhz=300)
"""

from memlat.sim.fixed import DEFAULT_DT_US, RunResult, nearest_opp, simulate_fixed
from memlat.sim.model import MemoryModel, PhaseArrays, WindowLatency
from memlat.sim.power import Energy, PowerModel
from memlat.sim.profile import BUILTIN_PROFILES, SimProfile, load_profile
from memlat.sim.state import BusState, Executor, WindowWork
from memlat.sim.workload import Phase, Workload, load_suite, load_workloads, parse_workloads

__all__ = [
    "BUILTIN_PROFILES",
    "DEFAULT_DT_US",
    "BusState",
    "Energy",
    "Executor",
    "MemoryModel",
    "Phase",
    "PhaseArrays",
    "PowerModel",
    "RunResult",
    "SimProfile",
    "WindowLatency",
    "WindowWork",
    "Workload",
    "load_profile",
    "load_suite",
    "load_workloads",
    "nearest_opp",
    "parse_workloads",
    "simulate_fixed",
]
