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

import numpy as np

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
