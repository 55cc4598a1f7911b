"""The oracle: the cheapest bus schedule in hindsight for a slowdown budget.

decisions.md §4 asks for "the best schedule in hindsight under the model, for a given
slowdown budget (a lower bound no online policy can beat)". The method:

1. Cut the workload into *segments* of fixed work (its phases, see `segment_costs`).
   Under the first-order model (algorithm.md §4.4) the time and energy of a segment's
   work at a fixed (DDR, LLCC) OPP pair are linear in the fraction of the work done, so
   a segment has one (time, energy) point per OPP pair.
2. Any schedule that runs parts of a segment at different pairs (which is what an online
   policy does, window by window) costs a convex combination of those points. The set of
   reachable (total time, total energy) is therefore the Minkowski sum of the segments'
   convex hulls, and the least energy at a time budget T is the linear-programming
   relaxation of a multiple-choice knapsack.
3. That LP is solved exactly by the classical greedy (Sinha & Zoltners, 1979): start
   every segment at its fastest point, take each segment's lower convex hull, and spend
   the time slack on hull edges in order of energy saved per second added; the last edge
   taken may be taken partly, which means running that segment at two adjacent hull
   pairs. Sorting all edges once gives the whole frontier E*(T) as a piecewise-linear
   convex function, so every budget is answered from the same sort.

E*(T) is exact for the relaxation, hence a lower bound for every schedule built from the
same per-pair segment costs; tests/simrun check it against every online policy.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from memlat.sim.model import MemoryModel, PhaseArrays
from memlat.sim.power import PowerModel
from memlat.sim.results import RunResult, Snapshots, Timeline

# cost columns of a segment-cost table
TIME, E_CPU, E_DDR, E_LLCC = 0, 1, 2, 3
N_COST = 4


@dataclass(frozen=True, slots=True)
class SegmentChoice:
    """How the oracle runs one segment: (pair index, fraction of the segment's work)."""

    segment: int
    mix: tuple[tuple[int, float], ...]


@dataclass(frozen=True, slots=True)
class OracleSolution:
    """The oracle's schedule at one time budget and what it costs.

    time_s, energy per component (J) and the per-segment mixes. `feasible` is False when
    the budget is below the fastest possible time (then the fastest schedule is given).
    """

    budget_s: float
    time_s: float
    e_cpu_j: float
    e_ddr_j: float
    e_llcc_j: float
    choices: tuple[SegmentChoice, ...]
    feasible: bool = True

    @property
    def energy_j(self) -> float:
        """Total energy (CPU + DDR + LLCC)."""
        return self.e_cpu_j + self.e_ddr_j + self.e_llcc_j


def lower_hull(times: np.ndarray, energies: np.ndarray) -> list[int]:
    """Indices of the lower-left convex hull of points (time, energy), fastest first.

    Only the part of the hull where energy falls as time grows is kept (the efficient
    frontier); ties in time keep the lowest energy.
    """
    order = np.lexsort((energies, times))
    hull: list[int] = []
    for i in order:
        t, e = float(times[i]), float(energies[i])
        if hull and t == float(times[hull[-1]]):
            continue  # same time, higher or equal energy: dominated
        if hull and e >= float(energies[hull[-1]]):
            continue  # slower and not cheaper: dominated
        while len(hull) >= 2:
            t1, e1 = float(times[hull[-2]]), float(energies[hull[-2]])
            t2, e2 = float(times[hull[-1]]), float(energies[hull[-1]])
            # drop hull[-1] if it lies on or above the segment hull[-2] -> i
            if (e2 - e1) * (t - t1) >= (e - e1) * (t2 - t1):
                hull.pop()
            else:
                break
        hull.append(int(i))
    return hull


@dataclass(slots=True)
class Frontier:
    """E*(T) for one workload: the greedy edge order over every segment's hull.

    costs: (segments, pairs, N_COST) table; built once, then `solve(budget_s)` answers a
    budget and `curve()` gives the breakpoints of the piecewise-linear frontier.
    """

    costs: np.ndarray
    hulls: list[list[int]] = field(default_factory=list)
    # edges sorted by saving rate: (rate, segment, from pair, to pair)
    edges: list[tuple[float, int, int, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.costs.ndim != 3 or self.costs.shape[2] != N_COST:
            raise ValueError(f"segment costs must have shape (S, P, {N_COST}), "
                             f"got {self.costs.shape}")
        energy = self.costs[:, :, E_CPU:].sum(axis=2)
        for s in range(self.costs.shape[0]):
            hull = lower_hull(self.costs[s, :, TIME], energy[s])
            self.hulls.append(hull)
            for a, b in itertools.pairwise(hull):
                dt = float(self.costs[s, b, TIME] - self.costs[s, a, TIME])
                de = float(energy[s, a] - energy[s, b])
                self.edges.append((de / dt, s, a, b))
        # hull convexity makes each segment's edges already descending in rate; a stable
        # sort keeps them in order when two rates tie
        self.edges.sort(key=lambda edge: -edge[0])

    @property
    def fastest_s(self) -> float:
        """Least possible total time (every segment at its fastest pair)."""
        return float(sum(self.costs[s, h[0], TIME] for s, h in enumerate(self.hulls)))

    def _start(self) -> np.ndarray:
        return np.sum([self.costs[s, h[0]] for s, h in enumerate(self.hulls)], axis=0)

    def curve(self) -> tuple[np.ndarray, np.ndarray]:
        """Breakpoints (time s, energy J) of E*(T), from the fastest schedule onwards."""
        total = self._start()
        times, energies = [float(total[TIME])], [float(total[E_CPU:].sum())]
        for _, s, a, b in self.edges:
            total = total + self.costs[s, b] - self.costs[s, a]
            times.append(float(total[TIME]))
            energies.append(float(total[E_CPU:].sum()))
        return np.asarray(times), np.asarray(energies)

    def energy_at(self, time_s: float) -> float:
        """E*(time_s): least energy of any schedule finishing within time_s."""
        times, energies = self.curve()
        if time_s <= times[0]:
            return float(energies[0])
        return float(np.interp(time_s, times, energies))

    def solve(self, budget_s: float) -> OracleSolution:
        """The optimal schedule whose total time is at most budget_s."""
        position = [h[0] for h in self.hulls]  # current hull vertex per segment
        partial: dict[int, tuple[int, int, float]] = {}
        total = self._start()
        feasible = budget_s >= float(total[TIME]) * (1 - 1e-12)
        slack = budget_s - float(total[TIME])
        for _, s, a, b in self.edges:
            if slack <= 0:
                break
            step = self.costs[s, b] - self.costs[s, a]
            dt = float(step[TIME])
            if dt <= slack:
                total = total + step
                slack -= dt
                position[s] = b
            else:
                frac = slack / dt  # run this fraction of segment s at b, the rest at a
                total = total + frac * step
                partial[s] = (a, b, frac)
                slack = 0.0
        choices = []
        for s, p in enumerate(position):
            if s in partial:
                a, b, frac = partial[s]
                mix: tuple[tuple[int, float], ...] = ((a, 1.0 - frac), (b, frac))
            else:
                mix = ((p, 1.0),)
            choices.append(SegmentChoice(s, mix))
        return OracleSolution(budget_s=budget_s, time_s=float(total[TIME]),
                              e_cpu_j=float(total[E_CPU]), e_ddr_j=float(total[E_DDR]),
                              e_llcc_j=float(total[E_LLCC]), choices=tuple(choices),
                              feasible=feasible)


# --- segment costs under the closed-loop model -------------------------------------------

@dataclass(slots=True)
class Epochs:
    """The workload cut into epochs of the `performance` run, with their fixed work.

    An epoch is a maximal run of windows with the same phase label. Per epoch: the phase
    parameters (PhaseArrays fields), each CPU's instructions and busy time, the span and
    the non-CPU bytes of the performance run.
    """

    labels: list[str]
    params: list[np.ndarray]  # (7, ncpus) PhaseArrays fields per epoch
    work: np.ndarray  # (E, ncpus) instructions
    busy: np.ndarray  # (E, ncpus) us at the top OPPs
    span_us: np.ndarray  # (E,)
    noncpu_bytes: np.ndarray  # (E,)


def _split_window(params_a: np.ndarray, params_b: np.ndarray, span_us: float,
                  inst: np.ndarray, busy: np.ndarray, model: Any
                  ) -> tuple[np.ndarray, np.ndarray, float]:
    """Instructions, busy time and span of a window that belong to the phase it began in.

    A window in which a phase ended holds work of two phases. Per CPU, with the top-OPP
    instruction rates r_a (old phase) and r_b (new phase), busy time b and instructions
    I: the old phase ran x = (I - r_b b) / (r_a - r_b) of b (clamped to [0, b]). The
    old phase's share of the span is the longest x among CPUs whose parameters changed.
    params_a / params_b: (7, ncpus) PhaseArrays fields before and after.
    """
    rates = []
    for params in (params_a, params_b):
        ph = PhaseArrays(*[np.asarray(a, dtype=float) for a in params])
        lat = model.window_latency(model.profile.ddr.max_mhz, model.profile.llcc.max_mhz, ph,
                                   np.zeros(len(ph.cpi0)))
        rates.append(model.per_instruction(ph, lat).rate)
    r_a, r_b = rates
    diff = r_a - r_b
    same = np.abs(diff) <= 1e-12 * np.maximum(r_a, 1.0)
    x = np.where(same, busy / 2.0, (inst - r_b * busy) / np.where(same, 1.0, diff))
    x = np.clip(x, 0.0, busy)
    inst_a = np.where(same, inst / 2.0, r_a * x)
    changed = ~np.all(params_a == params_b, axis=0)
    span_a = float(x[changed].max(initial=0.0)) if changed.any() else span_us / 2.0
    return np.clip(inst_a, 0.0, inst), x, min(span_a, span_us)


def epochs_from_snapshots(snaps: Snapshots, model: Any) -> Epochs:
    """Group the performance run's windows into epochs (see Epochs); a window in which
    the phase changed is split between the two epochs (`_split_window`).

    Runs of windows that stay in one phase are summed as slices, so a long run costs
    a few numpy reductions, not a Python step per window.
    """
    labels: list[str] = []
    params: list[np.ndarray] = []
    work: list[np.ndarray] = []
    busy: list[np.ndarray] = []
    span: list[float] = []
    noncpu: list[float] = []

    def add(label: str, arrays: np.ndarray, inst: np.ndarray, b: np.ndarray, dt: float,
            nb: float) -> None:
        if labels and labels[-1] == label:
            work[-1] = work[-1] + inst
            busy[-1] = busy[-1] + b
            span[-1] += dt
            noncpu[-1] += nb
            return
        labels.append(label)
        params.append(arrays)
        work.append(np.asarray(inst, dtype=float).copy())
        busy.append(np.asarray(b, dtype=float).copy())
        span.append(float(dt))
        noncpu.append(float(nb))

    names = np.asarray(snaps.labels, dtype=object)
    before = names[snaps.ver_before] if len(snaps) else np.zeros(0, object)
    after = names[snaps.ver_after] if len(snaps) else np.zeros(0, object)
    split = (before != after) & (after != "")
    # boundaries: every split window stands alone; plain windows group by label
    cuts = np.flatnonzero(split | np.r_[True, before[1:] != before[:-1]]
                          | np.r_[False, split[:-1]]) if len(snaps) else np.zeros(0, int)
    bounds = [*cuts.tolist(), len(snaps)]
    for lo, hi in itertools.pairwise(bounds):
        v0 = int(snaps.ver_before[lo])
        if split[lo]:
            v1 = int(snaps.ver_after[lo])
            inst, b = snaps.instructions[lo], snaps.busy_us[lo]
            sp, nb = float(snaps.span_us[lo]), float(snaps.noncpu_bytes[lo])
            inst_a, busy_a, span_a = _split_window(snaps.params[v0], snaps.params[v1], sp,
                                                   inst, b, model)
            share = span_a / sp if sp > 0 else 0.5
            add(str(before[lo]), snaps.params[v0], inst_a, busy_a, span_a, nb * share)
            add(str(after[lo]), snaps.params[v1], inst - inst_a, b - busy_a, sp - span_a,
                nb * (1 - share))
            continue
        add(str(before[lo]), snaps.params[v0], snaps.instructions[lo:hi].sum(axis=0),
            snaps.busy_us[lo:hi].sum(axis=0), float(snaps.span_us[lo:hi].sum()),
            float(snaps.noncpu_bytes[lo:hi].sum()))
    return Epochs(labels, params, np.asarray(work), np.asarray(busy), np.asarray(span),
                  np.asarray(noncpu))


def segment_costs(epochs: Epochs, profile: Any, pairs: list[tuple[float, float]]
                  ) -> np.ndarray:
    """(epochs, pairs, N_COST) table: time (s) and CPU/DDR/LLCC energy (J) of each epoch's
    fixed work at each fixed (DDR MHz, LLCC MHz) pair, under memlat.sim.model/power.

    Per epoch and pair: the model's instruction rate at that pair (queueing from the
    epoch's busy fractions and non-CPU traffic) gives each CPU's busy time for its fixed
    work; the epoch lasts the longer of its performance-run span (idle time between
    frames or at a steady rate absorbs a slower bus) and the busiest CPU's busy time
    (throughput work cannot hide it). Energies follow memlat.sim.power for that span.
    """
    model = MemoryModel(profile)
    power = PowerModel(profile)
    n_e = len(epochs.labels)
    costs = np.zeros((n_e, len(pairs), N_COST))
    for e in range(n_e):
        ph = PhaseArrays(*[np.asarray(a, dtype=float) for a in epochs.params[e]])
        span = float(epochs.span_us[e])
        w = epochs.work[e]
        working = w > 0
        util = np.where(span > 0, epochs.busy[e] / max(span, 1e-9), 0.0)
        noncpu_rate = float(epochs.noncpu_bytes[e]) / span if span > 0 else 0.0
        for p, (ddr, llcc) in enumerate(pairs):
            lat = model.window_latency(ddr, llcc, ph, util, noncpu_rate)
            pi = model.per_instruction(ph, lat)
            busy = np.where(working, w / pi.rate, 0.0)
            t_us = max(span, float(busy.max(initial=0.0)))
            ddr_bytes = float(np.dot(w, pi.ddr_bytes)) + noncpu_rate * t_us
            llcc_bytes = float(np.dot(w, pi.llcc_bytes))
            costs[e, p, TIME] = t_us / 1e6
            costs[e, p, E_CPU] = power.cpu_energy_j(t_us, busy, ph.cpu_mhz)
            costs[e, p, E_DDR] = power.ddr_energy_j(t_us, ddr, ddr_bytes)
            costs[e, p, E_LLCC] = power.llcc_energy_j(t_us, llcc, llcc_bytes)
    return costs


def oracle_for_run(workload: str, snaps: Snapshots, perf: RunResult, setup: Any
                   ) -> tuple[RunResult, tuple[np.ndarray, np.ndarray]]:
    """The oracle's RunResult at setup.oracle_budget and the workload's frontier E*(T).

    The reported figures are the exact optimum of the relaxation (module docstring); the
    timeline is the schedule itself: each epoch's share at each chosen pair, in order.
    """
    epochs = epochs_from_snapshots(snaps, MemoryModel(setup.profile))
    pairs = [(d, l) for d in setup.ladders.ddr for l in setup.ladders.llcc]  # noqa: E741
    costs = segment_costs(epochs, setup.profile, pairs)
    # Calibrate to the executed performance run: the epoch model misses only window-edge
    # effects (rounding, the busy estimate of queueing), so one factor per cost column
    # makes the top pair reproduce the performance run exactly and keeps the rest in scale.
    top = pairs.index((setup.ladders.ddr[-1], setup.ladders.llcc[-1]))
    measured = np.array([perf.time_s, perf.e_cpu_j, perf.e_ddr_j, perf.e_llcc_j])
    modelled = costs[:, top, :].sum(axis=0)
    costs = costs * np.where(modelled > 0, measured / np.where(modelled > 0, modelled, 1), 1.0)
    frontier = Frontier(costs)
    budget = (1.0 + setup.oracle_budget) * perf.time_s
    sol = frontier.solve(budget)
    t, dt, ddr, llcc, phase = [], [], [], [], []
    now = 0.0
    for choice in sol.choices:
        for p, frac in choice.mix:
            length = frac * float(costs[choice.segment, p, TIME])
            if length <= 0:
                continue
            t.append(now)
            dt.append(length)
            ddr.append(pairs[p][0])
            llcc.append(pairs[p][1])
            phase.append(choice.segment)
            now += length
    names = tuple(epochs.labels)
    timeline = Timeline(np.asarray(t), np.asarray(dt), np.asarray(ddr), np.asarray(llcc),
                        np.zeros(len(t), dtype=np.int64), np.asarray(phase, dtype=np.int64),
                        names)
    result = RunResult(workload, "oracle", perf.soc, sol.time_s, sol.e_cpu_j, sol.e_ddr_j,
                       sol.e_llcc_j, timeline.transitions(), len(timeline), timeline,
                       extra={"budget": setup.oracle_budget, "feasible": sol.feasible,
                              "epochs": len(names)})
    return result, frontier.curve()
