"""The closed-loop driver: workload executor <-> policy, window by window (decisions.md §4).

Per window of the governor's sample period:

1. the policy decides the bus state from what it could observe about the previous
   window (its counters, the bytes each bus moved, the CPU frequencies requested now);
2. the executor (memlat.sim.state) runs the window at that bus state and returns the
   counter deltas and the work done;
3. the power model charges the window's energy to the CPUs, DDR and LLCC.

The run stops when the workload's fixed work is done; the last window is charged only up
to the exact completion time. `run_policy` returns a RunResult with the per-window
Timeline; `run_workload` runs several policies on one workload plus the oracle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from memlat.agent.offline import programmed_governor
from memlat.analysis.oracle import WindowSnap
from memlat.config.model import SocConfig
from memlat.config.profiles import load_profile as load_soc
from memlat.errors import ConfigError
from memlat.sim.policies import (
    BusVote,
    BwmonPolicy,
    Ladders,
    Observation,
    PerformancePolicy,
    Policy,
    PowersavePolicy,
    StaticMapPolicy,
)
from memlat.sim.power import PowerModel
from memlat.sim.profile import SimProfile
from memlat.sim.profile import load_profile as load_sim_profile
from memlat.sim.results import RunResult, Timeline, attach_slowdowns
from memlat.sim.state import BusState, Executor
from memlat.sim.tuning import Tunables, tune_soc
from memlat.sim.workload import Workload

POLICIES = ("memlat", "performance", "powersave", "static-map", "bwmon", "oracle")
ONLINE = tuple(p for p in POLICIES if p != "oracle")
DEFAULT_ORACLE_BUDGET = 0.05  # decision: 5 % slowdown (docs/simulation.md)
_MAX_WINDOWS = 2_000_000  # a runaway guard: a run this long means a stuck workload


@dataclass(slots=True)
class SimSetup:
    """Everything a run needs besides the workload and the policy.

    soc: the SoC profile the agent programs (tuned by `tunables`); profile: the
    simulator's latency/power profile; dt_us: the window, the governor's sample period.
    """

    soc: SocConfig
    profile: SimProfile
    ladders: Ladders
    seed: int = 0
    tunables: Tunables = field(default_factory=Tunables)
    memlat_backend: str = "cpucp"
    oracle_budget: float = DEFAULT_ORACLE_BUDGET

    @property
    def dt_us(self) -> int:
        """Window length: the governor's sampling period (algorithm.md §3.5: 4 ms on X1E)."""
        return int(self.soc.sample_ms) * 1000


def make_setup(soc_name: str = "x1e80100", *, seed: int = 0,
               tunables: Tunables | None = None, memlat_backend: str = "cpucp",
               oracle_budget: float = DEFAULT_ORACLE_BUDGET) -> SimSetup:
    """Load the SoC profile and its simulation profile, apply tunables."""
    tun = tunables or Tunables()
    soc = load_soc(soc_name)
    if tun != Tunables():
        soc = tune_soc(soc, tun)
    profile = load_sim_profile(soc.name)
    ladders = Ladders(
        ddr=tuple(float(f) for f in profile.ddr.ladder_mhz),
        llcc=tuple(float(f) for f in profile.llcc.ladder_mhz),
        ddr_bytes_per_mhz=profile.ddr.bytes_per_cycle * profile.ddr.channels,
        llcc_bytes_per_mhz=profile.llcc.bytes_per_cycle * profile.llcc.channels,
    )
    return SimSetup(soc, profile, ladders, seed, tun, memlat_backend, oracle_budget)


def make_policy(name: str, setup: SimSetup) -> Policy:
    """An online policy by name (`oracle` is not online: see run_workload)."""
    if name == "performance":
        return PerformancePolicy(setup.ladders)
    if name == "powersave":
        return PowersavePolicy(setup.ladders)
    if name == "static-map":
        return StaticMapPolicy(setup.ladders, programmed_governor(setup.soc))
    if name == "bwmon":
        return BwmonPolicy(setup.ladders)
    if name == "memlat":
        from memlat.sim.memlat_policy import MemlatPolicy

        return MemlatPolicy(setup.ladders, setup.soc, backend=setup.memlat_backend)  # type: ignore[arg-type]
    raise ConfigError(f"unknown policy {name!r} (have: {', '.join(POLICIES)})",
                      location="--policies")


def _requested_mhz(ex: Executor) -> np.ndarray:
    """The CPU MHz each CPU requests now: its phase's frequency, 0 when it has no phase."""
    req = np.zeros(ex.ncpus)
    for tr in ex.tracks:
        if len(tr.cpus_now):
            req[tr.cpus_now] = ex.ph.cpu_mhz[tr.cpus_now]
    return req


def _params(ex: Executor) -> tuple[np.ndarray, ...]:
    """Copies of the executor's per-CPU phase parameters (PhaseArrays field order)."""
    ph = ex.ph
    return (ph.cpi0.copy(), ph.mpki_llcc.copy(), ph.mpki_ddr.copy(), ph.mlp.copy(),
            ph.read_frac.copy(), ph.bytes_per_miss.copy(), ph.cpu_mhz.copy())


def _phase_label(ex: Executor) -> str:
    """Name of the running phase; tracks' names joined with '+' when several run."""
    names = [tr.current.phase.name for tr in ex.tracks if tr.current is not None]
    return "+".join(dict.fromkeys(names)) if names else ""


@dataclass(slots=True)
class _Log:
    t: list[float] = field(default_factory=list)
    dt: list[float] = field(default_factory=list)
    ddr: list[float] = field(default_factory=list)
    llcc: list[float] = field(default_factory=list)
    qos: list[int] = field(default_factory=list)
    phase: list[int] = field(default_factory=list)
    names: dict[str, int] = field(default_factory=dict)
    # per-window snapshot for the oracle's epoch costs (performance run only)
    snaps: list[WindowSnap] = field(default_factory=list)


def run_policy(workload: Workload, policy: Policy, setup: SimSetup, *,
               keep_snapshots: bool = False) -> RunResult:
    """Run `workload` to completion under `policy`; returns its RunResult."""
    ex = Executor(workload, setup.profile, seed=setup.seed)
    power = PowerModel(setup.profile)
    dt_us = setup.dt_us
    policy.reset()
    log = _Log()
    e_cpu = e_ddr = e_llcc = 0.0
    obs = Observation(index=0, now_us=0.0, cpu_req_mhz=_requested_mhz(ex))
    finish_us = 0.0
    for index in range(_MAX_WINDOWS):
        vote: BusVote = policy.decide(obs)
        label = _phase_label(ex)
        t0 = ex.t_us
        before = _params(ex) if keep_snapshots else None
        counters, work = ex.step(BusState(vote.ddr_mhz, vote.llcc_mhz), dt_us)
        span = dt_us if not work.done else max(0.0, float(work.finish_us or t0) - t0)
        if span > 0:
            energy = power.window(span, vote.ddr_mhz, vote.llcc_mhz, work.busy_us,
                                  work.cpu_mhz, work.ddr_bytes, work.llcc_bytes)
            e_cpu += energy.cpu_j
            e_ddr += energy.ddr_j
            e_llcc += energy.llcc_j
            log.t.append(t0 / 1e6)
            log.dt.append(span / 1e6)
            log.ddr.append(vote.ddr_mhz)
            log.llcc.append(vote.llcc_mhz)
            log.qos.append(vote.ddr_qos)
            log.phase.append(log.names.setdefault(label, len(log.names)))
            if before is not None:
                log.snaps.append(WindowSnap(before, label, _params(ex), _phase_label(ex),
                                            span, work.instructions.copy(),
                                            work.busy_us.copy(), work.noncpu_bytes))
        if work.done:
            finish_us = float(work.finish_us or ex.t_us)
            break
        obs = Observation(index=index + 1, now_us=ex.t_us, cpu_req_mhz=_requested_mhz(ex),
                          counters=counters, ddr_bytes=work.ddr_bytes,
                          llcc_bytes=work.llcc_bytes, prev_dt_us=float(dt_us))
    else:  # pragma: no cover - guard
        raise RuntimeError(f"workload {workload.name!r} did not finish")
    timeline = Timeline(np.asarray(log.t), np.asarray(log.dt), np.asarray(log.ddr),
                        np.asarray(log.llcc), np.asarray(log.qos, dtype=np.int64),
                        np.asarray(log.phase, dtype=np.int64), tuple(log.names))
    result = RunResult(workload.name, policy.name, setup.soc.name, finish_us / 1e6,
                       e_cpu, e_ddr, e_llcc, timeline.transitions(), len(timeline), timeline)
    if keep_snapshots:
        result.extra["_snapshots"] = log.snaps
    return result


def run_workload(workload: Workload, policies: Sequence[str], setup: SimSetup
                 ) -> tuple[list[RunResult], tuple[np.ndarray, np.ndarray] | None]:
    """Every requested policy on one workload (performance always runs: it is the
    baseline of slowdowns and the oracle's reference). Returns (results, oracle frontier)."""
    from memlat.analysis.oracle import oracle_for_run

    wanted = list(dict.fromkeys(policies))
    for name in wanted:
        if name not in POLICIES:
            raise ConfigError(f"unknown policy {name!r} (have: {', '.join(POLICIES)})",
                              location="--policies")
    perf = run_policy(workload, PerformancePolicy(setup.ladders), setup,
                      keep_snapshots="oracle" in wanted)
    snaps = perf.extra.pop("_snapshots", None)
    results: list[RunResult] = []
    frontier = None
    for name in wanted:
        if name == "performance":
            results.append(perf)
        elif name == "oracle":
            oracle_result, frontier = oracle_for_run(workload.name, snaps, perf, setup)
            results.append(oracle_result)
        else:
            policy = make_policy(name, setup)
            try:
                results.append(run_policy(workload, policy, setup))
            finally:
                policy.close()
    attach_slowdowns(results + ([perf] if "performance" not in wanted else []))
    return results, frontier
