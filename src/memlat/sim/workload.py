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
Phase `cpus` are track-relative. A track is placed on real CPUs by a cluster role or
explicitly:

* `cluster: big` (or `mid`, `little`, or a cluster's own name from the simulation
  profile): the track takes the next free CPUs of the first cluster in that role's
  preference order (memlat.sim.profile.SimProfile.role_order) that has enough of them;
  one track never spans two clusters. Tracks are placed in file order, after every
  explicitly placed track.
* `cpus: [8, 9]`: explicit CPU numbers, checked against the SoC's CPU count.
* neither: the track-relative CPUs are the CPU numbers (CPU 0 up), as explicit.

So the same workload file runs on every SoC: `placed_tracks(profile)` resolves it.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from memlat.errors import ConfigError
from memlat.sim._yaml import Sourced, Strict, validate
from memlat.sim.profile import SimProfile
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
    """A sequence of phases on a set of CPUs: inline `phases`, or `use` another workload.

    Placement: `cluster` (a role or cluster name) or `cpus` (explicit), not both.
    """

    phases: list[Phase] | None = None
    use: str | None = None
    cpus: list[int] | None = None
    cluster: str | None = None

    @model_validator(mode="after")
    def _one(self) -> Track:
        if (self.phases is None) == (self.use is None):
            raise ValueError("a track needs exactly one of phases and use")
        if self.phases is not None and not self.phases:
            raise ValueError("a track needs at least one phase")
        if self.cpus is not None and self.cluster is not None:
            raise ValueError("give cluster (a role) or cpus (explicit CPUs), not both")
        return self

    @property
    def width(self) -> int:
        """CPUs the track needs: one more than its highest track-relative CPU."""
        assert self.phases is not None
        return 1 + max(c for p in self.phases for c in p.cpus)


class Workload(Strict):
    """A named workload: `phases` (one track, optionally placed by `cpus`) or `tracks`."""

    name: str
    description: str = ""
    phases: list[Phase] | None = None
    cpus: list[int] | None = None
    cluster: str | None = None
    tracks: list[Track] | None = None

    @model_validator(mode="after")
    def _shape(self) -> Workload:
        if (self.phases is None) == (self.tracks is None):
            raise ValueError("a workload needs exactly one of phases and tracks")
        if self.phases is not None and not self.phases:
            raise ValueError("a workload needs at least one phase")
        if self.tracks is not None and (self.cpus is not None or self.cluster is not None):
            raise ValueError("placement (cpus or cluster) goes on each track when tracks are "
                             "used")
        if self.cpus is not None and self.cluster is not None:
            raise ValueError("give cluster (a role) or cpus (explicit CPUs), not both")
        return self

    def track_list(self) -> list[Track]:
        """The tracks (a single-track workload as one Track); `use` must be resolved."""
        raw = self.tracks if self.tracks is not None else [
            Track(phases=self.phases, cpus=self.cpus, cluster=self.cluster)]
        for t in raw:
            if t.phases is None:
                raise ConfigError(f"track uses {t.use!r}, which was not resolved",
                                  location=f"workloads.{self.name}")
        return raw

    def track_phases(self) -> list[list[Phase]]:
        """Each track's phases (no placement needed)."""
        return [t.phases or [] for t in self.track_list()]

    def placed_tracks(self, profile: SimProfile) -> list[tuple[list[Phase], list[int]]]:
        """(phases, absolute CPU of each track-relative CPU) per track, on `profile`'s CPUs.

        Explicit `cpus` are kept (the executor checks them against the CPU count); role
        tracks take free CPUs by the rule in the module docstring. Raises ConfigError
        naming the workload and track when a role's clusters have no room.
        """
        tracks = self.track_list()
        fixed = [None if t.cluster is not None else
                 list(t.cpus) if t.cpus is not None else list(range(t.width)) for t in tracks]
        used = {c for place in fixed if place is not None for c in place}
        places: list[list[int]] = []
        for j, t in enumerate(tracks):
            if t.cluster is None:
                places.append(fixed[j] or [])
                continue
            role = t.cluster
            order = profile.role_order(role)
            for cl in order:
                free = [c for c in cl.cpus if c not in used]
                if len(free) >= t.width:
                    place = free[:t.width]
                    used.update(place)
                    places.append(place)
                    break
            else:
                where = (f"workloads.{self.name}.tracks[{j}].cluster" if self.tracks is not None
                         else f"workloads.{self.name}.cluster")
                room = ", ".join(f"{cl.name} {len([c for c in cl.cpus if c not in used])}"
                                 for cl in order)
                raise ConfigError(f"no room for {t.width} CPU(s) of role {role!r} on "
                                  f"{profile.soc}: free CPUs per cluster in role order: "
                                  f"{room}", location=where)
        return [(t.phases or [], place) for t, place in zip(tracks, places, strict=True)]

    def abs_cpus(self, profile: SimProfile) -> list[int]:
        """Every CPU the workload runs on (placed on `profile`), ascending."""
        return sorted({place[c] for phases, place in self.placed_tracks(profile)
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
                    explicit = t.cpus is not None or t.cluster is not None
                    t = Track(phases=ref.phases,
                              cpus=t.cpus if explicit else ref.cpus,
                              cluster=t.cluster if explicit else ref.cluster)
                tracks.append(t)
            w = w.model_copy(update={"tracks": tracks})
        seen: set[int] = set()
        for j, t in enumerate(w.track_list()):
            if t.cluster is not None:  # placed by role on a SoC (placed_tracks)
                continue
            place = list(t.cpus) if t.cpus is not None else list(range(t.width))
            phases = t.phases or []
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
