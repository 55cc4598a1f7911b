"""Closed-loop simulation: workloads, the performance/latency and power models, policies,
one compiled run loop, batches.

Organised by role: `workload` and `profile` (inputs), `model` and `power` (the
equations, vectorised, for analysis), `policies` (what decides the buses), `kernel` (the
whole closed loop, numba-compiled), `run` (`simulate`), `batch` (`simulate_batch`,
workload selection), `tuning` (variants of a SoC profile). Comparing policies with the
oracle, sweeps and the tuner are analysis (memlat.analysis.compare, sweep, tune).

Typical use::

    from memlat.sim import Fixed, load_suite, simulate
    res = simulate("x1e80100", load_suite()["mcf"], Fixed(547, 300))
    res = simulate("x1e80100", load_suite()["mcf"], "memlat")
"""

from memlat.sim.model import MemoryModel, PhaseArrays, WindowLatency
from memlat.sim.policies import (
    ONLINE,
    POLICIES,
    Bwmon,
    Fixed,
    Ladders,
    Memlat,
    Performance,
    Policy,
    Powersave,
    StaticMap,
    make_policy,
)
from memlat.sim.power import Energy, PowerModel
from memlat.sim.profile import BUILTIN_PROFILES, SimProfile, load_profile
from memlat.sim.results import RunResult, Snapshots, Timeline
from memlat.sim.run import SimSetup, make_setup, simulate
from memlat.sim.workload import Phase, Workload, load_suite, load_workloads, parse_workloads

__all__ = [
    "BUILTIN_PROFILES",
    "ONLINE",
    "POLICIES",
    "Bwmon",
    "Energy",
    "Fixed",
    "Ladders",
    "Memlat",
    "MemoryModel",
    "Performance",
    "Phase",
    "PhaseArrays",
    "Policy",
    "PowerModel",
    "Powersave",
    "RunResult",
    "SimProfile",
    "SimSetup",
    "Snapshots",
    "StaticMap",
    "Timeline",
    "WindowLatency",
    "Workload",
    "load_profile",
    "load_suite",
    "load_workloads",
    "make_policy",
    "make_setup",
    "parse_workloads",
    "simulate",
]
