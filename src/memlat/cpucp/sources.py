"""Counter sources for the emulated CPUCP when the agent drives it (`memlat devfreq show`).

A source hands the firmware's sampling loop one window of per-CPU counter deltas at a
time (memlat.cpucp.sampling.CounterSource). `StaircaseSource` is a small deterministic
synthetic workload; `TraceSource` replays a recorded trace (decisions.md §3) window by
window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from memlat.governor.spec import (
    CNT_CYCLES,
    CPU_CYCLES,
    INST_RETIRED,
    L2_D_RFILL,
    N_COUNTERS,
    STALL_BACKEND_MEM,
    CounterTrace,
    CounterWindow,
)

DEFAULT_STEPS_MHZ = (800, 1400, 2000, 2400, 3000, 3800, 1200)
CONST_MHZ = 19  # rate of the constant counter (CNT_CYCLES), a 19.2 MHz timer rounded


@dataclass
class StaircaseSource:
    """Every CPU busy at a CPU frequency that steps through `steps_mhz`, `hold` windows each.

    Per window: cycles = MHz x dt_us (so effective-frequency method 1 reads the step),
    IPC 1, one L2 refill per `ipm` instructions (memory-bound under every upstream
    ipm_ceil), a quarter of the cycles stalled on memory.
    """

    steps_mhz: Sequence[int] = DEFAULT_STEPS_MHZ
    hold: int = 5
    ipm: int = 1000
    windows_seen: int = 0

    def window(self, now_ns: int, dt_us: int, ncpus: int) -> CounterWindow:
        """The next window of the staircase."""
        mhz = self.steps_mhz[(self.windows_seen // self.hold) % len(self.steps_mhz)]
        self.windows_seen += 1
        deltas = np.zeros((ncpus, N_COUNTERS), dtype=np.uint64)
        cycles = mhz * dt_us
        deltas[:, CPU_CYCLES] = cycles
        deltas[:, CNT_CYCLES] = CONST_MHZ * dt_us
        deltas[:, INST_RETIRED] = cycles
        deltas[:, L2_D_RFILL] = max(1, cycles // self.ipm)
        deltas[:, STALL_BACKEND_MEM] = cycles // 4
        return CounterWindow(np.full(ncpus, dt_us, dtype=np.int64), deltas)


@dataclass
class TraceSource:
    """Windows of a recorded trace in order; None (window skipped) once it is exhausted.

    CPUs beyond the trace's are idle; trace CPUs beyond the platform's are dropped.
    """

    trace: CounterTrace
    position: int = 0

    def window(self, now_ns: int, dt_us: int, ncpus: int) -> CounterWindow | None:
        """The next trace window, or None after the last one."""
        if self.position >= self.trace.windows:
            return None
        w = self.trace.window(self.position)
        self.position += 1
        n = min(ncpus, self.trace.ncpus)
        dt = np.full(ncpus, dt_us, dtype=np.int64)
        deltas = np.zeros((ncpus, N_COUNTERS), dtype=np.uint64)
        dt[:n] = w.dt_us[:n]
        deltas[:n] = w.deltas[:n]
        return CounterWindow(dt, deltas)
