"""Phase-based workload descriptions (decisions.md §4, workloads.md §6-§7).

A workload is one or more *tracks* running side by side on disjoint CPUs; a track is a
sequence of phases. Each phase fixes the CPU-side behaviour the closed-loop model needs
(requested CPU MHz, busy fraction, base CPI, MPKI to LLCC and DDR, MLP, read fraction,
bytes per miss, non-CPU DDR traffic) and how much work it is:

* `instructions`: a per-CPU instruction budget, or
* `duration_s`: the phase length *at the top bus OPPs*; the executor turns it into a
  per-CPU instruction budget (docs/model.md), so a run always does the same work.

`util` < 1 without a pattern means work arrives at a steady rate (the CPU is busy that
fraction of the time at top bus speed); a `pattern` (busy ms per period ms) means
frame-style work: one frame's work arrives at the start of every period.
Phase `cpus` are track-relative; a track's `cpus` list places them on real CPUs.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from memlat.errors import ConfigError
from memlat.sim._yaml import Sourced, Strict, validate
from memlat.yamlfile import read_yaml


class Pattern(Strict):
    """Frame-style on/off pattern: `busy_ms` of work (at top bus speed) every `period_ms`.

    busy_ms may be one value for all CPUs of the phase or one value per CPU.
    """

    busy_ms: float | list[float]
    period_ms: float = Field(gt=0)

    @field_validator("busy_ms")
    @classmethod
    def _busy(cls, v: float | list[float]) -> float | list[float]:
        for b in (v if isinstance(v, list) else [v]):
            if b < 0:
                raise ValueError("busy_ms must be >= 0")
        return v


class Phase(Sourced):
    """One phase of a workload (workloads.md §6, decisions.md §4)."""

    name: str
    duration_s: float | None = Field(default=None, gt=0)
    instructions: float | None = Field(default=None, gt=0)
    cpus: list[int] = Field(default=[0], min_length=1)
    cpu_mhz: float = Field(gt=0)
    util: float | list[float] = 1.0
    cpi0: float = Field(gt=0)
    mpki_llcc: float = Field(ge=0)
    mpki_ddr: float = Field(ge=0)
    mlp: float = Field(default=1.0, ge=1.0)
    read_frac: float = Field(default=1.0, gt=0, le=1)
    bytes_per_miss: float = Field(default=64, gt=0)
    noncpu_gbps: float = Field(default=0.0, ge=0)
    repeat: int = Field(default=1, ge=1)
    pattern: Pattern | None = None
    jitter: float = Field(default=0.0, ge=0, lt=1)

    @model_validator(mode="after")
    def _consistent(self) -> Phase:
        if (self.duration_s is None) == (self.instructions is None):
            raise ValueError("give exactly one of duration_s and instructions")
        if self.mpki_ddr > self.mpki_llcc:
            raise ValueError(f"mpki_ddr ({self.mpki_ddr}) cannot exceed mpki_llcc "
                             f"({self.mpki_llcc}): DDR misses are L2 misses that also "
                             "missed the LLCC")
        if len(set(self.cpus)) != len(self.cpus) or min(self.cpus) < 0:
            raise ValueError("cpus must be distinct non-negative numbers")
        for name, val in (("util", self.util),
                          ("pattern.busy_ms", self.pattern.busy_ms if self.pattern else 0.0)):
            if isinstance(val, list) and len(val) != len(self.cpus):
                raise ValueError(f"{name} has {len(val)} values for {len(self.cpus)} cpus")
        for u in (self.util if isinstance(self.util, list) else [self.util]):
            if not 0 < u <= 1:
                raise ValueError("util must be in (0, 1]")
        if self.pattern is not None:
            if self.duration_s is None:
                raise ValueError("a pattern phase needs duration_s (its frames fill it)")
            busy = self.pattern.busy_ms
            if max(busy if isinstance(busy, list) else [busy]) > self.pattern.period_ms:
                raise ValueError("pattern busy_ms cannot exceed period_ms")
        return self

    def per_cpu(self, value: float | list[float]) -> list[float]:
        """A scalar-or-list parameter expanded to one value per phase CPU."""
        return list(value) if isinstance(value, list) else [float(value)] * len(self.cpus)


class Track(Strict):
    """A sequence of phases on a set of CPUs: inline `phases`, or `use` another workload."""

    phases: list[Phase] | None = None
    use: str | None = None
    cpus: list[int] | None = None

    @model_validator(mode="after")
    def _one(self) -> Track:
        if (self.phases is None) == (self.use is None):
            raise ValueError("a track needs exactly one of phases and use")
        if self.phases is not None and not self.phases:
            raise ValueError("a track needs at least one phase")
        return self


class Workload(Strict):
    """A named workload: `phases` (one track, optionally placed by `cpus`) or `tracks`."""

    name: str
    description: str = ""
    phases: list[Phase] | None = None
    cpus: list[int] | None = None
    tracks: list[Track] | None = None

    @model_validator(mode="after")
    def _shape(self) -> Workload:
        if (self.phases is None) == (self.tracks is None):
            raise ValueError("a workload needs exactly one of phases and tracks")
        if self.phases is not None and not self.phases:
            raise ValueError("a workload needs at least one phase")
        if self.tracks is not None and self.cpus is not None:
            raise ValueError("cpus (placement) goes on each track when tracks are used")
        return self

    def placed_tracks(self) -> list[tuple[list[Phase], list[int]]]:
        """(phases, absolute CPU of each track-relative CPU) per track; `use` must be resolved."""
        raw = self.tracks if self.tracks is not None else [
            Track(phases=self.phases, cpus=self.cpus)]
        out: list[tuple[list[Phase], list[int]]] = []
        for t in raw:
            if t.phases is None:
                raise ConfigError(f"track uses {t.use!r}, which was not resolved",
                                  location=f"workloads.{self.name}")
            width = 1 + max(c for p in t.phases for c in p.cpus)
            place = list(t.cpus) if t.cpus is not None else list(range(width))
            out.append((t.phases, place))
        return out

    def abs_cpus(self) -> list[int]:
        """Every CPU the workload runs on, ascending."""
        return sorted({place[c] for phases, place in self.placed_tracks()
                       for p in phases for c in p.cpus})


class WorkloadFile(Strict):
    """Top level of a workloads YAML file."""

    workloads: list[Workload] = Field(min_length=1)


def _check_and_resolve(wf: WorkloadFile, source: str) -> dict[str, Workload]:
    """Resolve `use:` references, check placements; returns workloads by name."""
    by_name: dict[str, Workload] = {}
    for i, w in enumerate(wf.workloads):
        if w.name in by_name:
            raise ConfigError(f"duplicate workload name {w.name!r}", source=source,
                              location=f"workloads[{i}].name")
        by_name[w.name] = w
    out: dict[str, Workload] = {}
    for i, w in enumerate(wf.workloads):
        where = f"workloads[{i}]"
        if w.tracks is not None:
            tracks = []
            for j, t in enumerate(w.tracks):
                if t.use is not None:
                    ref = by_name.get(t.use)
                    if ref is None or ref.phases is None:
                        raise ConfigError(f"unknown or multi-track workload {t.use!r}",
                                          source=source, location=f"{where}.tracks[{j}].use")
                    t = Track(phases=ref.phases, cpus=t.cpus if t.cpus is not None else ref.cpus)
                tracks.append(t)
            w = w.model_copy(update={"tracks": tracks})
        seen: set[int] = set()
        for j, (phases, place) in enumerate(w.placed_tracks()):
            loc = f"{where}.tracks[{j}].cpus" if w.tracks is not None else f"{where}.cpus"
            if len(set(place)) != len(place):
                raise ConfigError("placement lists a CPU twice", source=source, location=loc)
            for k, p in enumerate(phases):
                if max(p.cpus) >= len(place):
                    raise ConfigError(f"phase {p.name!r} uses track CPU {max(p.cpus)} but the "
                                      f"placement has {len(place)} CPUs", source=source,
                                      location=f"{loc} / phases[{k}].cpus")
            mine = {place[c] for p in phases for c in p.cpus}
            if mine & seen:
                raise ConfigError(f"tracks share CPUs {sorted(mine & seen)}", source=source,
                                  location=loc)
            seen |= mine
        out[w.name] = w
    return out


def parse_workloads(data: Any, source: str) -> dict[str, Workload]:
    """Validate already-parsed YAML data; errors name `source` and the field."""
    return _check_and_resolve(validate(WorkloadFile, data, source), source)


def load_workloads(path: Path | str) -> dict[str, Workload]:
    """Load a workloads YAML file (the suite.yaml format); returns workloads by name."""
    return parse_workloads(read_yaml(path), str(path))


def load_suite() -> dict[str, Workload]:
    """The built-in suite (memlat/sim/data/suite.yaml, workloads.md §7)."""
    res = resources.files("memlat.sim") / "data" / "suite.yaml"
    with resources.as_file(res) as path:
        return load_workloads(path)
