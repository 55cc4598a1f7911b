"""`memlat bench --suite governor`: batch engine vs reference vs a bare read of the trace.

All figures come from one run on one seeded trace with the full x1e80100 configuration
(3 groups, 10 monitors, 12 CPUs): throughput in CPU-samples per second (one sample =
one CPU in one window) and ratios against baselines measured in the same run.
bare_read_ratio = engine time / time of one numpy pass that reads every counter delta
once (`deltas.sum(axis=(0, 1))`), i.e. how far the engine is from the memory floor.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from memlat.agent.offline import programmed_governor
from memlat.config.profiles import DEFAULT_SOC, load_profile
from memlat.governor.engine import run_trace
from memlat.governor.reference import ReferenceGovernor
from memlat.governor.spec import CounterTrace, GovernorConfig
from memlat.traces.synth import synth_trace

FULL_WINDOWS = 83_334  # x 12 CPUs >= 1,000,000 CPU-samples
QUICK_WINDOWS = 8_334
REFERENCE_WINDOWS = 2_000
QUICK_REFERENCE_WINDOWS = 300


def _best_time(fn: Callable[[], Any], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _config() -> GovernorConfig:
    return programmed_governor(load_profile(DEFAULT_SOC))


def _reference_time(config: GovernorConfig, trace: CounterTrace) -> float:
    gov = ReferenceGovernor(config)
    t0 = time.perf_counter()
    for w in range(trace.windows):
        gov.step(trace.window(w))
    return time.perf_counter() - t0


def run(quick: bool = False) -> dict[str, Any]:
    """Measure the governor engines; returns the figures named in the governor issue."""
    config = _config()
    windows = QUICK_WINDOWS if quick else FULL_WINDOWS
    trace = synth_trace(windows, config.ncpus, seed=2026, dt_us=config.sample_ms * 1000)
    samples = windows * config.ncpus
    repeats = 2 if quick else 3

    run_trace(config, trace)  # warm-up (allocator, page faults)
    t_engine = _best_time(lambda: run_trace(config, trace), repeats)
    deltas = trace.deltas
    t_bare = _best_time(lambda: deltas.sum(axis=(0, 1)), repeats)

    ref_windows = QUICK_REFERENCE_WINDOWS if quick else REFERENCE_WINDOWS
    head = CounterTrace(dt_us=trace.dt_us[:ref_windows], deltas=trace.deltas[:ref_windows])
    t_ref = _reference_time(config, head)
    ref_rate = ref_windows * config.ncpus / t_ref
    engine_rate = samples / t_engine

    figures: dict[str, Any] = {
        "governor_cpu_samples": samples,
        "engine_cpu_samples_per_s": round(engine_rate),
        "reference_cpu_samples_per_s": round(ref_rate),
        "engine_vs_reference_ratio": round(engine_rate / ref_rate, 1),
        "bare_read_ratio": round(t_engine / t_bare, 2),
    }
    try:
        run_trace(config, head, use_numba=True)  # compile (or load the cache)
    except ImportError:
        return figures
    t_numba = _best_time(lambda: run_trace(config, trace, use_numba=True), repeats)
    same = np.array_equal(run_trace(config, trace, use_numba=True).group_votes,
                          run_trace(config, trace).group_votes)
    figures.update({
        "numba_cpu_samples_per_s": round(samples / t_numba),
        "numba_vs_reference_ratio": round(samples / t_numba / ref_rate, 1),
        "numba_bare_read_ratio": round(t_numba / t_bare, 2),
        "numba_matches_engine": same,
    })
    return figures
