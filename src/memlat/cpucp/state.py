"""The emulated CPUCP's programmed state: limits, hardware facts, groups, monitors.

One immutable `CpucpSnapshot` holds everything the agent programmed; the service
replaces it whole when a command succeeds (validate-then-commit, docs/cpucp.md). A
programmed monitor is a `governor.spec.MonitorSpec`, the same type the governor runs on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from memlat.governor.spec import (
    DEFAULT_METHOD,
    DEFAULT_SAMPLE_MS,
    N_COUNTERS,
    UNUSED_EVENT,
    MonitorSpec,
)
from memlat.qcom.dialect import Dialect
from memlat.qcom.ids import HwType, ParamId
from memlat.scmi.status import Status
from memlat.wire import Reader


@dataclass(frozen=True, slots=True)
class CpucpLimits:
    """Limits of the emulated firmware (decisions.md §2; protocol.md §5.8 says the real
    ones are unknown). strict_map_order refuses MON_FREQ_MAP rows whose CPU MHz is not
    strictly ascending (algorithm.md §2.2 "the rows must be ascending")."""

    max_groups: int = 4
    max_monitors: int = 5
    max_map_rows: int = 10
    max_common_events: int = 5
    max_group_events: int = 3
    strict_map_order: bool = True


@dataclass(frozen=True, slots=True)
class GroupState:
    """One programmed memory group. events: the counted slots of its GRP_EV_MAP
    (miss, wb, acc), None before one arrives; adaptive_* kHz; cpumask 0 = any CPU."""

    hw_type: int
    cpumask: int
    events: tuple[int, ...] | None = None
    adaptive_low_khz: int = 0
    adaptive_high_khz: int = 0
    monitors: tuple[MonitorSpec, ...] = ()

    @property
    def name(self) -> str:
        """ddr, llcc, ddr_qos or ddr_qos_mobile."""
        return HwType.label(self.hw_type)


@dataclass(frozen=True, slots=True)
class CpucpSnapshot:
    """The whole programmed configuration plus the running flag.

    common_events: the counted slots of the COMMON_EV_MAP, in the slot order of
    common_dialect (protocol.md §2.3: the RFC had 4 slots without CONST_CYC), None
    before one arrives.
    """

    groups: tuple[GroupState, ...] = ()
    common_events: tuple[int, ...] | None = None
    common_dialect: Dialect = Dialect.V8
    sample_ms: int = DEFAULT_SAMPLE_MS
    method: int = DEFAULT_METHOD
    running: bool = False

    def group(self, hw_type: int) -> GroupState | None:
        """The group with this hw_type, or None."""
        for grp in self.groups:
            if grp.hw_type == hw_type:
                return grp
        return None

    def monitor(self, hw_type: int, mon_idx: int) -> MonitorSpec | None:
        """Monitor mon_idx of group hw_type, or None."""
        grp = self.group(hw_type)
        if grp is None or mon_idx >= len(grp.monitors):
            return None
        return grp.monitors[mon_idx]


class Refused(Exception):
    """Raised inside a handler to refuse the command with `status`."""

    def __init__(self, status: Status, why: str) -> None:
        super().__init__(f"{status.name}: {why}")
        self.status = status
        self.why = why


# Scalar params that set one monitor field (protocol.md §2.4).
MONITOR_FIELDS: dict[int, str] = {
    ParamId.IPM_CEIL: "ipm_ceil",
    ParamId.FE_STALL_FLOOR: "fe_stall_floor",
    ParamId.BE_STALL_FLOOR: "be_stall_floor",
    ParamId.WB_PCT: "wb_pct",
    ParamId.IPM_FILTER: "ipm_filter",
    ParamId.FREQ_SCALE_PCT: "freq_scale_pct",
    ParamId.FREQ_SCALE_CEIL_MHZ: "freq_scale_ceil_mhz",
    ParamId.FREQ_SCALE_FLOOR_MHZ: "freq_scale_floor_mhz",
    ParamId.SET_MIN_FREQ: "min_freq",
    ParamId.SET_MAX_FREQ: "max_freq",
}
GROUP_FIELDS: dict[int, str] = {
    ParamId.ADAPTIVE_LOW_FREQ: "adaptive_low_khz",
    ParamId.ADAPTIVE_HIGH_FREQ: "adaptive_high_khz",
}

SetHandler = Callable[[CpucpSnapshot, bytes, Dialect], CpucpSnapshot]


def replace_group(state: CpucpSnapshot, group: GroupState) -> CpucpSnapshot:
    groups = tuple(group if g.hw_type == group.hw_type else g for g in state.groups)
    return dataclasses.replace(state, groups=groups)


def replace_monitor(state: CpucpSnapshot, hw_type: int, mon_idx: int,
                     mon: MonitorSpec) -> CpucpSnapshot:
    grp = state.group(hw_type)
    assert grp is not None
    monitors = tuple(mon if i == mon_idx else m for i, m in enumerate(grp.monitors))
    return replace_group(state, dataclasses.replace(grp, monitors=monitors))


def head_u32s(body: bytes, *names: str) -> tuple[int, ...]:
    r = Reader(body, base=16)
    return tuple(r.u32(n) for n in names)


def check_event_ids(events: tuple[int, ...]) -> None:
    for i, cid in enumerate(events):
        if cid != UNUSED_EVENT and not 0 <= cid < N_COUNTERS:
            raise Refused(Status.INVALID_PARAMETERS,
                          f"event slot {i} names unknown counter {cid:#x}")
