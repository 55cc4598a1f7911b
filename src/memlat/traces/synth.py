"""Seeded synthetic counter traces (for tests, the bench and `memlat trace synth`).

The numbers are plausible rather than modelled: per window and CPU a busy fraction, a
running frequency, an IPC, an instructions-per-miss figure and a stall share. Knobs
inject the corner cases the governor must get right: idle CPUs (all deltas 0), windows
with no misses (stale IPM, decisions.md §2) and deltas beyond 2**32 (the u32 casts of
algorithm.md §1.4), including some near 2**64 (u64 wrap of the method-0 product).
"""

from __future__ import annotations

import numpy as np

from memlat.governor.spec import (
    CNT_CYCLES,
    CPU_CYCLES,
    INST_RETIRED,
    L2_D_RFILL,
    N_COUNTERS,
    STALL_BACKEND_MEM,
    CounterTrace,
)


def synth_trace(windows: int, ncpus: int, *, seed: int = 0, dt_us: int = 4000,
                idle_frac: float = 0.2, zero_miss_frac: float = 0.1,
                wrap_frac: float = 0.02, max_mhz: int = 4000,
                extra_counters: bool = False) -> CounterTrace:
    """A reproducible random trace of `windows` x `ncpus` samples.

    idle_frac: share of (window, CPU) samples with every delta 0.
    zero_miss_frac: share of busy samples whose miss counter (ev5) is 0.
    wrap_frac: share of busy samples whose deltas are pushed past 2**32 (a few also
    near 2**64).
    extra_counters: also fill counters 4, 6, 7 and 8 (for write-back/access and other
    miss events in randomised configurations).
    """
    rng = np.random.default_rng(seed)
    shape = (windows, ncpus)
    dt = np.full(shape, dt_us, np.int64)
    busy = rng.uniform(0.05, 1.0, shape)
    mhz = rng.uniform(200, max_mhz, shape)
    cycles = (busy * mhz * dt_us).astype(np.uint64)
    const = (busy * dt_us * rng.choice([19.2, 1000.0, max_mhz], size=shape)).astype(np.uint64)
    ipc = rng.uniform(0.2, 4.0, shape)
    inst = (cycles * ipc).astype(np.uint64)
    ipm = np.exp(rng.uniform(0.0, np.log(5e7), shape))
    miss = (inst / ipm).astype(np.uint64)
    stall = (cycles * rng.uniform(0.0, 1.0, shape)).astype(np.uint64)

    deltas = np.zeros((*shape, N_COUNTERS), np.uint64)
    deltas[..., CPU_CYCLES] = cycles
    deltas[..., CNT_CYCLES] = const
    deltas[..., INST_RETIRED] = inst
    deltas[..., STALL_BACKEND_MEM] = stall
    deltas[..., L2_D_RFILL] = miss
    if extra_counters:
        for k in (4, 6, 7, 8):
            deltas[..., k] = (inst / np.exp(rng.uniform(0.0, 12.0, shape))).astype(np.uint64)

    wrap = rng.random(shape) < wrap_frac
    if wrap.any():
        n = int(wrap.sum())
        big = rng.integers(1 << 32, 1 << 40, size=(n, N_COUNTERS), dtype=np.uint64)
        huge = rng.random(n) < 0.2
        big[huge] = rng.integers(1 << 62, np.iinfo(np.uint64).max, size=(int(huge.sum()),
                                 N_COUNTERS), dtype=np.uint64, endpoint=True)
        deltas[wrap] = big
    zero_miss = rng.random(shape) < zero_miss_frac
    deltas[zero_miss, L2_D_RFILL] = 0
    idle = rng.random(shape) < idle_frac
    deltas[idle] = 0
    return CounterTrace(dt_us=dt, deltas=deltas)
