"""What one closed-loop run produces: per-window log and the summary figures.

The one result type of the simulator (memlat.sim.run), shared by the oracle, the report,
the sweep and the tuner, so none of them depends on another's internals. decisions.md §4
lists the summary figures: completion time, energy per bus and for the CPUs, EDP, slowdown versus
`performance`; transitions per bus are added for the table (algorithm.md §4.2, Begum).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from memlat.governor.spec import CounterTrace

BUSES = ("ddr", "llcc", "ddr_qos")


@dataclass(slots=True)
class Timeline:
    """Per-window record of a run: start time, length, bus state and phase.

    phase[i] indexes `phase_names`; -1 marks a window after the work completed.
    """

    t_s: np.ndarray
    dt_s: np.ndarray
    ddr_mhz: np.ndarray
    llcc_mhz: np.ndarray
    ddr_qos: np.ndarray
    phase: np.ndarray
    phase_names: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.t_s.shape[0])

    def transitions(self) -> dict[str, int]:
        """Number of changes of each bus's value between consecutive windows."""
        return {bus: int(np.count_nonzero(np.diff(getattr(self, _COL[bus])))) for bus in BUSES}

    def phase_spans(self) -> list[tuple[str, float, float]]:
        """(phase name, start s, end s) for each run of consecutive windows of one phase."""
        spans: list[tuple[str, float, float]] = []
        if not len(self):
            return spans
        ends = self.t_s + self.dt_s
        start = 0
        for i in range(1, len(self) + 1):
            if i == len(self) or self.phase[i] != self.phase[start]:
                p = int(self.phase[start])
                if p >= 0:
                    spans.append((self.phase_names[p], float(self.t_s[start]),
                                  float(ends[i - 1])))
                start = i
        return spans


@dataclass(slots=True)
class Snapshots:
    """Per charged window of a run, what the oracle needs (~200 B/window on 12 CPUs).

    ver_before[w] / ver_after[w]: the phase version at the window's start and end;
    params[v]: (7, ncpus) PhaseArrays fields (memlat.sim.model order) of version v;
    labels[v]: the running phases' names joined with '+' ('' when none);
    span_us[w], instructions[w, c], busy_us[w, c], noncpu_bytes[w].
    """

    ver_before: np.ndarray
    ver_after: np.ndarray
    params: np.ndarray
    labels: tuple[str, ...]
    span_us: np.ndarray
    instructions: np.ndarray
    busy_us: np.ndarray
    noncpu_bytes: np.ndarray

    def __len__(self) -> int:
        return int(self.ver_before.shape[0])


_COL = {"ddr": "ddr_mhz", "llcc": "llcc_mhz", "ddr_qos": "ddr_qos"}


@dataclass(slots=True)
class RunResult:
    """Summary of one (workload, policy) run. Energies in J, times in s.

    slowdown is time / time of `performance` on the same workload (1.0 = as fast); it is
    filled in once both runs exist (`attach_slowdowns`).
    """

    workload: str
    policy: str
    soc: str
    time_s: float
    e_cpu_j: float
    e_ddr_j: float
    e_llcc_j: float
    transitions: dict[str, int]
    windows: int
    timeline: Timeline | None = None
    slowdown: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    instructions: float = 0.0
    ddr_bytes: float = 0.0  # CPU + non-CPU
    llcc_bytes: float = 0.0
    counters: CounterTrace | None = None  # per charged window, when asked for
    snapshots: Snapshots | None = None  # the oracle's inputs, when asked for

    @property
    def energy_j(self) -> float:
        """Total energy: CPUs + DDR + LLCC."""
        return self.e_cpu_j + self.e_ddr_j + self.e_llcc_j

    @property
    def edp(self) -> float:
        """Energy-delay product (J*s)."""
        return self.energy_j * self.time_s

    def summary(self) -> dict[str, Any]:
        """JSON-ready figures (no per-window data)."""
        out: dict[str, Any] = {
            "workload": self.workload,
            "policy": self.policy,
            "soc": self.soc,
            "time_s": self.time_s,
            "slowdown": self.slowdown,
            "energy_j": self.energy_j,
            "energy_cpu_j": self.e_cpu_j,
            "energy_ddr_j": self.e_ddr_j,
            "energy_llcc_j": self.e_llcc_j,
            "edp_js": self.edp,
            "transitions": dict(self.transitions),
            "windows": self.windows,
        }
        if self.extra:
            out["extra"] = self.extra
        return out


def attach_slowdowns(results: list[RunResult], baseline: str = "performance") -> None:
    """Set each result's slowdown against the baseline policy's time on its workload."""
    base = {r.workload: r.time_s for r in results if r.policy == baseline}
    for r in results:
        if r.workload in base and base[r.workload] > 0:
            r.slowdown = r.time_s / base[r.workload]
