"""The batch engine agrees with the reference governor on every window."""

from __future__ import annotations

import numpy as np
import pytest
from hamoa import hamoa_config, sm8550_config

from memlat.governor import _numba
from memlat.governor._numba import pack_governor
from memlat.governor.engine import run_trace
from memlat.governor.reference import ReferenceGovernor
from memlat.governor.spec import (
    UNUSED_EVENT,
    CommonEvents,
    CounterTrace,
    GovernorConfig,
    GroupSpec,
    MonitorSpec,
)
from memlat.traces.synth import synth_trace


def _random_monitor(rng: np.random.Generator, ncpus: int, level: bool) -> MonitorSpec:
    nrows = int(rng.integers(0, 7)) if not level else 2
    keys = np.sort(rng.integers(100, 4500, nrows))
    if nrows > 2 and rng.random() < 0.2:
        keys = rng.permutation(keys)  # not ascending: the first-match rule still holds
    if level:
        rows = tuple((int(k), i % 2) for i, k in enumerate(keys))
        lo, hi = 0, 1
    else:
        rows = tuple((int(k), int(v)) for k, v in zip(keys, np.sort(rng.integers(100, 5000,
                                                                              nrows)),
                                                      strict=True))
        lo, hi = int(rng.choice([0, 200000, 600000])), int(rng.choice([1066000, 4224000,
                                                                        500000]))
    compute = bool(rng.random() < 0.25)
    floor = int(rng.choice([0, 500, 1500, 5000]))
    return MonitorSpec(
        cpumask=int(rng.integers(1, 1 << (ncpus + 2))),  # may name CPUs the trace lacks
        map_rows=rows, min_freq=lo, max_freq=hi, compute=compute,
        ipm_ceil=int(rng.choice([0, 50, 400, 25000, 20_000_000, 60_000_000, 2**32 - 1])),
        fe_stall_floor=int(rng.choice([0, 30, 101])),
        be_stall_floor=int(rng.choice([0, 1, 50, 101])),
        wb_pct=int(rng.choice([0, 20, 100])),
        ipm_filter=int(rng.choice([0, 400, 25000])),
        freq_scale_pct=int(rng.choice([0, 25, 1000, 2**20])),
        freq_scale_floor_mhz=floor,
        freq_scale_ceil_mhz=int(rng.choice([floor, 2726, 5000])),
    )


def _random_config(rng: np.random.Generator) -> GovernorConfig:
    ncpus = int(rng.integers(2, 13))
    groups = []
    for g in range(int(rng.integers(1, 5))):
        level = g == 3 or bool(rng.random() < 0.15)
        wb_on = rng.random() < 0.4
        groups.append(GroupSpec(
            hw_type=g, name=f"g{g}",
            monitors=tuple(_random_monitor(rng, ncpus, level)
                           for _ in range(int(rng.integers(0, 6)))),
            miss_event=int(rng.choice([5, 4, 6, 8, UNUSED_EVENT])),
            wb_event=int(rng.choice([7, 4])) if wb_on else UNUSED_EVENT,
            acc_event=int(rng.choice([8, 6])) if wb_on else UNUSED_EVENT,
            adaptive_low_khz=int(rng.choice([0, 0, 547000])),
            adaptive_high_khz=int(rng.choice([0, 0, 1555000])),
        ))
    common = CommonEvents(inst=2, cyc=int(rng.choice([0, 0, UNUSED_EVENT])), const_cyc=1,
                          fe_stall=int(rng.choice([UNUSED_EVENT, 4, 3])),
                          be_stall=int(rng.choice([UNUSED_EVENT, 3])))
    return GovernorConfig(ncpus=ncpus, groups=tuple(groups), common=common,
                          method=int(rng.integers(0, 2)),
                          cluster_max_mhz=tuple(int(x) for x in
                                                rng.integers(0, 5000, int(rng.integers(0, 14)))))


def _random_trace(rng: np.random.Generator, config: GovernorConfig, seed: int) -> CounterTrace:
    ncpus = max(1, config.ncpus - int(rng.integers(0, 2)))
    trace = synth_trace(120, ncpus, seed=seed, dt_us=int(rng.choice([4000, 8000])),
                        idle_frac=0.25, zero_miss_frac=0.3, wrap_frac=0.1,
                        extra_counters=True)
    dt = trace.dt_us.copy()
    dt[rng.random(dt.shape) < 0.05] = 0  # division by zero gives 0
    dt[rng.random(dt.shape) < 0.05] += 1234  # per-CPU window length
    return CounterTrace(dt_us=dt, deltas=trace.deltas)


def _assert_agree(config: GovernorConfig, trace: CounterTrace, use_numba: bool = False) -> None:
    batch = run_trace(config, trace, use_numba=use_numba)
    gov = ReferenceGovernor(config)
    for w in range(trace.windows):
        res = gov.step(trace.window(w))
        flat = [t for grp in res.monitor_targets for t in grp]
        assert batch.monitor_targets[w].tolist() == flat, f"window {w}"
        assert batch.group_votes[w].tolist() == res.group_votes, f"window {w}"
        assert batch.changed[w].tolist() == res.changed, f"window {w}"


@pytest.mark.parametrize("seed", range(40))
def test_engine_matches_reference_random_configs(seed: int) -> None:
    rng = np.random.default_rng(1000 + seed)
    config = _random_config(rng)
    _assert_agree(config, _random_trace(rng, config, seed))


@pytest.mark.parametrize("seed", range(0, 40, 3))
def test_numba_kernel_matches_reference(seed: int) -> None:
    rng = np.random.default_rng(1000 + seed)
    config = _random_config(rng)
    _assert_agree(config, _random_trace(rng, config, seed), use_numba=True)


@pytest.mark.parametrize("method", [0, 1])
def test_engine_matches_reference_hamoa(method: int) -> None:
    import dataclasses

    config = dataclasses.replace(hamoa_config(), method=method)
    trace = synth_trace(300, 12, seed=7 + method, wrap_frac=0.05)
    _assert_agree(config, trace)
    _assert_agree(config, trace, use_numba=True)


def test_engine_matches_reference_sm8550_boost() -> None:
    trace = synth_trace(300, 8, seed=3, extra_counters=True, dt_us=8000)
    _assert_agree(sm8550_config(), trace)


def test_random_configs_exercise_the_corner_cases() -> None:
    """The differential sweep really covers boost, compute, adaptive, wb and both methods."""
    seen = {"boost": False, "compute": False, "adaptive": False, "wb": False,
            "method0": False, "method1": False, "absent_cpu": False}
    for seed in range(40):
        rng = np.random.default_rng(1000 + seed)
        cfg = _random_config(rng)
        seen[f"method{cfg.method}"] = True
        for grp in cfg.groups:
            seen["adaptive"] |= bool(grp.adaptive_low_khz or grp.adaptive_high_khz)
            seen["wb"] |= grp.wb_event != UNUSED_EVENT
            for m in grp.monitors:
                seen["compute"] |= m.compute
                seen["boost"] |= (m.freq_scale_pct != 0 and not m.compute
                                  and m.freq_scale_floor_mhz < m.freq_scale_ceil_mhz)
                seen["absent_cpu"] |= m.cpumask.bit_length() > cfg.ncpus
    assert all(seen.values()), seen


def test_stale_ipm_is_kept_when_no_misses() -> None:
    """A window with miss == 0 reuses the previous IPM (decisions.md §2)."""
    cfg = hamoa_config()
    deltas = np.zeros((3, 12, 9), np.uint64)
    deltas[:, 0, 0] = 4000 * 2000  # 2000 MHz on CPU0 every window
    deltas[:, 0, 2] = 10**9
    deltas[0, 0, 5] = 10  # ipm 1e8 > 2e7: no latency candidate
    deltas[2, 0, 5] = 10**3  # ipm 1e6: qualifies
    trace = CounterTrace(dt_us=np.full((3, 12), 4000, np.int64), deltas=deltas)
    batch = run_trace(cfg, trace)
    llcc_mon0 = 4  # columns: ddr 0..3, llcc 4..6
    # window 1 has no misses and keeps window 0's IPM of 1e8, so it stays at the floor
    assert batch.monitor_targets[:, llcc_mon0].tolist() == [300000, 300000, 806000]


def test_u32_truncation_of_frequency_and_ipm() -> None:
    """f = u32(cycles // dt) and ipm = u32(inst // miss) (algorithm.md §1.4, §2.11)."""
    cfg = hamoa_config()
    deltas = np.zeros((2, 12, 9), np.uint64)
    deltas[:, 0, 0] = (2**32 + 1800) * 4000  # f wraps to 1800 MHz
    deltas[0, 0, 2] = 10**6
    deltas[0, 0, 5] = 100  # ipm 10^4: qualifies
    deltas[1, 0, 2] = 2**40 * 3
    deltas[1, 0, 5] = 3  # ipm u32(2^40) = 0: qualifies (without the cast it would not)
    trace = CounterTrace(dt_us=np.full((2, 12), 4000, np.int64), deltas=deltas)
    batch = run_trace(cfg, trace)
    gov = ReferenceGovernor(cfg)
    for w in range(2):
        res = gov.step(trace.window(w))
        assert res.monitor_targets[0][0] == 2092000  # 1800 <= 2189 row
        assert batch.monitor_targets[w, 0] == 2092000


def _step_window_kernel(config: GovernorConfig, trace: CounterTrace, compiled: bool
                        ) -> tuple[np.ndarray, np.ndarray]:
    """The simulator's per-window governor call (memlat.sim.kernel's memlat policy):
    governor_window on each window in turn, state carried in the ipm array."""
    arrays = pack_governor(config, trace.ncpus)
    n_g = max(len(config.groups), 1)
    n = trace.ncpus
    ipm = np.zeros((n, n_g), np.uint64)
    scratch = [np.zeros(n, np.uint64) for _ in range(3)] + [np.zeros((n, n_g), np.uint64)]
    t = np.zeros(max(len(config.monitors), 1), np.int64)
    v = np.zeros(n_g, np.int64)
    fn = _numba.compiled("governor_window") if compiled else _numba.governor_window
    targets, votes = [], []
    with np.errstate(all="ignore"):  # the interpreted u64 products wrap like the firmware's
        for w in range(trace.windows):
            fn(np.ascontiguousarray(trace.deltas[w]), np.ascontiguousarray(trace.dt_us[w]),
               *arrays, ipm, *scratch, t, v)
            targets.append(t[:len(config.monitors)].copy())
            votes.append(v[:len(config.groups)].copy())
    return np.array(targets), np.array(votes)


@pytest.mark.parametrize("seed", range(40))
def test_simulator_window_kernel_matches_reference(seed: int) -> None:
    """The governor votes of the simulator's kernel (compiled; interpreted on every
    fourth seed) equal ReferenceGovernor's on random seeded counter windows."""
    rng = np.random.default_rng(5000 + seed)
    config = _random_config(rng)
    trace = _random_trace(rng, config, seed)
    paths = (True, False) if seed % 4 == 0 else (True,)
    gov = ReferenceGovernor(config)
    ref = [gov.step(trace.window(w)) for w in range(trace.windows)]
    for compiled in paths:
        targets, votes = _step_window_kernel(config, trace, compiled)
        for w, res in enumerate(ref):
            flat = [x for grp in res.monitor_targets for x in grp]
            assert targets[w].tolist() == flat, (compiled, w)
            assert votes[w].tolist() == res.group_votes, (compiled, w)
