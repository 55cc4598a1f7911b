"""Workload executor: runs a workload's fixed amount of work window by window.

Each CPU has a backlog of instructions. Work arrives per phase kind (docs/model.md):

* throughput (util 1, no pattern): the whole budget arrives at the phase start;
* steady (util < 1, no pattern): a constant rate util * IPS_top over the phase span;
* frames (pattern): one frame's work at the start of every period.

A busy CPU retires its backlog at the model's rate for the window's bus state, so a
faster bus finishes throughput phases sooner and shortens frame busy time. A phase ends
when its span has passed and all its CPUs have drained their backlog (a barrier across the
phase's CPUs); the next phase of the track starts at that exact time, even mid-window.
Work budgets come from the top bus OPPs and are fixed before the run (jitter included),
so the instructions retired do not depend on the bus.

Driver loop::

    ex = Executor(workload, profile, seed=0)
    while not ex.done:
        counters, work = ex.step(BusState(ddr_mhz, llcc_mhz), dt_us)
        ...  # feed counters to the governor, account energy from `work`
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from memlat.errors import ConfigError
from memlat.governor.spec import (
    CNT_CYCLES,
    CPU_CYCLES,
    INST_RETIRED,
    L2_D_RFILL,
    N_COUNTERS,
    STALL_BACKEND_MEM,
    CounterWindow,
)
from memlat.sim.model import MemoryModel, PerInstruction, PhaseArrays, WindowLatency
from memlat.sim.profile import SimProfile
from memlat.sim.workload import Phase, Workload

_INF = float("inf")
_EPS_US = 1e-6
_EPS_INST = 1e-6
_MAX_SUBSTEPS = 256
_KIND_THROUGHPUT, _KIND_STEADY, _KIND_FRAMES = 0, 1, 2
_PARAMS = ("cpi0", "mpki_llcc", "mpki_ddr", "mlp", "read_frac", "bytes_per_miss")


@dataclass(frozen=True, slots=True)
class BusState:
    """Bus frequencies for a window; cpu_mhz optionally overrides the phases' CPU requests."""

    ddr_mhz: float
    llcc_mhz: float
    cpu_mhz: np.ndarray | None = None


@dataclass(slots=True)
class WindowWork:
    """What happened in one window (per-CPU arrays of shape (ncpus,))."""

    dt_us: int
    instructions: np.ndarray
    busy_us: np.ndarray
    cpu_mhz: np.ndarray
    ddr_bytes: float  # CPU + non-CPU bytes moved on DDR
    llcc_bytes: float
    noncpu_bytes: float
    latency: WindowLatency | None
    done: bool
    finish_us: float | None  # exact completion time when the workload finished


@dataclass(slots=True)
class _PhaseRun:
    """One compiled instance of a phase (repeats expanded) on absolute CPUs."""

    phase: Phase
    cpus: np.ndarray
    kind: int
    work: np.ndarray  # throughput: budget per CPU; steady: rate (inst/us) per CPU
    span_us: float  # steady/frames: arrival span; throughput: 0
    frame_work: np.ndarray | None = None  # (frames, cpus)
    period_us: float = 0.0
    noncpu_bytes_per_us: float = 0.0

    @property
    def total_instructions(self) -> float:
        """Instructions this phase instance retires in total."""
        if self.kind == _KIND_THROUGHPUT:
            return float(self.work.sum())
        if self.kind == _KIND_STEADY:
            return float(self.work.sum() * self.span_us)
        assert self.frame_work is not None
        return float(self.frame_work.sum())


@dataclass(slots=True)
class _Track:
    runs: list[_PhaseRun]
    index: int = -1
    start_us: float = 0.0
    finish_us: float | None = None
    cpus_now: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def current(self) -> _PhaseRun | None:
        return self.runs[self.index] if 0 <= self.index < len(self.runs) else None


class Executor:
    """Tracks each CPU's progress through a workload; one `step` per governor window."""

    def __init__(self, workload: Workload, profile: SimProfile, seed: int = 0):
        self.workload = workload
        self.profile = profile
        self.model = MemoryModel(profile)
        n = profile.ncpus
        self.ncpus = n
        bad = [c for c in workload.abs_cpus() if c >= n]
        if bad:
            raise ConfigError(f"workload {workload.name!r} uses CPUs {bad} but {profile.soc} "
                              f"has {n} CPUs", location=f"workloads.{workload.name}")
        self._jit_rng = np.random.default_rng([seed, 2])
        frame_rng = np.random.default_rng([seed, 1])
        self.tracks = [_Track(self._compile(phases, place, frame_rng))
                       for phases, place in workload.placed_tracks()]
        self.total_instructions = sum(r.total_instructions for t in self.tracks for r in t.runs)
        self.const_mhz = (profile.cpu_max_mhz.copy() if profile.const_counter_mhz is None
                          else np.full(n, profile.const_counter_mhz))
        # Per-CPU state.
        self.ph = PhaseArrays.idle(n)
        self.jitter_amp = np.zeros(n)
        self.backlog = np.zeros(n)
        self.rate_in = np.zeros(n)  # steady arrival rate (inst/us)
        self.span_end = np.full(n, -_INF)
        self.next_arr = np.full(n, _INF)
        self.last_end = np.zeros(n)
        self._frame_src: list[tuple[_PhaseRun, int, int] | None] = [None] * n
        self._noncpu = 0.0
        self._version = 0  # bumped on every phase change (invalidates memoised costs)
        self._frames_live = 0  # number of tracks currently in a frames phase
        self._active = np.zeros(n, dtype=bool)
        self._active_version = -1
        self._key0: tuple | None = None
        self._key: tuple | None = None
        self._rate0 = np.ones(n)
        self._lat: WindowLatency | None = None
        self._pi: PerInstruction | None = None
        self.t_us = 0.0
        self.retired = 0.0
        self.finish_us: float | None = None
        self._cum = np.zeros((n, N_COUNTERS))
        self._emitted = np.zeros((n, N_COUNTERS))
        for tr in self.tracks:
            self._advance(tr, 0.0)

    # -- compilation ---------------------------------------------------------------
    def _top_rate(self, p: Phase, cpus: np.ndarray) -> np.ndarray:
        """Instructions per us of phase p on `cpus` at the top bus OPPs, unloaded."""
        ph = self._arrays_for(p, cpus)
        lat = self.model.window_latency(self.profile.ddr.max_mhz, self.profile.llcc.max_mhz,
                                        ph, np.zeros(len(cpus)))
        return self.model.per_instruction(ph, lat).rate

    def _arrays_for(self, p: Phase, cpus: np.ndarray) -> PhaseArrays:
        ph = PhaseArrays.idle(len(cpus))
        for k in _PARAMS:
            getattr(ph, k)[:] = getattr(p, k)
        ph.cpu_mhz[:] = np.minimum(p.cpu_mhz, self.profile.cpu_max_mhz[cpus])
        return ph

    def _compile(self, phases: list[Phase], place: list[int],
                 rng: np.random.Generator) -> list[_PhaseRun]:
        runs: list[_PhaseRun] = []
        for p in phases:
            cpus = np.array([place[c] for c in p.cpus], dtype=np.int64)
            rate = self._top_rate(p, cpus)
            util = np.array(p.per_cpu(p.util))
            noncpu = p.noncpu_gbps * 1000.0
            for _ in range(p.repeat):
                if p.pattern is not None:
                    assert p.duration_s is not None
                    period = p.pattern.period_ms * 1000.0
                    frames = max(1, round(p.duration_s * 1e6 / period))
                    busy = np.array(p.per_cpu(p.pattern.busy_ms)) * 1000.0
                    jit = 1.0 + p.jitter * rng.uniform(-1.0, 1.0, (frames, len(cpus)))
                    runs.append(_PhaseRun(p, cpus, _KIND_FRAMES, rate, frames * period,
                                          frame_work=busy * rate * jit, period_us=period,
                                          noncpu_bytes_per_us=noncpu))
                elif np.all(util >= 1.0):
                    if p.instructions is not None:
                        work = np.full(len(cpus), p.instructions)
                    else:
                        assert p.duration_s is not None  # a phase has one or the other
                        work = p.duration_s * 1e6 * rate
                    runs.append(_PhaseRun(p, cpus, _KIND_THROUGHPUT, work, 0.0,
                                          noncpu_bytes_per_us=noncpu))
                else:
                    r = util * rate
                    span = (p.duration_s * 1e6 if p.duration_s is not None
                            else float(np.max(p.instructions / r)))
                    if p.instructions is not None:
                        r = np.full(len(cpus), p.instructions / span)
                    runs.append(_PhaseRun(p, cpus, _KIND_STEADY, r, span,
                                          noncpu_bytes_per_us=noncpu))
        return runs

    # -- phase changes ---------------------------------------------------------------
    def _advance(self, tr: _Track, t: float) -> None:
        """Finish the track's current phase at time t and load the next one (if any)."""
        old = tr.cpus_now
        self._version += 1
        if tr.current is not None and tr.current.kind == _KIND_FRAMES:
            self._frames_live -= 1
        if len(old):
            self.ph.mpki_llcc[old] = 0.0
            self.ph.mpki_ddr[old] = 0.0
            self.rate_in[old] = 0.0
            self.backlog[old] = 0.0
            self.next_arr[old] = _INF
            self.span_end[old] = -_INF
            self.jitter_amp[old] = 0.0
            for c in old:
                self._frame_src[c] = None
            self._noncpu -= tr.current.noncpu_bytes_per_us if tr.current else 0.0
        tr.index += 1
        run = tr.current
        if run is None:
            tr.finish_us = t
            tr.cpus_now = np.zeros(0, dtype=np.int64)
            if all(x.finish_us is not None for x in self.tracks):
                self.finish_us = max(x.finish_us for x in self.tracks if x.finish_us is not None)
            return
        c = run.cpus
        tr.cpus_now = c
        tr.start_us = t
        arr = self._arrays_for(run.phase, c)
        for k in (*_PARAMS, "cpu_mhz"):
            getattr(self.ph, k)[c] = getattr(arr, k)
        self.jitter_amp[c] = run.phase.jitter
        self.last_end[c] = t
        self._noncpu += run.noncpu_bytes_per_us
        if run.kind == _KIND_THROUGHPUT:
            self.backlog[c] = run.work
            self.span_end[c] = t
        elif run.kind == _KIND_STEADY:
            self.rate_in[c] = run.work
            self.span_end[c] = t + run.span_us
        else:
            self._frames_live += 1
            self.span_end[c] = t + run.span_us
            self.next_arr[c] = t
            for j, cpu in enumerate(c):
                self._frame_src[cpu] = (run, j, 0)

    def _arrive(self, cpu: int, e: float) -> None:
        """Deliver the next frame's work to `cpu` at time e (its arrival time)."""
        src = self._frame_src[cpu]
        assert src is not None
        run, j, k = src
        frame_work = run.frame_work
        assert frame_work is not None  # only frame runs are frame sources
        self.backlog[cpu] += frame_work[k, j]
        if k + 1 < frame_work.shape[0]:
            self._frame_src[cpu] = (run, j, k + 1)
            self.next_arr[cpu] = self.span_end[cpu] - run.span_us + (k + 1) * run.period_us
        else:
            self.next_arr[cpu] = _INF

    def _phase_over(self, tr: _Track, now: float, pending: np.ndarray | None = None
                    ) -> float | None:
        """Completion time of the track's phase if it is over by `now`, else None.

        pending: optional per-CPU flags "has backlog or a frame still to come".
        """
        c = tr.cpus_now
        if not len(c):
            return None
        span_end = float(self.span_end[c[0]])
        if span_end > now + _EPS_US:
            return None
        if pending is None:
            pending = (self.backlog > _EPS_INST) | (self.next_arr < _INF)
        if pending[c].any():
            return None
        return max(float(self.last_end[c].max()), span_end, tr.start_us)

    # -- the window step ---------------------------------------------------------------
    @property
    def done(self) -> bool:
        """True once every track has finished all its phases."""
        return self.finish_us is not None

    def _effective_mhz(self, bus: BusState) -> np.ndarray:
        if bus.cpu_mhz is None:
            return self.ph.cpu_mhz
        return np.minimum(np.asarray(bus.cpu_mhz, dtype=float), self.profile.cpu_max_mhz)

    def _quiet(self, t1: float) -> bool:
        """No CPU has work and no event falls in [t, t1): the window is all idle."""
        if self.backlog.any() or self.rate_in.any():
            return False
        if float(self.next_arr.min()) < t1:
            return False
        return not any(len(tr.cpus_now) and float(self.span_end[tr.cpus_now[0]]) < t1
                       for tr in self.tracks)

    def step(self, bus: BusState, dt_us: int) -> tuple[CounterWindow, WindowWork]:
        """Advance one window of dt_us at `bus`; returns (counter deltas, what was done)."""
        n = self.ncpus
        t0 = self.t_us
        t1 = t0 + dt_us
        zeros = np.zeros(n)
        if self.done or self._quiet(t1):
            self.t_us = t1
            noncpu = self._noncpu * dt_us if not self.done else 0.0
            return (CounterWindow(np.full(n, dt_us, dtype=np.int64),
                                  np.zeros((n, N_COUNTERS), dtype=np.uint64)),
                    WindowWork(dt_us, zeros, zeros.copy(), self._effective_mhz(bus).copy(),
                               noncpu, 0.0, noncpu, None, self.done, self.finish_us))
        ph = self._phase_arrays(bus)
        jitter = self._draw_jitter()
        lat, pi = self._costs(bus, ph, dt_us, t1, jitter)
        noncpu_bytes = self._noncpu * dt_us

        inst = np.zeros(n)
        busy_us = np.zeros(n)
        acc = np.zeros((4, n))  # stall cycles, refills, DDR bytes, LLCC bytes
        epoch = np.zeros(n)  # instructions retired under the current `pi`
        if self._active_version != self._version:
            self._active = np.zeros(n, dtype=bool)
            for tr in self.tracks:
                self._active[tr.cpus_now] = True
            self._active_version = self._version
        tau = np.where(self._active, t0, t1)
        for _ in range(_MAX_SUBSTEPS):
            live = tau < t1 - _EPS_US
            if not live.any():
                break
            future_span = np.where(self.span_end > tau + _EPS_US, self.span_end, _INF)
            e = np.minimum(np.minimum(self.next_arr, future_span), t1)
            e = np.where(live, np.maximum(e, tau), tau)
            span = e - tau
            inflow = self.rate_in * span
            b = np.minimum(span, (self.backlog + inflow) / pi.rate)
            done = b * pi.rate
            left = self.backlog + inflow - done
            self.backlog = np.where(left < _EPS_INST, 0.0, left)
            epoch += done
            busy_us += b
            self.last_end = np.where(b > 0, tau + b, self.last_end)
            tau = e
            for cpu in np.flatnonzero(live & (self.next_arr <= e + _EPS_US)):
                self._arrive(int(cpu), float(e[cpu]))
            self.rate_in[self.span_end <= e + _EPS_US] = 0.0
            changed = False
            pending = (self.backlog > _EPS_INST) | (self.next_arr < _INF)
            for tr in self.tracks:
                if not len(tr.cpus_now):
                    continue
                now = float(tau[tr.cpus_now].max())
                fin = self._phase_over(tr, now, pending)
                if fin is None:
                    continue
                self._advance(tr, fin)
                changed = True
                if len(tr.cpus_now):
                    tau[tr.cpus_now] = max(fin, t0)
            if changed:
                # New phases run at this window's latencies; fresh jitter for them.
                self._flush(acc, epoch, pi)
                inst += epoch
                epoch = np.zeros(n)
                pi = self.model.per_instruction(self._phase_arrays(bus), lat,
                                                self._draw_jitter())
        else:  # pragma: no cover - a guard against an event storm
            raise RuntimeError("executor: too many sub-steps in one window")
        self._flush(acc, epoch, pi)
        inst += epoch
        self.t_us = t1
        self.retired += float(inst.sum())
        mhz = self._effective_mhz(bus)
        counters = self._round(dt_us, busy_us, mhz, inst, acc[0], acc[1])
        work = WindowWork(dt_us, inst, busy_us, mhz.copy(), float(acc[2].sum()) + noncpu_bytes,
                          float(acc[3].sum()), noncpu_bytes, lat, self.done, self.finish_us)
        return counters, work

    @staticmethod
    def _flush(acc: np.ndarray, epoch: np.ndarray, pi: PerInstruction) -> None:
        """Add the per-instruction costs of `epoch` instructions into `acc`."""
        acc[0] += epoch * pi.stall_cycles
        acc[1] += epoch * pi.refills
        acc[2] += epoch * pi.ddr_bytes
        acc[3] += epoch * pi.llcc_bytes

    def _phase_arrays(self, bus: BusState) -> PhaseArrays:
        """The current phase arrays, with the CPU frequency override applied."""
        if bus.cpu_mhz is None:
            return self.ph
        p = self.ph
        return PhaseArrays(p.cpi0, p.mpki_llcc, p.mpki_ddr, p.mlp, p.read_frac,
                           p.bytes_per_miss, self._effective_mhz(bus))

    def _draw_jitter(self) -> np.ndarray | None:
        """Per-CPU multiplicative jitter on the miss rates for one window (None: no jitter)."""
        if not self.jitter_amp.any():
            return None
        return 1.0 + self.jitter_amp * self._jit_rng.uniform(-1.0, 1.0, self.ncpus)

    def _costs(self, bus: BusState, ph: PhaseArrays, dt_us: int, t1: float,
               jitter: np.ndarray | None) -> tuple[WindowLatency, PerInstruction]:
        """Window latency (from the jitter-free mean demand) and per-instruction costs.

        Results are memoised on (bus, phase set, busy estimate): at fixed frequencies a
        throughput phase reuses them every window.
        """
        over = None if bus.cpu_mhz is None else ph.cpu_mhz.tobytes()
        key0 = (bus.ddr_mhz, bus.llcc_mhz, self._version, over, dt_us)
        if key0 != self._key0:
            lat0 = self.model.window_latency(bus.ddr_mhz, bus.llcc_mhz, ph,
                                             np.zeros(self.ncpus))
            self._rate0 = self.model.per_instruction(ph, lat0).rate * dt_us
            self._key0 = key0
        want = self.backlog + self.rate_in * dt_us
        if self._frames_live and float(self.next_arr.min()) < t1:
            want = want + np.where(self.next_arr < t1, self._next_frame_work(), 0.0)
        # Quantised to 1/32 so that windows with similar load share one memoised latency.
        busy_est = np.ceil(np.minimum(1.0, want / self._rate0) * 32.0) / 32.0
        key = (key0, self._noncpu, busy_est.tobytes())
        if key != self._key:
            self._lat = self.model.window_latency(bus.ddr_mhz, bus.llcc_mhz, ph, busy_est,
                                                  self._noncpu)
            self._pi = self.model.per_instruction(ph, self._lat)
            self._key = key
        assert self._lat is not None and self._pi is not None  # set above on first use
        if jitter is None:
            return self._lat, self._pi
        return self._lat, self.model.per_instruction(ph, self._lat, jitter)

    def _next_frame_work(self) -> np.ndarray:
        out = np.zeros(self.ncpus)
        for cpu, src in enumerate(self._frame_src):
            if src is not None:
                run, j, k = src
                if run.frame_work is not None:
                    out[cpu] = run.frame_work[k, j]
        return out

    def _round(self, dt_us: int, busy_us: np.ndarray, mhz: np.ndarray, inst: np.ndarray,
               stall: np.ndarray, refill: np.ndarray) -> CounterWindow:
        """Integer deltas whose running sums are the floors of the exact running sums."""
        cum = self._cum
        cum[:, CPU_CYCLES] += busy_us * mhz
        cum[:, CNT_CYCLES] += busy_us * self.const_mhz
        cum[:, INST_RETIRED] += inst
        cum[:, STALL_BACKEND_MEM] += stall
        cum[:, L2_D_RFILL] += refill
        floor = np.floor(cum + 1e-6)
        delta = np.maximum(floor - self._emitted, 0.0)
        self._emitted += delta
        return CounterWindow(np.full(self.ncpus, dt_us, dtype=np.int64),
                             delta.astype(np.uint64))
