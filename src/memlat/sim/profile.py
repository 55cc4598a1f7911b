"""SoC simulation profile: CPU clusters, bus ladders, latency constants and power numbers.

One YAML file per SoC in memlat/sim/data/<soc>-power.yaml. Every number carries a
`source:` tag citing model-params.md (or "assumption"). The file describes the same chip
as the SoC profile (memlat/profiles/<soc>.yaml) from the simulator's side; the two share
CPU topology, CPU maxima and the DDR/LLCC ladders, and `cross_check` refuses a pair that
disagrees on any of them, naming both files and fields.

Cluster roles (`big`, `mid`, `little`) let a workload name where it runs without CPU
numbers (memlat.sim.workload): each role is an ordered list of cluster names, the first
with enough free CPUs taking the track. `roles:` in the file sets them; by default
`big` orders clusters by maximum MHz, highest first (file order among equals), `little`
is `big` reversed, and `mid` is `big` with its first two entries swapped.
"""

from __future__ import annotations

from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, PrivateAttr, model_validator

from memlat.config.model import SocConfig
from memlat.errors import ConfigError
from memlat.sim._yaml import Sourced, validate
from memlat.yamlfile import read_yaml


class VoltageLine(Sourced):
    """Core voltage as a straight line in frequency: V = a + b * f_GHz (model-params.md §3.4)."""

    a: float
    b_per_ghz: float


class CpuPower(Sourced):
    """Per-core power curve of one cluster.

    kind `cv2`: P = C * f * V(f)^2 (C in uW/(MHz*V^2), the DT energy-model unit,
    model-params.md §3.4). kind `table`: [MHz, mW] points, interpolated linearly and
    clamped to the end rows outside the table.
    """

    kind: Literal["cv2", "table"]
    coeff_uw_per_mhz_v2: float | None = None
    volt: VoltageLine | None = None
    table_mhz_mw: list[tuple[float, float]] | None = None
    cluster_static_mw: float = Field(ge=0)
    idle_core_mw: float = Field(ge=0)

    @model_validator(mode="after")
    def _complete(self) -> CpuPower:
        if self.kind == "cv2" and (self.coeff_uw_per_mhz_v2 is None or self.volt is None):
            raise ValueError("kind cv2 needs coeff_uw_per_mhz_v2 and volt")
        if self.kind == "table":
            if not self.table_mhz_mw or len(self.table_mhz_mw) < 2:
                raise ValueError("kind table needs at least two [MHz, mW] rows")
            mhz = [r[0] for r in self.table_mhz_mw]
            if mhz != sorted(mhz):
                raise ValueError("table_mhz_mw rows must be in ascending MHz")
        return self

    def core_mw(self, mhz: np.ndarray) -> np.ndarray:
        """Busy power of one core (mW) at `mhz` (vectorised)."""
        f = np.asarray(mhz, dtype=float)
        if self.kind == "cv2":
            assert self.volt is not None and self.coeff_uw_per_mhz_v2 is not None
            v = self.volt.a + self.volt.b_per_ghz * f / 1000.0
            return self.coeff_uw_per_mhz_v2 * f * v * v / 1000.0
        assert self.table_mhz_mw is not None
        xs = np.array([r[0] for r in self.table_mhz_mw])
        ys = np.array([r[1] for r in self.table_mhz_mw])
        return np.interp(f, xs, ys)


class Cluster(Sourced):
    """One CPU cluster: its CPUs, maximum frequency and power curve."""

    name: str
    cpus: list[int] = Field(min_length=1)
    max_mhz: float = Field(gt=0)
    power: CpuPower


class Latency(Sourced):
    """Latency constants of decisions.md §4 / model-params.md §1.3, and the queueing knee.

    L_llcc = l0 + k_llcc / f_llcc; L_ddr = L_llcc + d0 + k_ddr / f_ddr (ns, f in MHz).
    eta: fraction of the DDR peak that is achievable (the M/M/1 knee, model-params §1.4);
    rho_max caps the utilisation fed to rho/(1-rho) so the term stays finite.
    """

    l0_ns: float = Field(ge=0)
    k_llcc_ns_mhz: float = Field(ge=0)
    d0_ns: float = Field(ge=0)
    k_ddr_ns_mhz: float = Field(ge=0)
    eta: float = Field(gt=0, le=1)
    rho_max: float = Field(gt=0, lt=1)
    llcc_queueing: bool = False


class Bus(Sourced):
    """One bus (DDR or LLCC): its ladder, width, background power per OPP, energy per byte."""

    ladder_mhz: list[float] = Field(min_length=1)
    channels: int = Field(gt=0)
    bytes_per_cycle: float = Field(gt=0)
    opp_mw: list[float] = Field(min_length=1)
    pj_per_byte: float = Field(ge=0)

    @model_validator(mode="after")
    def _aligned(self) -> Bus:
        if len(self.opp_mw) != len(self.ladder_mhz):
            raise ValueError(f"opp_mw has {len(self.opp_mw)} values but ladder_mhz has "
                             f"{len(self.ladder_mhz)}")
        if self.ladder_mhz != sorted(self.ladder_mhz):
            raise ValueError("ladder_mhz must be ascending")
        return self

    @property
    def min_mhz(self) -> float:
        """Lowest OPP."""
        return self.ladder_mhz[0]

    @property
    def max_mhz(self) -> float:
        """Highest OPP."""
        return self.ladder_mhz[-1]

    def peak_bytes_per_us(self, mhz: float) -> float:
        """Peak bandwidth in bytes/us (= MB/s) at `mhz`: f * bytes_per_cycle * channels."""
        return mhz * self.bytes_per_cycle * self.channels

    def power_mw(self, mhz: float) -> float:
        """Background (static + clocked) power at `mhz`, interpolated between OPPs."""
        return float(np.interp(mhz, self.ladder_mhz, self.opp_mw))


ROLES = ("big", "mid", "little")


class SimProfile(Sourced):
    """Everything the closed-loop model needs to know about one SoC."""

    soc: str
    clusters: list[Cluster] = Field(min_length=1)
    latency: Latency
    ddr: Bus
    llcc: Bus
    const_counter_mhz: float | None = None  # None: ticks at the cluster maximum (docs/model.md)
    roles: dict[str, list[str]] | None = None

    _path: str = PrivateAttr(default="")

    @model_validator(mode="after")
    def _cpus(self) -> SimProfile:
        seen: list[int] = sorted(c for cl in self.clusters for c in cl.cpus)
        if seen != list(range(len(seen))):
            raise ValueError(f"cluster cpus must cover 0..N-1 exactly once, got {seen}")
        names = [cl.name for cl in self.clusters]
        if len(set(names)) != len(names):
            raise ValueError(f"cluster names must be distinct, got {names}")
        for role, order in (self.roles or {}).items():
            unknown = [n for n in order if n not in names]
            if unknown or not order:
                raise ValueError(f"roles.{role} must list cluster names ({', '.join(names)}), "
                                 f"got {order}")
        return self

    @property
    def path(self) -> str:
        """The file this profile was read from ("" when built in memory)."""
        return self._path

    def role_order(self, role: str) -> list[Cluster]:
        """Clusters a track placed by `role` may use, in preference order.

        `role` is big/mid/little (or a role from the file's `roles:`), or a cluster's own
        name. Raises ConfigError for anything else.
        """
        by_name = {cl.name: cl for cl in self.clusters}
        if self.roles and role in self.roles:
            return [by_name[n] for n in self.roles[role]]
        if role in by_name:
            return [by_name[role]]
        fast = sorted(self.clusters, key=lambda cl: -cl.max_mhz)  # stable: file order
        if role == "big":
            return fast
        if role == "little":
            return fast[::-1]
        if role == "mid":
            return fast[1:2] + fast[:1] + fast[2:]
        have = sorted({*ROLES, *(self.roles or {}), *by_name})
        raise ConfigError(f"unknown cluster role {role!r} for {self.soc} (have: "
                          f"{', '.join(have)})", source=self.path or None)

    @cached_property
    def ncpus(self) -> int:
        """Number of CPUs."""
        return sum(len(c.cpus) for c in self.clusters)

    @cached_property
    def cluster_of(self) -> np.ndarray:
        """cluster_of[cpu] = index of its cluster."""
        out = np.zeros(self.ncpus, dtype=np.int64)
        for i, cl in enumerate(self.clusters):
            out[cl.cpus] = i
        return out

    @cached_property
    def cpu_max_mhz(self) -> np.ndarray:
        """Per-CPU cluster maximum frequency (MHz)."""
        return np.array([self.clusters[k].max_mhz for k in self.cluster_of], dtype=float)

    def all_missing_sources(self) -> list[str]:
        """Dotted names of parameters without a citation (empty when fully cited)."""
        out = [f"{self.soc}.{f}" for f in self.missing_sources()]
        parts: list[tuple[str, Sourced]] = [("latency", self.latency), ("ddr", self.ddr),
                                            ("llcc", self.llcc)]
        for cl in self.clusters:
            parts += [(f"clusters.{cl.name}", cl), (f"clusters.{cl.name}.power", cl.power)]
            if cl.power.volt is not None:
                parts.append((f"clusters.{cl.name}.power.volt", cl.power.volt))
        for name, part in parts:
            out += [f"{name}.{f}" for f in part.missing_sources()]
        return out


BUILTIN_PROFILES = ("x1e80100", "x1p42100", "glymur", "kaanapali", "sm8550", "sm8650")


def load_profile(name_or_path: str | Path) -> SimProfile:
    """Load a built-in profile by SoC name, or a profile YAML file by path."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        data, source = read_yaml(p), str(p)
    else:
        fname = f"{name_or_path}-power.yaml"
        res = resources.files("memlat.sim") / "data" / fname
        if not res.is_file():
            raise ConfigError(f"no built-in simulation profile for SoC {name_or_path!r} "
                              f"(have: {', '.join(BUILTIN_PROFILES)})", source=fname)
        with resources.as_file(res) as path:
            data, source = read_yaml(path), str(path)
    prof = validate(SimProfile, data, source)
    prof._path = source
    return prof


def _mhz(value: float) -> str:
    return f"{value:g}"


def cross_check(soc: SocConfig, soc_file: str, profile: SimProfile) -> None:
    """Refuse a SoC profile and a simulation profile that describe different chips.

    Checked: the SoC name, the CPU count, the cluster of every CPU (the same partition),
    each CPU's max_mhz against its simulation cluster's max_mhz (when the SoC profile
    gives one), and the ladders of the `ddr` and `llcc` groups (kHz) against the
    simulation buses' ladder_mhz. Raises ConfigError naming both files and both fields.
    """
    sim_file = profile.path or f"{profile.soc}-power.yaml"

    def refuse(soc_field: str, soc_value: object, sim_field: str, sim_value: object) -> None:
        raise ConfigError(f"the SoC profile and the simulation profile disagree: {soc_file} "
                          f"{soc_field} is {soc_value} but {sim_file} {sim_field} is "
                          f"{sim_value}", source=sim_file, location=sim_field)

    if soc.name != profile.soc:
        refuse("soc.name", soc.name, "soc", profile.soc)
    if soc.ncpus != profile.ncpus:
        refuse("cpus", f"{soc.ncpus} CPUs", "clusters[*].cpus", f"{profile.ncpus} CPUs")
    soc_cluster_of_sim: dict[int, int] = {}
    sim_cluster_of_soc: dict[int, int] = {}
    for k, cl in enumerate(profile.clusters):
        for cpu in cl.cpus:
            c = soc.cpus[cpu]
            where = f"clusters[{k}].cpus ({cl.name})"
            first = soc_cluster_of_sim.setdefault(k, c.cluster)
            if first != c.cluster:
                refuse(f"cpus[{cpu}].cluster", c.cluster, where,
                       f"a list holding CPUs of SoC clusters {first} and {c.cluster}")
            other = sim_cluster_of_soc.setdefault(c.cluster, k)
            if other != k:
                refuse(f"cpus[{cpu}].cluster", c.cluster, where,
                       f"a different cluster from clusters[{other}] "
                       f"({profile.clusters[other].name})")
            if c.max_mhz is not None and c.max_mhz != cl.max_mhz:
                refuse(f"cpus[{cpu}].max_mhz", c.max_mhz, f"clusters[{k}].max_mhz ({cl.name})",
                       _mhz(cl.max_mhz))
    groups = {g.name: (gi, g) for gi, g in enumerate(soc.groups)}
    for bus_name, bus in (("ddr", profile.ddr), ("llcc", profile.llcc)):
        if bus_name not in groups:
            continue
        gi, g = groups[bus_name]
        sim_khz = [round(f * 1000) for f in bus.ladder_mhz]
        if g.is_level or list(g.ladder) != sim_khz:
            refuse(f"groups[{gi}].ladder ({bus_name}, kHz)", list(g.ladder),
                   f"{bus_name}.ladder_mhz", [_mhz(f) for f in bus.ladder_mhz])
