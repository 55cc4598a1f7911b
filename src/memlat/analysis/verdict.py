"""The suite-wide verdict of a `memlat run`: what each policy saves against `performance`,
at what slowdown, how far it is from the oracle, per bus, and where memlat loses.

Conventions (docs/simulation.md, decisions.md §4 of the project specification):

* energy changes are relative to `performance` on the same workload, in %; negative
  means less energy. Suite-wide, energies are summed over the workloads (the suite's total
  energy), per bus (CPUs, DDR, LLCC) and in total;
* slowdown is time / time of `performance` on the same workload, reported as a
  percentage above 1 (0.0 = as fast); suite-wide it is the geometric mean over workloads,
  with the worst workload named;
* the distance to the oracle is energy / oracle energy - 1, in % (the oracle is the
  lowest energy reachable within its slowdown budget).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from memlat.sim.results import RunResult

BASELINE = "performance"
ORACLE = "oracle"
BUS_PARTS = (("cpu", "e_cpu_j"), ("ddr", "e_ddr_j"), ("llcc", "e_llcc_j"))
_TIE = 0.005  # a policy "uses less energy" only when at least 0.5 % lower


def _pct(value: float, reference: float) -> float:
    return (value / reference - 1.0) * 100.0 if reference > 0 else math.nan


@dataclass(slots=True)
class Cell:
    """One policy on one workload (or the whole suite) against `performance`.

    energy_pct and bus_pct are energy changes in % (negative = saves); slowdown_pct is
    the slowdown in % (geometric mean for the suite); oracle_gap_pct is the extra energy
    over the oracle in % (None without an oracle run).
    """

    energy_pct: float
    slowdown_pct: float
    oracle_gap_pct: float | None
    bus_pct: dict[str, float]
    energy_j: float
    time_s: float


@dataclass(slots=True)
class Verdict:
    """Every figure of the summary, computed once for the HTML page, summary.md and tests."""

    subject: str
    policies: list[str]
    workloads: list[str]
    budget: float
    cells: dict[tuple[str, str], Cell] = field(default_factory=dict)
    suite: dict[str, Cell] = field(default_factory=dict)
    worst: dict[str, tuple[str, float]] = field(default_factory=dict)
    losses: list[tuple[str, str]] = field(default_factory=list)
    headline: str = ""


def compute_verdict(results: Sequence[RunResult], *, budget: float = 0.05,
                    subject: str = "memlat") -> Verdict:
    """The verdict of `results` (every (workload, policy) of a run).

    `subject` is the policy the headline speaks about (memlat; the first policy other than
    performance when memlat was not run). `budget` is the oracle's slowdown budget, also
    used to call a workload lost on time.
    """
    policies = list(dict.fromkeys(r.policy for r in results))
    workloads = list(dict.fromkeys(r.workload for r in results))
    by = {(r.workload, r.policy): r for r in results}
    if subject not in policies:
        subject = next((p for p in policies if p != BASELINE), policies[0] if policies else "")
    v = Verdict(subject=subject, policies=policies, workloads=workloads, budget=budget)
    for w in workloads:
        base, oracle = by.get((w, BASELINE)), by.get((w, ORACLE))
        if base is None:
            continue
        for p in policies:
            r = by.get((w, p))
            if r is None:
                continue
            v.cells[(w, p)] = Cell(
                energy_pct=_pct(r.energy_j, base.energy_j),
                slowdown_pct=_pct(r.time_s, base.time_s),
                oracle_gap_pct=None if oracle is None else _pct(r.energy_j, oracle.energy_j),
                bus_pct={bus: _pct(getattr(r, a), getattr(base, a)) for bus, a in BUS_PARTS},
                energy_j=r.energy_j, time_s=r.time_s)
    for p in policies:
        common = [w for w in workloads if (w, p) in by and (w, BASELINE) in by]
        if not common:
            continue
        mine = [by[(w, p)] for w in common]
        bases = [by[(w, BASELINE)] for w in common]
        with_oracle = [w for w in common if (w, ORACLE) in by]
        slow = [by[(w, p)].time_s / by[(w, BASELINE)].time_s for w in common]
        v.suite[p] = Cell(
            energy_pct=_pct(sum(r.energy_j for r in mine), sum(r.energy_j for r in bases)),
            slowdown_pct=(math.exp(sum(math.log(s) for s in slow) / len(slow)) - 1) * 100,
            oracle_gap_pct=_pct(sum(by[(w, p)].energy_j for w in with_oracle),
                                sum(by[(w, ORACLE)].energy_j for w in with_oracle))
            if with_oracle else None,
            bus_pct={bus: _pct(sum(getattr(r, a) for r in mine),
                               sum(getattr(r, a) for r in bases)) for bus, a in BUS_PARTS},
            energy_j=sum(r.energy_j for r in mine), time_s=sum(r.time_s for r in mine))
        k = max(range(len(common)), key=lambda i: slow[i])
        v.worst[p] = (common[k], (slow[k] - 1) * 100)
    v.losses = _losses(v, by)
    v.headline = _headline(v)
    return v


def _losses(v: Verdict, by: dict[tuple[str, str], RunResult]) -> list[tuple[str, str]]:
    """(workload, why) for each workload where the subject loses: slower than the budget,
    or another online policy uses less energy at no more slowdown."""
    out: list[tuple[str, str]] = []
    for w in v.workloads:
        me = by.get((w, v.subject))
        cell = v.cells.get((w, v.subject))
        if me is None or cell is None:
            continue
        reasons = []
        if cell.slowdown_pct > v.budget * 100:
            reasons.append(f"{cell.slowdown_pct:.1f} % slower than performance "
                           f"(budget {v.budget * 100:g} %)")
        for p in v.policies:
            other = by.get((w, p))
            if p in (v.subject, ORACLE) or other is None:
                continue
            if (other.energy_j < me.energy_j * (1 - _TIE)
                    and other.time_s <= me.time_s * (1 + 1e-3)):
                saved = (1 - other.energy_j / me.energy_j) * 100
                reasons.append(f"{p} uses {saved:.1f} % less energy at no more slowdown")
        if reasons:
            out.append((w, "; ".join(reasons)))
    return out


def _signed(pct: float, more: str = "more", less: str = "less") -> str:
    return f"{abs(pct):.1f} % {less if pct < 0 else more}"


def _headline(v: Verdict) -> str:
    cell = v.suite.get(v.subject)
    if cell is None:
        return (f"No verdict: the run has no `{BASELINE}` baseline to compare "
                f"{v.subject or 'any policy'} against.")
    buses = ", ".join(f"{bus.upper() if bus != 'cpu' else 'CPUs'} {cell.bus_pct[bus]:+.1f} %"
                      for bus, _ in BUS_PARTS)
    worst_w, worst_pct = v.worst[v.subject]
    text = (f"{v.subject} uses {_signed(cell.energy_pct)} energy than {BASELINE} over the "
            f"{len(v.workloads)} workload{'s' if len(v.workloads) != 1 else ''} ({buses}) "
            f"at a geometric-mean slowdown of {cell.slowdown_pct:.2f} % (worst: {worst_w}, "
            f"{worst_pct:.2f} %)")
    if cell.oracle_gap_pct is not None and v.subject != ORACLE:
        text += (f"; it uses {_signed(cell.oracle_gap_pct)} energy than the oracle "
                 f"({v.budget * 100:g} % slowdown budget)")
    text += ". "
    if v.losses:
        text += f"It loses on {len(v.losses)} of {len(v.workloads)}: " + "; ".join(
            f"{w} ({why})" for w, why in v.losses) + "."
    else:
        text += "It loses on no workload (none slower than the budget, none where another "
        text += "online policy uses less energy at no more slowdown)."
    return text
