"""Plain data the governor runs on: monitors, groups, global settings, counter windows.

The CPUCP service builds a `GovernorConfig` from what the agent programmed over SCMI;
the batch engine and `memlat replay` build it from a SoC profile. Units follow the
wire (protocol.md §2.4): map rows in MHz (or a 0/1 level), min/max in kHz (or level).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

UNUSED_EVENT = 0xFF  # an event slot with no counter (protocol.md §2.3)
U32_MAX = 0xFFFF_FFFF

# Counter ids of the CPUCP firmware (decisions.md §3); the trace columns are ev<N>.
CPU_CYCLES = 0
CNT_CYCLES = 1
INST_RETIRED = 2
STALL_BACKEND_MEM = 3
L2_D_RFILL = 5
N_COUNTERS = 9  # ids 0..8 are known to some firmware (algorithm.md §1.1)

# Defaults for knobs the agent never sends (decisions.md §2).
DEFAULT_FE_STALL_FLOOR = 0
DEFAULT_BE_STALL_FLOOR = 0
DEFAULT_WB_PCT = 100
DEFAULT_IPM_FILTER = 25000
DEFAULT_FREQ_SCALE_PCT = 0
DEFAULT_FREQ_SCALE_FLOOR_MHZ = 5000
DEFAULT_FREQ_SCALE_CEIL_MHZ = 5000
DEFAULT_SAMPLE_MS = 8
DEFAULT_METHOD = 1


@dataclass(frozen=True, slots=True)
class MonitorSpec:
    """One monitor: which CPUs it watches, how it qualifies them, and its map.

    map_rows: (cpu MHz, mem value) pairs in table order; mem value is MHz, or a 0/1
    level in a level group. min_freq/max_freq: kHz, or a level; a monitor nobody gave a
    min/max is unclamped (0 .. 0xFFFFFFFF). This is also the emulated CPUCP's programmed
    monitor (memlat.cpucp.state): one monitor type from the wire to the governor.
    """

    cpumask: int
    map_rows: tuple[tuple[int, int], ...] = ()
    min_freq: int = 0
    max_freq: int = U32_MAX
    compute: bool = False
    ipm_ceil: int = 0
    fe_stall_floor: int = DEFAULT_FE_STALL_FLOOR
    be_stall_floor: int = DEFAULT_BE_STALL_FLOOR
    wb_pct: int = DEFAULT_WB_PCT
    ipm_filter: int = DEFAULT_IPM_FILTER
    freq_scale_pct: int = DEFAULT_FREQ_SCALE_PCT
    freq_scale_floor_mhz: int = DEFAULT_FREQ_SCALE_FLOOR_MHZ
    freq_scale_ceil_mhz: int = DEFAULT_FREQ_SCALE_CEIL_MHZ
    name: str = ""

    @property
    def mon_type(self) -> int:
        """0 = IPM (latency) monitor, 1 = compute monitor (protocol.md §2.3)."""
        return 1 if self.compute else 0

    @property
    def is_level(self) -> bool:
        """A level monitor (DDR_QOS): max_freq <= 1, map values are levels, not MHz."""
        return self.max_freq <= 1

    def cpus(self) -> list[int]:
        """CPU numbers in the mask, ascending."""
        return [c for c in range(self.cpumask.bit_length()) if self.cpumask >> c & 1]


@dataclass(frozen=True, slots=True)
class GroupSpec:
    """One memory group (one bus): its events, monitors and adaptive floors (kHz)."""

    hw_type: int
    name: str
    monitors: tuple[MonitorSpec, ...]
    miss_event: int = L2_D_RFILL
    wb_event: int = UNUSED_EVENT
    acc_event: int = UNUSED_EVENT
    adaptive_low_khz: int = 0
    adaptive_high_khz: int = 0

    @property
    def is_level(self) -> bool:
        """A level group (DDR_QOS): every monitor is a level monitor."""
        return bool(self.monitors) and all(m.is_level for m in self.monitors)


@dataclass(frozen=True, slots=True)
class CommonEvents:
    """Counter ids of the five common event slots (UNUSED_EVENT when unused)."""

    inst: int = INST_RETIRED
    cyc: int = CPU_CYCLES
    const_cyc: int = CNT_CYCLES
    fe_stall: int = UNUSED_EVENT
    be_stall: int = STALL_BACKEND_MEM


@dataclass(frozen=True, slots=True)
class GovernorConfig:
    """Everything the governor needs for one platform.

    cluster_max_mhz[c] is CPU c's cluster maximum (used by effective-frequency method 0).
    """

    ncpus: int
    groups: tuple[GroupSpec, ...]
    common: CommonEvents = field(default_factory=CommonEvents)
    sample_ms: int = DEFAULT_SAMPLE_MS
    method: int = DEFAULT_METHOD
    cluster_max_mhz: tuple[int, ...] = ()

    @property
    def monitors(self) -> list[tuple[int, int, MonitorSpec]]:
        """(group index, monitor index, monitor) for every monitor, in table order."""
        return [(g, m, mon) for g, grp in enumerate(self.groups) for m, mon in
                enumerate(grp.monitors)]


@dataclass(slots=True)
class CounterWindow:
    """One window of counter deltas: dt_us[c] and deltas[c, counter_id] (uint64)."""

    dt_us: np.ndarray  # shape (ncpus,), int64
    deltas: np.ndarray  # shape (ncpus, N_COUNTERS), uint64


@dataclass(slots=True)
class CounterTrace:
    """Many windows at once: dt_us[w, c] and deltas[w, c, counter_id] (uint64)."""

    dt_us: np.ndarray  # shape (windows, ncpus), int64
    deltas: np.ndarray  # shape (windows, ncpus, N_COUNTERS), uint64

    @property
    def windows(self) -> int:
        """Number of windows."""
        return int(self.dt_us.shape[0])

    @property
    def ncpus(self) -> int:
        """Number of CPUs."""
        return int(self.dt_us.shape[1])

    def window(self, w: int) -> CounterWindow:
        """Window w as a CounterWindow."""
        return CounterWindow(self.dt_us[w], self.deltas[w])
