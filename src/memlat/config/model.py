"""The SoC configuration model: what the memlat agent programs into the firmware.

One `SocConfig` describes a platform the way protocol.md §3 tables do: SoC identity, CPUs,
memory groups in table order, each with its monitors in table order, plus the global
settings (events, sample period, effective-frequency method). It is plain data with
semantic validation; loading it from YAML profiles (profiles.py) or device trees (dt.py)
and converting it for the governor (governor.py) live elsewhere.

Units follow the wire (protocol.md §2.4): ladders, min and max in kHz (or a 0/1 level in a
level group), map rows as (cpu MHz, mem MHz or level).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from memlat.cpucp.hardware import CpucpHardware, GroupHardware
from memlat.cpucp.state import CpucpLimits
from memlat.errors import ConfigError
from memlat.qcom.dialect import Dialect
from memlat.yamlfile import loc_to_path

UNUSED_EVENT = 0xFF  # protocol.md §2.3
ALL_GROUPS = 0xFF  # hw_type sentinel of the common event map (protocol.md §2.3)

# The firmware's table limits (decisions.md §2), owned by the emulated CPUCP; rows per
# map are a dialect rule (memlat.qcom.dialect).
MAX_GROUPS = CpucpLimits().max_groups
MAX_MONITORS_PER_GROUP = CpucpLimits().max_monitors
MON_NAME_MAX = 19  # char mon_name[20], NUL-terminated (protocol.md §2.3)
MAX_CPUS = 32  # cpumasks are u32 on the wire
U16_MAX = 0xFFFF
U32_MAX = 0xFFFF_FFFF

# Optional per-monitor knobs, in param_id order (protocol.md §2.4). The agent sends one of
# them only when the configuration sets it (not None); otherwise the firmware default of
# decisions.md §2 applies.
OPTIONAL_KNOBS: tuple[tuple[str, str], ...] = (
    ("fe_stall_floor", "FE_STALL_FLOOR"),
    ("wb_pct", "WB_PCT"),
    ("ipm_filter", "IPM_FILTER"),
    ("freq_scale_pct", "FREQ_SCALE_PCT"),
    ("freq_scale_ceil_mhz", "FREQ_SCALE_CEIL_MHZ"),
    ("freq_scale_floor_mhz", "FREQ_SCALE_FLOOR_MHZ"),
)


def _to_mask(value: Any) -> Any:
    """Accept a cpumask as an int, a "0x..." string, or a list of CPU numbers."""
    if isinstance(value, str):
        try:
            return int(value, 0)
        except ValueError as exc:
            raise ValueError(f"cpumask {value!r} is not a number") from exc
    if isinstance(value, list | tuple):
        mask = 0
        for cpu in value:
            if not isinstance(cpu, int) or isinstance(cpu, bool) or not 0 <= cpu < MAX_CPUS:
                raise ValueError(f"CPU number {cpu!r} is not in 0..{MAX_CPUS - 1}")
            mask |= 1 << cpu
        return mask
    return value


CpuMask = Annotated[int, BeforeValidator(_to_mask), Field(ge=0, le=U32_MAX)]
U32 = Annotated[int, Field(ge=0, le=U32_MAX)]
Percent = Annotated[int, Field(ge=0, le=100)]


def mask_cpus(mask: int) -> list[int]:
    """CPU numbers set in `mask`, ascending."""
    return [c for c in range(mask.bit_length()) if mask >> c & 1]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=False)


class Identity(_Model):
    """Who the SoC is and where its numbers come from."""

    name: str = Field(min_length=1, description="profile name, e.g. x1e80100")
    compatible: list[str] = Field(default_factory=list, description="root compatibles")
    aliases: list[str] = Field(default_factory=list, description="other names, e.g. hamoa")
    description: str = ""
    source: str = Field("", description="citation of the tables (spec section, file)")


class Cpu(_Model):
    """One logical CPU: its cluster and the cluster's maximum frequency.

    max_mhz feeds effective-frequency method 0 only (decisions.md §2); None means unknown
    (the governor then uses the highest CPU MHz in the maps that cover this CPU).
    """

    id: int = Field(ge=0, lt=MAX_CPUS)
    cluster: int = Field(0, ge=0)
    max_mhz: int | None = Field(None, gt=0)


class CommonEventMap(_Model):
    """The common event map (protocol.md §2.3): CPUCP counter ids per slot, 0xFF = unused."""

    inst: int = Field(2, ge=0, le=0xFF)
    cyc: int = Field(0, ge=0, le=0xFF)
    const_cyc: int = Field(1, ge=0, le=0xFF)
    fe_stall: int = Field(UNUSED_EVENT, ge=0, le=0xFF)
    be_stall: int = Field(3, ge=0, le=0xFF)

    def slots(self, dialect: Dialect | str) -> list[int]:
        """The cid slots sent, in the dialect's order: 5 for v8 [INST, CYC, CONST, FE, BE];
        4 for rfc2024 (no CONST)."""
        return [getattr(self, name) for name in Dialect(dialect).common_event_order]


class GroupEventMap(_Model):
    """A group's event map (protocol.md §2.3): MISS, WB, ACC counter ids."""

    miss: int = Field(5, ge=0, le=0xFF)
    wb: int = Field(UNUSED_EVENT, ge=0, le=0xFF)
    acc: int = Field(UNUSED_EVENT, ge=0, le=0xFF)

    def slots(self) -> list[int]:
        """[MISS, WB, ACC] (num_evs 3 on the wire)."""
        return [self.miss, self.wb, self.acc]


class Monitor(_Model):
    """One monitor of a group (protocol.md §2.3, §3.5).

    `map` rows are (cpu MHz, mem MHz or level) in table order. `compute` is mon_type 1;
    clients set it exactly when ipm_ceil is 0 (protocol.md §2.3), which validation enforces.
    `be_stall_floor` is always sent by v8 (1 for IPM monitors, 0 for compute ones in the
    upstream tables); the optional knobs (None = not sent) are sent only when set.
    """

    name: str = ""
    cpus: CpuMask
    compute: bool = False
    ipm_ceil: U32 | None = None
    be_stall_floor: Percent | None = None
    fe_stall_floor: Percent | None = None
    wb_pct: Percent | None = None
    ipm_filter: U32 | None = None
    freq_scale_pct: Annotated[int, Field(ge=0, le=1000)] | None = None
    freq_scale_floor_mhz: Annotated[int, Field(ge=0, le=U16_MAX)] | None = None
    freq_scale_ceil_mhz: Annotated[int, Field(ge=0, le=U16_MAX)] | None = None
    map: list[tuple[int, int]] = Field(default_factory=list)

    @property
    def mon_type(self) -> int:
        """0 = IPM (latency) monitor, 1 = compute monitor (protocol.md §2.3)."""
        return 1 if self.compute else 0

    @property
    def cpumask(self) -> int:
        """The monitor's cpumask as sent in SET_MONITOR."""
        return self.cpus

    @property
    def ipm(self) -> int:
        """The IPM_CEIL value sent (0 for compute monitors)."""
        return 0 if self.ipm_ceil is None else self.ipm_ceil

    @property
    def be_floor(self) -> int:
        """The BE_STALL_FLOOR value v8 sends: explicit, else 1 (IPM) or 0 (compute)."""
        if self.be_stall_floor is not None:
            return self.be_stall_floor
        return 0 if self.compute else 1

    def optional_knobs(self) -> list[tuple[str, int]]:
        """Optional knobs set in the configuration, as (param name, value) in param_id order."""
        out = []
        for attr, param in OPTIONAL_KNOBS:
            value = getattr(self, attr)
            if value is not None:
                out.append((param, value))
        return out

    def scalar_params(self, dialect: Dialect | str) -> list[tuple[str, int]]:
        """Scalar SETs between SET_MONITOR and MON_FREQ_MAP, in send order.

        v8: IPM_CEIL, BE_STALL_FLOOR, then the optional knobs that are set (protocol.md
        §3.5). rfc2024: IPM_CEIL, then the optional knobs (protocol.md §4.4 sends no
        BE_STALL_FLOOR).
        """
        out = [("IPM_CEIL", self.ipm)]
        if Dialect(dialect).rules.sends_be_stall_floor:
            out.append(("BE_STALL_FLOOR", self.be_floor))
        return out + self.optional_knobs()

    def wire_name(self, index: int, dialect: Dialect | str) -> str:
        """The mon_name sent: the configured name, else "mon_<i>" (v8) / "monitor-<i>"."""
        return self.name or Dialect(dialect).rules.monitor_name(index)


class Group(_Model):
    """One memory group (one bus, one devfreq device) with its monitors in table order.

    `ladder` is the OPP list: kHz ascending (unit "khz"), or levels 0/1 (unit "level",
    DDR_QOS). `min`/`max` default to the ladder ends. `cpus` is the group cpumask
    (SET_MEM_GROUP in v8; default: every CPU of the SoC).
    """

    hw_type: int = Field(ge=0, lt=ALL_GROUPS)
    name: str = Field(min_length=1)
    unit: Literal["khz", "level"] = "khz"
    ladder: list[int] = Field(min_length=1)
    min: int | None = Field(None, ge=0, le=U32_MAX)
    max: int | None = Field(None, ge=0, le=U32_MAX)
    cpus: CpuMask | None = None
    events: GroupEventMap = Field(default_factory=GroupEventMap)
    adaptive_low_khz: U32 | None = None
    adaptive_high_khz: U32 | None = None
    monitors: list[Monitor] = Field(min_length=1)

    @property
    def is_level(self) -> bool:
        """A level group (DDR_QOS): map values and min/max are 0/1 levels."""
        return self.unit == "level"

    @property
    def key(self) -> str:
        """Identifier used in results and replay CSV ("ddr-qos" -> "ddr_qos", decisions.md §5)."""
        return self.name.replace("-", "_")

    @property
    def min_value(self) -> int:
        """SET_MIN_FREQ value: kHz, or a level."""
        return self.ladder[0] if self.min is None else self.min

    @property
    def max_value(self) -> int:
        """SET_MAX_FREQ value: kHz, or a level."""
        return self.ladder[-1] if self.max is None else self.max

    def opp_hz(self) -> list[int]:
        """devfreq OPP list in Hz; level groups use synthetic 1 Hz / 100 Hz (protocol.md §3.2)."""
        if self.is_level:
            return [100 if lvl else 1 for lvl in self.ladder]
        return [khz * 1000 for khz in self.ladder]

    def map_range(self) -> tuple[int, int]:
        """Allowed map values: the ladder range in MHz (floor/ceil of kHz), or levels."""
        if self.is_level:
            return self.ladder[0], self.ladder[-1]
        return self.ladder[0] // 1000, math.ceil(self.ladder[-1] / 1000)


class SocConfig(_Model):
    """A whole platform: identity, CPUs, groups in table order, global settings.

    `dialect` is the default wire dialect (decisions.md §1). `static_hw_masks` marks a
    profile whose monitor masks are the driver's static hardware masks and may name CPUs
    the part lacks (X1P42100, protocol.md §5 point 7): such bits are reported in
    `warnings` instead of refused, and dropped when converting for the governor.
    """

    soc: Identity
    dialect: Dialect = Dialect.V8
    static_hw_masks: bool = False
    cpus: list[Cpu] = Field(min_length=1, max_length=MAX_CPUS)
    sample_ms: int = Field(4, ge=1, le=1000)
    freq_method: int = Field(1, ge=0, le=1)
    common_events: CommonEventMap = Field(default_factory=CommonEventMap)
    groups: list[Group] = Field(min_length=1)

    _warnings: list[str] = PrivateAttr(default_factory=list)

    @model_validator(mode="after")
    def _semantics(self) -> SocConfig:
        self._warnings = check(self)
        return self

    # ---- convenience views -------------------------------------------------------------

    @property
    def name(self) -> str:
        """The SoC profile name."""
        return self.soc.name

    @property
    def warnings(self) -> list[str]:
        """Accepted oddities (non-ascending rfc2024 rows, static masks beyond the CPUs)."""
        return list(self._warnings)

    @property
    def ncpus(self) -> int:
        """Number of logical CPUs."""
        return len(self.cpus)

    @property
    def possible_mask(self) -> int:
        """Mask of every logical CPU (the v8 SET_MEM_GROUP cpumask, protocol.md §3.5)."""
        return (1 << self.ncpus) - 1

    def group_mask(self, group: Group) -> int:
        """The group cpumask: explicit, else every CPU."""
        return self.possible_mask if group.cpus is None else group.cpus

    def mem_group_cpumask(self, group: Group, dialect: Dialect | str | None = None) -> int:
        """The SET_MEM_GROUP cpumask sent: the group mask (v8), 0 (rfc2024, protocol.md §4.4)."""
        rules = Dialect(dialect or self.dialect).rules
        return self.group_mask(group) if rules.sends_group_cpumask else 0

    def monitors(self) -> list[tuple[Group, int, Monitor]]:
        """(group, mon_idx, monitor) in table order."""
        return [(g, i, m) for g in self.groups for i, m in enumerate(g.monitors)]

    def group(self, name: str) -> Group:
        """The group named `name` (or its key, e.g. ddr_qos)."""
        for g in self.groups:
            if name in (g.name, g.key):
                return g
        raise ConfigError(f"no group named {name!r}", source=self.name, location="groups")

    def command_count(self, dialect: Dialect | str | None = None) -> int:
        """SCMI commands of the probe sequence (protocol.md §3.5 / §4.4), base traffic excluded.

        1 COMMON_EV_MAP + per group (SET_MEM_GROUP, GRP_EV_MAP, adaptive knobs if set,
        per monitor SET_MONITOR + scalars + MAP + MIN + MAX) + SAMPLE_MS
        (+ SET_EFFECTIVE_FREQ_METHOD in v8) + START_TIMER.
        """
        d = Dialect(dialect or self.dialect)
        n = 1
        for g in self.groups:
            n += 2 + (g.adaptive_low_khz is not None) + (g.adaptive_high_khz is not None)
            n += sum(1 + len(m.scalar_params(d)) + 3 for m in g.monitors)
        return n + 2 + d.rules.sends_freq_method

    def cluster_max_mhz(self) -> tuple[int, ...]:
        """Per-CPU cluster maximum MHz: the profile value, else the highest CPU MHz of the
        maps whose monitors cover that CPU (0 when none does)."""
        out = []
        for cpu in self.cpus:
            if cpu.max_mhz is not None:
                out.append(cpu.max_mhz)
                continue
            covering = [row[0] for _, _, m in self.monitors() if m.cpus >> cpu.id & 1
                        for row in m.map]
            out.append(max(covering, default=0))
        return tuple(out)

    def hardware(self, *, enforce_limits: bool = False) -> CpucpHardware:
        """What the SoC's CPUCP firmware knows without the OS telling it: CPU count,
        cluster maxima, its buses (names, OPP and map ranges) and the CPU bits of its
        static tables. enforce_limits: the firmware refuses what does not fit (a served
        platform, docs/cpucp.md)."""
        groups = []
        for g in self.groups:
            lo, hi = g.map_range()
            groups.append(GroupHardware(g.hw_type, g.name, g.key, g.ladder[0], g.ladder[-1],
                                        lo, hi))
        static = 0
        for g, _idx, mon in self.monitors():
            static |= self.group_mask(g) | mon.cpumask
        return CpucpHardware(ncpus=self.ncpus, cluster_max_mhz=self.cluster_max_mhz(),
                             groups=tuple(groups), static_mask=static,
                             enforce_limits=enforce_limits)

    def with_dialect(self, dialect: Dialect | str) -> SocConfig:
        """The same configuration checked and defaulted for another dialect."""
        if dialect == self.dialect:
            return self
        data = self.model_dump()
        data["dialect"] = dialect
        return parse_soc(data, source=self.name)


def check(soc: SocConfig) -> list[str]:
    """Semantic validation; raise ConfigError naming the field path, return warnings."""
    warnings: list[str] = []
    dialect = soc.dialect
    ids = [c.id for c in soc.cpus]
    if ids != list(range(len(ids))):
        raise ConfigError(f"CPU ids must be 0..{len(ids) - 1} in order, got {ids}",
                          location="cpus")
    present = soc.possible_mask
    if len(soc.groups) > MAX_GROUPS:
        raise ConfigError(f"{len(soc.groups)} groups, the firmware takes at most {MAX_GROUPS}",
                          location="groups")
    seen_hw: dict[int, str] = {}
    seen_names: set[str] = set()
    max_rows = Dialect(dialect).map_rows
    for gi, g in enumerate(soc.groups):
        gp = f"groups[{gi}]"
        if g.hw_type in seen_hw:
            raise ConfigError(f"hw_type {g.hw_type} already used by group {seen_hw[g.hw_type]!r}",
                              location=f"{gp}.hw_type")
        seen_hw[g.hw_type] = g.name
        if g.name in seen_names:
            raise ConfigError(f"duplicate group name {g.name!r}", location=f"{gp}.name")
        seen_names.add(g.name)
        _check_ladder(g, gp)
        gmask = soc.group_mask(g)
        if gmask & ~present and not soc.static_hw_masks:
            raise ConfigError(f"group {g.name!r} cpumask {gmask:#x} names CPUs outside the "
                              f"SoC's {soc.ncpus} CPUs ({present:#x})", location=f"{gp}.cpus")
        if len(g.monitors) > MAX_MONITORS_PER_GROUP:
            raise ConfigError(f"group {g.name!r} has {len(g.monitors)} monitors, the firmware "
                              f"takes at most {MAX_MONITORS_PER_GROUP}", location=f"{gp}.monitors")
        mon_names: set[str] = set()
        for mi, m in enumerate(g.monitors):
            mp = f"{gp}.monitors[{mi}]"
            label = f"{g.name}/{m.wire_name(mi, dialect)}"
            name = m.wire_name(mi, dialect)
            if not name.isascii() or len(name) > MON_NAME_MAX:
                raise ConfigError(f"monitor name {name!r} must be ASCII of at most "
                                  f"{MON_NAME_MAX} bytes", location=f"{mp}.name")
            if name in mon_names:
                raise ConfigError(f"duplicate monitor name {name!r} in group {g.name!r}",
                                  location=f"{mp}.name")
            mon_names.add(name)
            _check_monitor_mask(soc, g, m, gmask, present, label, mp, warnings)
            _check_monitor_type(m, label, mp)
            _check_map(g, m, label, mp, max_rows, dialect, warnings)
    return warnings


def _check_ladder(g: Group, gp: str) -> None:
    lad = g.ladder
    for i in range(1, len(lad)):
        if lad[i] <= lad[i - 1]:
            raise ConfigError(f"group {g.name!r} ladder must be strictly ascending: "
                              f"{lad[i - 1]} then {lad[i]}", location=f"{gp}.ladder[{i}]")
    if g.is_level and not set(lad) <= {0, 1}:
        raise ConfigError(f"level group {g.name!r} ladder may hold only levels 0 and 1, "
                          f"got {lad}", location=f"{gp}.ladder")
    if g.min_value > g.max_value:
        raise ConfigError(f"group {g.name!r} min {g.min_value} is above max {g.max_value}",
                          location=f"{gp}.min")
    for field, value in (("min", g.min_value), ("max", g.max_value)):
        if not lad[0] <= value <= lad[-1]:
            unit = "level" if g.is_level else "kHz"
            raise ConfigError(f"group {g.name!r} {field} {value} {unit} is outside the ladder "
                              f"{lad[0]}..{lad[-1]}", location=f"{gp}.{field}")


def _check_monitor_mask(soc: SocConfig, g: Group, m: Monitor, gmask: int, present: int,
                        label: str, mp: str, warnings: list[str]) -> None:
    if m.cpus == 0:
        raise ConfigError(f"monitor {label} has an empty cpumask", location=f"{mp}.cpus")
    outside_soc = m.cpus & ~present
    outside_group = m.cpus & ~gmask
    if soc.static_hw_masks:
        if outside_soc or outside_group:
            warnings.append(f"{mp}.cpus: monitor {label} static mask {m.cpus:#x} names CPUs "
                            f"{mask_cpus(outside_soc | outside_group)} that this part lacks; "
                            "sent as is, ignored by the governor")
        return
    if outside_soc:
        raise ConfigError(f"monitor {label} cpumask {m.cpus:#x} names CPUs "
                          f"{mask_cpus(outside_soc)} outside the SoC's {soc.ncpus} CPUs",
                          location=f"{mp}.cpus")
    if outside_group:
        raise ConfigError(f"monitor {label} cpumask {m.cpus:#x} names CPUs "
                          f"{mask_cpus(outside_group)} outside group {g.name!r} cpumask "
                          f"{gmask:#x}", location=f"{mp}.cpus")


def _check_monitor_type(m: Monitor, label: str, mp: str) -> None:
    if m.compute and m.ipm_ceil not in (None, 0):
        raise ConfigError(f"compute monitor {label} must have ipm_ceil 0 (protocol.md §2.3), "
                          f"got {m.ipm_ceil}", location=f"{mp}.ipm_ceil")
    if not m.compute and not m.ipm_ceil:
        raise ConfigError(f"IPM monitor {label} needs a non-zero ipm_ceil (ipm_ceil 0 means "
                          "a compute monitor, protocol.md §2.3)", location=f"{mp}.ipm_ceil")


def _check_map(g: Group, m: Monitor, label: str, mp: str, max_rows: int, dialect: Dialect,
               warnings: list[str]) -> None:
    rows = m.map
    if not rows:
        raise ConfigError(f"monitor {label} has no map rows", location=f"{mp}.map")
    if len(rows) > max_rows:
        raise ConfigError(f"monitor {label} has {len(rows)} map rows, {dialect} allows at most "
                          f"{max_rows}", location=f"{mp}.map")
    lo, hi = g.map_range()
    unit = "level" if g.is_level else "MHz"
    for ri, (cpu_mhz, mem) in enumerate(rows):
        rp = f"{mp}.map[{ri}]"
        if not 0 < cpu_mhz <= U16_MAX:
            raise ConfigError(f"monitor {label} row {ri}: cpu MHz {cpu_mhz} is not in "
                              f"1..{U16_MAX}", location=f"{rp}.cpu_mhz")
        if not lo <= mem <= hi:
            raise ConfigError(f"monitor {label} row {ri}: mem value {mem} {unit} is outside "
                              f"group {g.name!r} ladder range {lo}..{hi} {unit}",
                              location=f"{rp}.mem")
        if ri and cpu_mhz <= rows[ri - 1][0]:
            msg = (f"monitor {label} rows must ascend by cpu MHz: row {ri - 1} has "
                   f"{rows[ri - 1][0]}, row {ri} has {cpu_mhz}")
            if dialect.rules.keeps_unsorted_maps:
                # our firmware refuses it with INVALID_PARAMETERS
                warnings.append(f"{rp}.cpu_mhz: {msg} (kept for rfc2024 fidelity)")
            else:
                raise ConfigError(msg, location=f"{rp}.cpu_mhz")


def parse_soc(data: Any, source: str | None = None) -> SocConfig:
    """Validate `data` into a SocConfig; any problem becomes a ConfigError naming
    `source` (the file) and the field path."""
    try:
        return SocConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        inner = (err.get("ctx") or {}).get("error")
        if isinstance(inner, ConfigError):
            loc = inner.location
            msg = str(inner)
            if loc and msg.startswith(f"{loc}: "):
                msg = msg[len(loc) + 2:]
            raise ConfigError(msg, source=source, location=loc) from None
        location = loc_to_path(tuple(err["loc"]))
        raise ConfigError(err["msg"], source=source, location=location) from None
