"""The oracle's frontier is exact: no schedule built from the same segment costs beats it."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from memlat.analysis.oracle import E_CPU, N_COST, TIME, Frontier, lower_hull


def _costs(seed: int, segments: int, pairs: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    costs = rng.uniform(0.1, 2.0, size=(segments, pairs, N_COST))
    return costs


@given(st.integers(0, 10_000), st.integers(1, 3), st.integers(1, 4), st.floats(0.0, 1.0))
def test_oracle_never_beaten_by_integral_schedules(seed: int, segments: int, pairs: int,
                                                   budget_frac: float) -> None:
    costs = _costs(seed, segments, pairs)
    frontier = Frontier(costs)
    energy = costs[:, :, E_CPU:].sum(axis=2)
    fastest = frontier.fastest_s
    slowest = float(costs[:, :, TIME].max(axis=1).sum())
    budget = fastest + budget_frac * (slowest - fastest)
    sol = frontier.solve(budget)
    assert sol.feasible
    assert sol.time_s <= budget + 1e-9
    assert abs(sol.energy_j - frontier.energy_at(budget)) < 1e-9
    for assign in itertools.product(range(pairs), repeat=segments):
        t = sum(costs[s, p, TIME] for s, p in enumerate(assign))
        e = sum(energy[s, p] for s, p in enumerate(assign))
        if t <= budget:
            assert sol.energy_j <= e + 1e-9
        # the frontier at that schedule's own time is no worse either
        assert frontier.energy_at(t) <= e + 1e-9


@given(st.integers(0, 10_000))
def test_oracle_never_beaten_by_mixed_schedules(seed: int) -> None:
    costs = _costs(seed, 3, 5)
    frontier = Frontier(costs)
    energy = costs[:, :, E_CPU:].sum(axis=2)
    rng = np.random.default_rng(seed)
    for _ in range(20):
        weights = rng.dirichlet(np.ones(5), size=3)  # each segment split over all pairs
        t = float((weights * costs[:, :, TIME]).sum())
        e = float((weights * energy).sum())
        assert frontier.energy_at(t) <= e + 1e-9


def test_oracle_solution_mix_reproduces_its_cost() -> None:
    costs = _costs(7, 4, 6)
    frontier = Frontier(costs)
    budget = frontier.fastest_s * 1.2
    sol = frontier.solve(budget)
    t = sum(frac * costs[c.segment, p, TIME] for c in sol.choices for p, frac in c.mix)
    assert abs(t - sol.time_s) < 1e-9
    assert abs(t - budget) < 1e-9 or t < budget  # the slack is used unless nothing is left
    assert all(abs(sum(f for _, f in c.mix) - 1.0) < 1e-12 for c in sol.choices)


def test_infeasible_budget_returns_fastest() -> None:
    costs = _costs(3, 2, 3)
    frontier = Frontier(costs)
    sol = frontier.solve(frontier.fastest_s * 0.5)
    assert not sol.feasible
    assert abs(sol.time_s - frontier.fastest_s) < 1e-12


def test_lower_hull_drops_dominated_points() -> None:
    times = np.array([1.0, 2.0, 3.0, 1.5, 2.5])
    energies = np.array([10.0, 5.0, 4.0, 12.0, 8.0])
    assert lower_hull(times, energies) == [0, 1, 2]
