"""What the emulated CPUCP knows about the SoC it runs on: its CPUs and memory groups.

Real firmware is built for one part: it cannot count CPUs it does not have, vote for a
bus it does not drive, or set a frequency outside that bus's OPP table. `CpucpHardware`
carries those facts (plus each CPU's cluster maximum and the buses' names), handed to
`CpucpService` at boot; `SocConfig.hardware()` builds it from a SoC profile. With
`enforce_limits` (a served platform) each `check_*` that returns a reason makes the
service refuse the command with INVALID_PARAMETERS, protocol.md §2.4's status for a
lookup failure ("lookup failure → INVALID_PARAMETERS"; SET_MIN_FREQ / SET_MAX_FREQ /
MON_FREQ_MAP document INVALID_PARAMETERS). Without it the service accepts any CPU,
group and frequency (unit tests of the protocol, the in-process agent).
"""

from __future__ import annotations

from dataclasses import dataclass

from memlat.qcom.ids import HwType


@dataclass(frozen=True, slots=True)
class GroupHardware:
    """One memory group the SoC has. name: as the SoC names it (ddr-qos); key: its result
    key (ddr_qos). freq_min/freq_max: the OPP table's ends, kHz (or levels 0/1 for
    DDR_QOS); map_min/map_max: MON_FREQ_MAP's second column range, MHz (or levels)."""

    hw_type: int
    name: str
    key: str
    freq_min: int
    freq_max: int
    map_min: int
    map_max: int


@dataclass(frozen=True, slots=True)
class CpucpHardware:
    """What the firmware knows of its SoC without being told over SCMI.

    ncpus: logical CPUs with counters (None: derived from the highest bit of any
    programmed cpumask); bits of a cpumask beyond them name CPUs the part lacks and are
    never sampled (protocol.md §5 point 7). cluster_max_mhz[c]: CPU c's cluster maximum
    (effective-frequency method 0). groups: the SoC's memory groups (a hw_type not listed
    is named by `HwType.label`). static_mask: CPU bits the firmware's own static tables
    name: usually the part's CPUs; on a part whose driver tables were copied from a
    bigger sibling (x1p42100 reuses the 12-core Hamoa masks) also those bits, since the
    firmware must accept what its own upstream driver sends. enforce_limits: refuse
    configurations that do not fit (a served platform).
    """

    ncpus: int | None = None
    cluster_max_mhz: tuple[int, ...] = ()
    groups: tuple[GroupHardware, ...] = ()
    static_mask: int = 0
    enforce_limits: bool = False

    def group_name(self, hw_type: int) -> str:
        """The result key of group `hw_type` (ddr, llcc, ddr_qos, ...)."""
        grp = self.group(hw_type)
        return grp.key if grp is not None else HwType.label(hw_type)

    @property
    def cpu_mask(self) -> int:
        """Every CPU bit the firmware accepts: the part's CPUs and its static tables'."""
        return (1 << (self.ncpus or 0)) - 1 | self.static_mask

    def group(self, hw_type: int) -> GroupHardware | None:
        """The group with this hw_type, or None when the SoC has none."""
        for grp in self.groups:
            if grp.hw_type == hw_type:
                return grp
        return None

    def check_cpumask(self, mask: int, what: str) -> str | None:
        """None, or why `mask` names CPUs this part does not have."""
        extra = mask & ~self.cpu_mask
        if not extra:
            return None
        cpus = [i for i in range(extra.bit_length()) if extra >> i & 1]
        return (f"{what} {mask:#x} names CPUs {cpus} beyond this SoC's {self.ncpus} CPUs "
                f"(it accepts mask {self.cpu_mask:#x})")

    def check_group(self, hw_type: int) -> str | None:
        """None, or why this SoC has no group `hw_type`."""
        if self.group(hw_type) is not None:
            return None
        have = ", ".join(f"{g.hw_type} ({g.name})" for g in self.groups)
        return f"this SoC has no memory group with hw_type {hw_type} (it has {have})"

    def check_freq(self, hw_type: int, value: int, what: str) -> str | None:
        """None, or why `value` (kHz or level) is outside the group's OPP limits."""
        grp = self.group(hw_type)
        if grp is None or grp.freq_min <= value <= grp.freq_max:
            return None
        return (f"{what} {value} outside {grp.name}'s OPP limits "
                f"{grp.freq_min}..{grp.freq_max}")

    def check_map(self, hw_type: int, rows: tuple[tuple[int, int], ...]) -> str | None:
        """None, or which MON_FREQ_MAP row targets a memory frequency the group lacks."""
        grp = self.group(hw_type)
        if grp is None:
            return None
        for i, (_cpu, mem) in enumerate(rows):
            if not grp.map_min <= mem <= grp.map_max:
                return (f"map row {i} targets {mem}, outside {grp.name}'s range "
                        f"{grp.map_min}..{grp.map_max}")
        return None
