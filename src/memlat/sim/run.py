"""The simulator's entry point: `simulate` one (SoC, workload, policy) run.

`simulate` packs the workload, the SoC's simulation profile and the policy into arrays
(memlat.sim.kernel documents the layout) and runs the whole closed loop in one call of the
kernel: compiled with numba by default (`path="compiled"`), or the same source
interpreted (`path="python"`, slow; the executable reference). Both give identical
results. Output arrays are preallocated from the workload's nominal length and grown
(x2) when a run needs more; nothing is kept per window but the timeline (~25 B), and on
request the oracle's snapshots (~200 B on 12 CPUs) and the counter deltas.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

import numpy as np

from memlat.config.model import SocConfig
from memlat.config.profiles import load_profile as load_soc
from memlat.errors import ConfigError, MemlatError
from memlat.governor.spec import N_COUNTERS, CounterTrace
from memlat.sim import kernel as K
from memlat.sim.model import MemoryModel, PhaseArrays
from memlat.sim.policies import (
    Ladders,
    Policy,
    PolicyPack,
    make_policy,
)
from memlat.sim.profile import SimProfile, cross_check
from memlat.sim.profile import load_profile as load_sim_profile
from memlat.sim.results import RunResult, Snapshots, Timeline
from memlat.sim.tuning import Tunables, tune_soc
from memlat.sim.workload import Workload, parse_workloads

Path_ = Literal["compiled", "python"]
DEFAULT_ORACLE_BUDGET = 0.05  # decision: 5 % slowdown (docs/simulation.md)
MAX_WINDOWS = 2_000_000  # a runaway guard: a run this long means a stuck workload
_JIT_ROWS = 4096  # windows of jitter per chunk (400 KB on 12 CPUs)


@dataclass(slots=True)
class SimSetup:
    """Everything a run needs besides the workload and the policy.

    soc: the SoC profile the agent programs (tuned by `tunables`); profile: the
    simulator's latency/power profile; the window is the governor's sample period.
    """

    soc: SocConfig
    profile: SimProfile
    ladders: Ladders
    seed: int = 0
    tunables: Tunables = field(default_factory=Tunables)
    oracle_budget: float = DEFAULT_ORACLE_BUDGET
    _arrays: tuple[np.ndarray, ...] | None = None

    @property
    def dt_us(self) -> int:
        """Window length: the governor's sampling period (algorithm.md §3.5: 4 ms on X1E)."""
        return int(self.soc.sample_ms) * 1000

    def profile_arrays(self) -> tuple[np.ndarray, ...]:
        """(const_mhz, idle_mw, cluster_of, static_mw, ddr ladder, ddr mW, llcc ladder,
        llcc mW) of the profile, built once."""
        if self._arrays is None:
            p = self.profile
            const = (p.cpu_max_mhz.copy() if p.const_counter_mhz is None
                     else np.full(p.ncpus, float(p.const_counter_mhz)))
            idle = np.array([p.clusters[k].power.idle_core_mw for k in p.cluster_of])
            static = np.array([cl.power.cluster_static_mw for cl in p.clusters])
            ddr = np.array(p.ddr.ladder_mhz, float)
            llcc = np.array(p.llcc.ladder_mhz, float)
            self._arrays = (const, idle, p.cluster_of.astype(np.int64), static, ddr,
                            np.array([p.ddr.power_mw(f) for f in ddr]), llcc,
                            np.array([p.llcc.power_mw(f) for f in llcc]))
        return self._arrays


@lru_cache(maxsize=8)
def load_pair(soc_name: str) -> tuple[SocConfig, SimProfile]:
    """The SoC profile `soc_name` (name, alias or YAML path) and the simulation profile of
    the same SoC, loaded once per process and cross-checked (memlat.sim.profile.cross_check):
    a pair that disagrees on CPUs, clusters, CPU maxima or bus ladders raises ConfigError
    naming both files and fields, before any work starts. Treat the result as read-only.
    """
    soc = load_soc(soc_name)
    soc_file = soc_name if soc_name.endswith((".yaml", ".yml")) or "/" in soc_name else (
        f"profiles/{soc.name}.yaml")
    profile = load_sim_profile(soc.name)
    cross_check(soc, soc_file, profile)
    return soc, profile


def make_setup(soc: str | SocConfig = "x1e80100", *, seed: int = 0,
               tunables: Tunables | None = None,
               oracle_budget: float = DEFAULT_ORACLE_BUDGET) -> SimSetup:
    """Load the SoC profile (by name, or take a SocConfig) and its simulation profile;
    apply tunables."""
    tun = tunables or Tunables()
    if isinstance(soc, str):
        cfg, profile = load_pair(soc)
    else:
        cfg, profile = soc, load_sim_profile(soc.name)
        cross_check(cfg, f"SoC configuration {cfg.name}", profile)
    if tun != Tunables():
        cfg = tune_soc(cfg, tun)
    ladders = Ladders(
        ddr=tuple(float(f) for f in profile.ddr.ladder_mhz),
        llcc=tuple(float(f) for f in profile.llcc.ladder_mhz),
        ddr_bytes_per_mhz=profile.ddr.bytes_per_cycle * profile.ddr.channels,
        llcc_bytes_per_mhz=profile.llcc.bytes_per_cycle * profile.llcc.channels,
    )
    return SimSetup(cfg, profile, ladders, seed, tun, oracle_budget)


# --- packing a workload ----------------------------------------------------------------

@dataclass(slots=True)
class _WorkloadPack:
    run_i: np.ndarray
    run_f: np.ndarray
    run_cpu: np.ndarray
    run_cf: np.ndarray
    frame_work: np.ndarray
    track_runs: np.ndarray
    names: list[str]  # phase name per run
    nominal_us: float
    jitter: bool


_RATES: dict[tuple[Any, ...], tuple[SimProfile, float, float]] = {}


def _phase_rates(model: MemoryModel, profile: SimProfile, p: Any, cpus: np.ndarray,
                 mhz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per CPU of a phase: its unloaded instruction rate at the top bus OPPs (inst/us)
    and its busy core power (mW), memoised per (profile, phase parameters, cluster, MHz):
    a workload's phases repeat, and a tuner packs the same workloads again and again."""
    rate = np.zeros(len(cpus))
    core = np.zeros(len(cpus))
    params = (p.cpi0, p.mpki_llcc, p.mpki_ddr, p.mlp, p.read_frac, p.bytes_per_miss)
    for j, (c, m) in enumerate(zip(cpus, mhz, strict=True)):
        cl = int(profile.cluster_of[c])
        key = (id(profile), cl, float(m), params)
        hit = _RATES.get(key)
        if hit is None or hit[0] is not profile:
            ph = PhaseArrays.uniform(1, cpi0=p.cpi0, mpki_llcc=p.mpki_llcc,
                                     mpki_ddr=p.mpki_ddr, mlp=p.mlp, read_frac=p.read_frac,
                                     bytes_per_miss=p.bytes_per_miss, cpu_mhz=float(m))
            lat = model.window_latency(profile.ddr.max_mhz, profile.llcc.max_mhz, ph,
                                       np.zeros(1))
            hit = (profile, float(model.per_instruction(ph, lat).rate[0]),
                   float(profile.clusters[cl].power.core_mw(np.array([m]))[0]))
            if len(_RATES) > 4096:
                _RATES.clear()
            _RATES[key] = hit
        rate[j], core[j] = hit[1], hit[2]
    return rate, core


def _pack_workload(workload: Workload, profile: SimProfile, seed: int) -> _WorkloadPack:
    """Phase runs (repeats expanded) on absolute CPUs with their work fixed before the
    run: budgets from the top bus OPPs, frame work with its seeded jitter (docs/model.md)."""
    n = profile.ncpus
    placed = workload.placed_tracks(profile)
    bad = sorted({place[c] for phases, place in placed for p in phases for c in p.cpus
                  if place[c] >= n})
    if bad:
        raise ConfigError(f"workload {workload.name!r} uses CPUs {bad} but {profile.soc} "
                          f"has {n} CPUs", location=f"workloads.{workload.name}")
    model = MemoryModel(profile)
    frame_rng = np.random.default_rng([seed, 1])
    run_i: list[list[int]] = []
    run_f: list[list[float]] = []
    cpus_flat: list[int] = []
    cf: list[list[float]] = [[], [], []]
    frames_flat: list[np.ndarray] = []
    frame_len = 0
    track_runs: list[tuple[int, int]] = []
    names: list[str] = []
    nominal = 0.0
    for tr, (phases, place) in enumerate(placed):
        first = len(run_i)
        track_us = 0.0
        for p in phases:
            cpus = np.array([place[c] for c in p.cpus], dtype=np.int64)
            mhz = np.minimum(p.cpu_mhz, profile.cpu_max_mhz[cpus])
            rate, core = _phase_rates(model, profile, p, cpus, mhz)
            util = np.array(p.per_cpu(p.util))
            noncpu = p.noncpu_gbps * 1000.0
            for _ in range(p.repeat):
                frames = period = 0.0
                frame_off = frame_len
                if p.pattern is not None:
                    assert p.duration_s is not None
                    period = p.pattern.period_ms * 1000.0
                    nfr = max(1, round(p.duration_s * 1e6 / period))
                    busy = np.array(p.per_cpu(p.pattern.busy_ms)) * 1000.0
                    jit = 1.0 + p.jitter * frame_rng.uniform(-1.0, 1.0, (nfr, len(cpus)))
                    fw = busy * rate * jit
                    frames_flat.append(fw.ravel())
                    frame_len += fw.size
                    kind, work, span, frames = K.KIND_FRAMES, np.zeros(len(cpus)), nfr * period, nfr
                elif np.all(util >= 1.0):
                    if p.instructions is not None:
                        work = np.full(len(cpus), p.instructions)
                    else:
                        assert p.duration_s is not None  # a phase has one or the other
                        work = p.duration_s * 1e6 * rate
                    kind, span = K.KIND_THROUGHPUT, 0.0
                else:
                    r = util * rate
                    span = (p.duration_s * 1e6 if p.duration_s is not None
                            else float(np.max(p.instructions / r)))
                    if p.instructions is not None:
                        r = np.full(len(cpus), p.instructions / span)
                    kind, work = K.KIND_STEADY, r
                track_us += span if kind != K.KIND_THROUGHPUT else float(np.max(work / rate))
                run_i.append([tr, kind, len(cpus_flat), len(cpus), int(frames), frame_off])
                run_f.append([span, period, noncpu, p.cpi0, p.mpki_llcc, p.mpki_ddr, p.mlp,
                              p.read_frac, p.bytes_per_miss, p.jitter])
                cpus_flat.extend(int(c) for c in cpus)
                cf[K.RC_WORK].extend(float(x) for x in work)
                cf[K.RC_MHZ].extend(float(x) for x in mhz)
                cf[K.RC_CORE_MW].extend(float(x) for x in core)
                names.append(p.name)
        track_runs.append((first, len(run_i) - first))
        nominal = max(nominal, track_us)
    return _WorkloadPack(
        np.array(run_i, np.int64).reshape(-1, K.N_RUN_I),
        np.array(run_f, np.float64).reshape(-1, K.N_RUN_F),
        np.array(cpus_flat, np.int64), np.array(cf, np.float64).reshape(K.N_RUN_CF, -1),
        np.concatenate(frames_flat) if frames_flat else np.zeros(0),
        np.array(track_runs, np.int64).reshape(-1, 2), names, nominal,
        any(row[K.R_JIT] > 0 for row in run_f))


_PACKS: dict[tuple[int, int, int], tuple[Workload, _WorkloadPack]] = {}
_PACKS_MAX = 64


def _packed(workload: Workload, profile: SimProfile, seed: int) -> _WorkloadPack:
    """_pack_workload, memoised per (workload object, profile object, seed): a batch or
    a tuner runs the same workloads again and again. The packed arrays are read-only."""
    key = (id(workload), id(profile), seed)
    hit = _PACKS.get(key)
    if hit is not None and hit[0] is workload:
        return hit[1]
    wp = _pack_workload(workload, profile, seed)
    if len(_PACKS) >= _PACKS_MAX:
        _PACKS.pop(next(iter(_PACKS)))
    _PACKS[key] = (workload, wp)
    return wp


_POLICY_PACKS: dict[tuple[int, int, int], tuple[Policy, Ladders, PolicyPack]] = {}


def _policy_pack(policy: Policy, ladders: Ladders, ncpus: int) -> PolicyPack:
    """policy.pack, memoised per (policy object, ladders, ncpus): a programmed memlat
    policy reused across runs is packed once. The packed arrays are read-only."""
    key = (id(policy), id(ladders), ncpus)
    hit = _POLICY_PACKS.get(key)
    if hit is not None and hit[0] is policy and hit[1] is ladders:
        return hit[2]
    pp = policy.pack(ladders, ncpus)
    if len(_POLICY_PACKS) >= _PACKS_MAX:
        _POLICY_PACKS.pop(next(iter(_POLICY_PACKS)))
    _POLICY_PACKS[key] = (policy, ladders, pp)
    return pp


def workload_instructions(workload: Workload, setup: SimSetup, seed: int = 0) -> float:
    """Instructions the workload retires in total on `setup`'s SoC (fixed before the run:
    budgets from the top bus OPPs, frame work with its seeded jitter)."""
    wp = _packed(workload, setup.profile, seed)
    total = 0.0
    for r in range(wp.run_i.shape[0]):
        off, nc = int(wp.run_i[r, K.R_CPU_OFF]), int(wp.run_i[r, K.R_NCPU])
        kind = wp.run_i[r, K.R_KIND]
        work = wp.run_cf[K.RC_WORK, off:off + nc]
        if kind == K.KIND_THROUGHPUT:
            total += float(work.sum())
        elif kind == K.KIND_STEADY:
            total += float(work.sum() * wp.run_f[r, K.R_SPAN])
        else:
            fo, nf = int(wp.run_i[r, K.R_FRAME_OFF]), int(wp.run_i[r, K.R_FRAMES])
            total += float(wp.frame_work[fo:fo + nf * nc].sum())
    return total


def _grow(a: np.ndarray, rows: int) -> np.ndarray:
    out = np.zeros((rows, *a.shape[1:]), a.dtype)
    out[:a.shape[0]] = a
    return out


def _labels(ver_runs: np.ndarray, names: list[str]) -> list[str]:
    """Per phase version: the running phases' names joined with '+' ('' when none)."""
    out = []
    for row in ver_runs:
        out.append("+".join(dict.fromkeys(names[r] for r in row if r >= 0)))
    return out


def simulate(soc: str | SocConfig | SimSetup, workload: Workload, policy: Policy | str, *,
             seed: int | None = None, path: Path_ = "compiled", snapshots: bool = False,
             counters: bool = False, timeline: bool = True, dt_us: int | None = None,
             max_windows: int = MAX_WINDOWS) -> RunResult:
    """Run `workload` to completion under `policy` on `soc`; one RunResult.

    soc: a SoC name, a SocConfig (e.g. a tuned one) or a prepared SimSetup; policy: a
    Policy (memlat.sim.policies) or a name (memlat is then programmed over SCMI here).
    seed: the workload jitter's seed (default: the setup's, 0). snapshots / counters:
    keep the oracle's per-window inputs / the counter deltas. dt_us overrides the window
    (default: the SoC's sample period). Raises ConfigError for a workload that does not
    fit the SoC, MemlatError when the run exceeds max_windows.
    """
    setup = soc if isinstance(soc, SimSetup) else make_setup(soc)
    seed = setup.seed if seed is None else seed
    pol = make_policy(policy, setup.soc) if isinstance(policy, str) else policy
    prof = setup.profile
    n = prof.ncpus
    dt = float(setup.dt_us if dt_us is None else dt_us)
    wp = _packed(workload, prof, seed)
    pp = _policy_pack(pol, setup.ladders, n)
    const, idle, cluster_of, static, ddr_l, ddr_mw, llcc_l, llcc_mw = setup.profile_arrays()
    lat, d, ll = prof.latency, prof.ddr, prof.llcc
    prof_f = np.array([lat.l0_ns, lat.k_llcc_ns_mhz, lat.d0_ns, lat.k_ddr_ns_mhz, lat.eta,
                       lat.rho_max, float(lat.llcc_queueing), d.bytes_per_cycle,
                       float(d.channels), ll.bytes_per_cycle, float(ll.channels),
                       d.pj_per_byte, ll.pj_per_byte, dt], np.float64)
    n_tr = wp.track_runs.shape[0]
    n_ver = wp.run_i.shape[0] + n_tr + 1
    cpu_f = np.zeros((K.N_CPU_F, n))
    cpu_f[K.C_CPI0] = 1.0
    cpu_f[K.C_MLP] = 1.0
    cpu_f[K.C_READ] = 1.0
    cpu_f[K.C_BPM] = 64.0
    cpu_f[K.C_MHZ] = 1000.0
    cpu_f[K.C_SPAN_END] = -np.inf
    cpu_f[K.C_NEXT_ARR] = np.inf
    cpu_i = np.zeros((K.N_CPU_I, n), np.int64)
    cpu_i[K.CI_FRAME_RUN] = -1
    st_f = np.zeros(K.N_ST_F)
    st_f[K.S_FINISH] = -1.0
    st_i = np.zeros(K.N_ST_I, np.int64)
    st_i[K.I_KEY_DDR:K.I_KEY_VER + 1] = -1
    tr_i = np.full(n_tr, -1, np.int64)
    tr_f = np.zeros((n_tr, 2))
    tr_f[:, K.TF_FINISH] = -1.0
    ver_runs = np.full((n_ver, n_tr), -1, np.int64)
    ver_params = np.zeros((n_ver, K.N_PARAMS, n))
    cum = np.zeros((n, 5))
    emitted = np.zeros((n, 5))
    deltas = np.zeros((n, N_COUNTERS), np.uint64)
    cap = max(64, int(wp.nominal_us / dt * 1.25) + 16)
    # per-window jitter, drawn up front from one seeded stream in chunks of _JIT_ROWS
    # windows (the next chunk continues the stream, so the values do not depend on it)
    jit_rng = np.random.default_rng([seed, 2])
    jit_u = jit_rng.uniform(-1.0, 1.0, (_JIT_ROWS, n)) if wp.jitter else np.zeros((0, n))
    # timeline: start s, length s, DDR / LLCC ladder index, QoS level, phase version
    tl: list[np.ndarray] = [np.zeros(cap), np.zeros(cap), np.zeros(cap, np.int16),
                            np.zeros(cap, np.int16), np.zeros(cap, np.int8),
                            np.zeros(cap, np.int32)]
    scap = cap if snapshots else 0
    # snapshots: version at the window end, instructions and busy us per CPU, non-CPU B
    sn: list[np.ndarray] = [np.zeros(scap, np.int32), np.zeros((scap, n)),
                            np.zeros((scap, n)), np.zeros(scap)]
    ctr = np.zeros((cap if counters else 0, n, N_COUNTERS), np.uint64)
    gov = pp.gov
    ipm = np.zeros((n, max(int(gov[0][K.G_NGROUPS]), 1)), np.uint64)
    fn: Any = K.run_loop_compiled() if path == "compiled" else K.run_loop
    if path not in ("compiled", "python"):
        raise ValueError(f"path must be compiled or python, got {path!r}")
    while True:
        with np.errstate(all="ignore"):
            status, err = fn(prof_f, const, idle, cluster_of, static, ddr_l, ddr_mw, llcc_l,
                             llcc_mw, wp.run_i, wp.run_f, wp.run_cpu, wp.run_cf, wp.frame_work,
                             wp.track_runs, tr_i, tr_f, cpu_f, cpu_i, st_f, st_i, cum, emitted,
                             deltas, ver_runs, ver_params, jit_u, pp.pol_i, pp.pol_f, *pp.sm,
                             pp.sm_ncfg, *gov, ipm, *tl, snapshots, *sn, counters, ctr,
                             max_windows)
        if status == K.DONE:
            break
        if err:
            raise MemlatError(f"workload {workload.name!r} did not finish within "
                              f"{max_windows} windows")
        rows = int(st_i[K.I_ROWS])
        if rows >= tl[0].shape[0]:
            cap = 2 * tl[0].shape[0]
            tl = [_grow(a, cap) for a in tl]
            if snapshots:
                sn = [_grow(a, cap) for a in sn]
            if counters:
                ctr = _grow(ctr, cap)
        if wp.jitter and st_i[K.I_W] - st_i[K.I_JIT_BASE] >= jit_u.shape[0]:
            st_i[K.I_JIT_BASE] += jit_u.shape[0]
            jit_u = jit_rng.uniform(-1.0, 1.0, (_JIT_ROWS, n))
    rows = int(st_i[K.I_ROWS])
    vers = tl[5][:rows]
    first_seen = np.unique(vers, return_index=True)
    seen = first_seen[0][np.argsort(first_seen[1])]
    labels = _labels(ver_runs if snapshots else ver_runs[seen], wp.names)
    lut = np.full(n_ver, -1, np.int64)
    names: dict[str, int] = {}
    for i, v in enumerate(seen):
        lut[v] = names.setdefault(labels[v] if snapshots else labels[i], len(names))
    tline = Timeline(tl[0][:rows].copy(), tl[1][:rows].copy(), ddr_l[tl[2][:rows]],
                     llcc_l[tl[3][:rows]], tl[4][:rows].astype(np.int64), lut[vers],
                     tuple(names))
    result = RunResult(workload.name, pol.name, setup.soc.name,
                       float(st_f[K.S_FINISH]) / 1e6, float(st_f[K.S_E_CPU]),
                       float(st_f[K.S_E_DDR]), float(st_f[K.S_E_LLCC]), tline.transitions(),
                       rows, tline if timeline else None,
                       instructions=float(st_f[K.S_RETIRED]),
                       ddr_bytes=float(st_f[K.S_TOT_DDR_B]),
                       llcc_bytes=float(st_f[K.S_TOT_LLCC_B]))
    if counters:
        result.counters = CounterTrace(np.full((rows, n), int(dt), np.int64), ctr[:rows])
    if snapshots:
        result.snapshots = Snapshots(vers.copy(), sn[0][:rows].copy(), ver_params,
                                     tuple(labels), tl[1][:rows] * 1e6, sn[1][:rows],
                                     sn[2][:rows], sn[3][:rows])
    return result


def warm() -> None:
    """Compile (or load from the disk cache) the kernel now, on a tiny run."""
    wl = parse_workloads({"workloads": [{"name": "warm", "phases": [
        {"name": "warm", "duration_s": 0.008, "cpu_mhz": 1000, "cpi0": 1.0,
         "mpki_llcc": 1.0, "mpki_ddr": 0.5}]}]}, "warm-up")["warm"]
    simulate("x1e80100", wl, "performance")


__all__: list[Any] = ["SimSetup", "make_setup", "simulate", "warm"]
