"""Worked vectors of algorithm.md §3.6 (SM8550, post_boot tunables, 8 ms window)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hamoa import SM8550_MISS_DDR, SM8550_MISS_L3, SM8550_MISS_LLCC, sm8550_config

from memlat.governor.engine import run_trace
from memlat.governor.reference import ReferenceGovernor, mult_frac_100
from memlat.governor.spec import INST_RETIRED, N_COUNTERS, CounterTrace, CounterWindow


def _vector_window() -> CounterWindow:
    deltas = np.zeros((8, N_COUNTERS), np.uint64)
    deltas[7, 0] = 14_400_000  # 1800 MHz over 8000 us
    deltas[7, INST_RETIRED] = 30_000_000
    deltas[7, SM8550_MISS_DDR] = 150_000  # ipm 200
    deltas[7, SM8550_MISS_LLCC] = 60_000  # ipm 500
    deltas[7, SM8550_MISS_L3] = 600_000  # ipm 50
    return CounterWindow(dt_us=np.full(8, 8000, np.int64), deltas=deltas)


def _without_boost():
    cfg = sm8550_config()
    ddr = cfg.groups[0]
    mons = tuple(dataclasses.replace(m, freq_scale_pct=0) for m in ddr.monitors)
    return dataclasses.replace(cfg, groups=(dataclasses.replace(ddr, monitors=mons),
                                            *cfg.groups[1:]))


def test_sm8550_worked_vector_with_boost() -> None:
    gov = ReferenceGovernor(sm8550_config())
    res = gov.step(_vector_window())
    ddr, llcc, l3, qos = res.monitor_targets
    # DDR: prime boosted to 2025 MHz -> 2476 row; the others give 547000 (§3.6)
    assert ddr == [547000, 547000, 3187000, 547000, 547000]
    assert res.group_votes[0] == 3187000
    assert llcc == [300000, 300000, 300000]
    assert res.group_votes[1] == 300000
    # L3 prime picks the 1996 row; the MHz map turns 1420800 kHz into 1420 MHz
    assert l3[2] == 1_420_000
    assert res.group_votes[2] == 1_420_000
    assert qos == [0, 0, 0]
    assert res.group_votes[3] == 0
    assert res.changed == [True, True, True, False]
    assert gov.cur_freq(0, 2) == 3187000


def test_sm8550_worked_vector_without_boost() -> None:
    res = ReferenceGovernor(_without_boost()).step(_vector_window())
    assert res.monitor_targets[0][2] == 2092000
    assert res.group_votes[0] == 2092000


@pytest.mark.parametrize("boost", [True, False])
def test_engine_matches_worked_vector(boost: bool) -> None:
    cfg = sm8550_config() if boost else _without_boost()
    win = _vector_window()
    trace = CounterTrace(dt_us=win.dt_us[None, :], deltas=win.deltas[None, :, :])
    batch = run_trace(cfg, trace)
    assert batch.group_votes[0].tolist() == [3187000 if boost else 2092000, 300000,
                                            1_420_000, 0]


def test_mult_frac_wraps_and_divides_by_zero() -> None:
    assert mult_frac_100(5, 0) == 0
    assert mult_frac_100(50, 200) == 25
    # n >= 42,949,673 wraps the u32 product when d > 100 (algorithm.md §1.4)
    assert mult_frac_100(42_949_673, 1000) == ((100 * 42_949_673) % 2**32) // 1000
    assert mult_frac_100(3, 7) == (100 // 7) * 3 + (100 % 7) * 3 // 7


def test_adaptive_snap_readback_and_reset() -> None:
    """V3 adaptive rule (algorithm.md §2.4): below low -> low, below high -> high."""
    from hamoa import hamoa_config

    cfg = hamoa_config()
    ddr = dataclasses.replace(cfg.groups[0], adaptive_low_khz=768000,
                              adaptive_high_khz=2092000)
    cfg = dataclasses.replace(cfg, groups=(ddr, *cfg.groups[1:]))
    deltas = np.zeros((3, 12, N_COUNTERS), np.uint64)
    deltas[1, 0, 0] = 1200 * 4000  # 1200 MHz -> 768000 from the map, snapped up to high
    deltas[2, 0, 0] = 3000 * 4000  # 3000 MHz -> 4224000, above high: unchanged
    deltas[1:, 0, INST_RETIRED] = 10**6
    deltas[1:, 0, 5] = 10
    trace = CounterTrace(dt_us=np.full((3, 12), 4000, np.int64), deltas=deltas)
    gov = ReferenceGovernor(cfg)
    assert gov.adaptive_cur(0) == 0 and gov.cur_freq(0, 0) == 0  # before any window
    votes, curs = [], []
    for w in range(3):
        votes.append(gov.step(trace.window(w)).group_votes[0])
        curs.append(gov.adaptive_cur(0))
    # window 0: every monitor at its first row (547000) < low -> low
    assert votes == [768000, 2092000, 4224000]
    assert curs == [768000, 2092000, 2092000]
    assert gov.cur_freq(0, 0) == 4224000
    assert run_trace(cfg, trace).group_votes[:, 0].tolist() == votes
    gov.reset()
    assert gov.adaptive_cur(0) == 0 and gov.cur_freq(0, 0) == 0 and gov.group_vote(0) == 0
