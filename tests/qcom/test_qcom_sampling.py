"""The sampling loop: votes follow the counters, subscribers hear changes, GETs read back."""

from __future__ import annotations

import time

import numpy as np
import pytest
from qcom_seq import hamoa_v8_sequence

from memlat.clock import SimClock, WallClock
from memlat.cpucp.boot import make_cpucp_platform
from memlat.cpucp.sampling import CounterSource, SamplingLoop
from memlat.governor.reference import ReferenceGovernor
from memlat.governor.spec import (
    CPU_CYCLES,
    INST_RETIRED,
    L2_D_RFILL,
    N_COUNTERS,
    STALL_BACKEND_MEM,
    CounterWindow,
)
from memlat.qcom.client import QcomClient
from memlat.qcom.codec import SampleMs, ScalarMsg
from memlat.qcom.ids import PROTOCOL_ID, ParamId
from memlat.scmi.agent import Agent
from memlat.transports.inproc import InProcessTransport

MS = 1_000_000


class StepSource:
    """Every CPU busy at steps_mhz[k] in window k (the last step repeats); IPM 100, so
    every CPU is memory-bound. Records the calls it got."""

    def __init__(self, steps_mhz: list[int], *, gaps: frozenset[int] = frozenset()):
        self.steps = steps_mhz
        self.gaps = gaps
        self.calls: list[tuple[int, int, int]] = []
        self.windows: list[CounterWindow] = []

    def window(self, now_ns: int, dt_us: int, ncpus: int) -> CounterWindow | None:
        k = len(self.calls)
        self.calls.append((now_ns, dt_us, ncpus))
        if k in self.gaps:
            return None
        mhz = self.steps[min(k, len(self.steps) - 1)]
        deltas = np.zeros((ncpus, N_COUNTERS), dtype=np.uint64)
        cycles = mhz * dt_us
        deltas[:, CPU_CYCLES] = cycles
        deltas[:, INST_RETIRED] = cycles
        deltas[:, L2_D_RFILL] = cycles // 100
        deltas[:, STALL_BACKEND_MEM] = cycles // 4
        win = CounterWindow(np.full(ncpus, dt_us, dtype=np.int64), deltas)
        self.windows.append(win)
        return win


def _boot(source: CounterSource | None, *, start: bool = True):  # type: ignore[no-untyped-def]
    clock = SimClock()
    platform, service = make_cpucp_platform(source=source, clock=clock)
    agent = Agent(InProcessTransport(platform))
    for cmd in hamoa_v8_sequence(start=start):
        agent.call(PROTOCOL_ID, cmd.message_id, cmd.payload, rx_size=0)
    return clock, service, QcomClient(agent)


def test_source_protocol_is_runtime_checkable() -> None:
    assert isinstance(StepSource([1000]), CounterSource)


def test_votes_follow_counters_and_subscribers_hear_changes() -> None:
    source = StepSource([1000, 1000, 1000, 3000])
    clock, service, client = _boot(source)
    events: list[tuple[int, int, int]] = []
    service.subscribe(lambda t, hw, v: events.append((t, hw, v)))
    assert service.advance(12 * MS) == 3  # windows at 4, 8, 12 ms (sample_ms 4)
    assert [c[0] for c in source.calls] == [4 * MS, 8 * MS, 12 * MS]
    assert all(c[1:] == (4000, 12) for c in source.calls)
    # first window reports every group; 1000 MHz -> rows 1440->768 / 1440->466 / 2189->0
    assert events == [(4 * MS, 0, 768000), (4 * MS, 1, 466000), (4 * MS, 2, 0)]
    assert service.advance(4 * MS) == 1
    assert events[3:] == [(16 * MS, 0, 4224000), (16 * MS, 1, 1066000), (16 * MS, 2, 1)]
    assert clock.now_ns() == 16 * MS
    service.advance(8 * MS)  # steady: no more events
    assert len(events) == 6
    assert client.get_cur_freq(0, 0) == 4224000
    assert client.get_cur_freq(0, 3) == 2092000  # compute monitor: 3000 -> 3860->2092
    assert client.get_cur_freq(2, 1) == 1
    assert service.group_vote(1) == 1066000


def test_loop_agrees_with_reference_governor() -> None:
    source = StepSource([800, 1500, 2200, 2600, 3900, 1200, 1700])
    _, service, _ = _boot(source)
    service.advance(7 * 4 * MS)
    gov = ReferenceGovernor(service.governor_config())
    expected = [gov.step(w).group_votes for w in source.windows]
    got = [[v for _, v in rec.votes] for rec in service.sampler.history]
    assert got == expected and len(got) == 7
    assert len({tuple(v) for v in got}) > 3  # the votes really moved


def test_get_cur_freq_before_first_window_is_min_freq() -> None:
    _, service, client = _boot(StepSource([3000]))
    assert client.get_cur_freq(0, 0) == 200000
    assert client.get_cur_freq(1, 2) == 300000
    assert client.get_cur_freq(2, 0) == 0
    assert client.get_adaptive_cur_freq(0) == 0
    service.advance(4 * MS)
    assert client.get_cur_freq(0, 0) == 4224000


def test_get_timestamp_follows_sim_clock() -> None:
    clock, service, client = _boot(None, start=False)
    assert client.get_timestamp() == 0
    clock.advance(1234567)
    assert client.get_timestamp() == 1234567
    service.advance(5 * MS)  # stopped: only the clock moves
    assert client.get_timestamp() == 1234567 + 5 * MS
    assert service.sampler.windows_run == 0


def test_stop_freezes_targets_and_restart_resumes() -> None:
    source = StepSource([1000, 1000, 3000])
    _, service, client = _boot(source)
    events: list[tuple[int, int, int]] = []
    service.subscribe(lambda t, hw, v: events.append((t, hw, v)))
    service.advance(8 * MS)
    client.stop_activity()
    assert service.advance(40 * MS) == 0
    assert client.get_cur_freq(0, 0) == 768000 and len(events) == 3
    client.start_activity()
    assert service.advance(4 * MS) == 1  # first window 4 ms after START
    assert events[-3:] == [(52 * MS, 0, 4224000), (52 * MS, 1, 1066000), (52 * MS, 2, 1)]


def test_reconfigure_while_running_applies_next_window() -> None:
    source = StepSource([3000])
    _, service, client = _boot(source)
    events: list[tuple[int, int, int]] = []
    service.subscribe(lambda t, hw, v: events.append((t, hw, v)))
    service.advance(4 * MS)
    for mon in range(3):
        client.set_param(ParamId.SET_MAX_FREQ, ScalarMsg(0, mon, 1555000).pack())
    client.set_param(ParamId.SET_MAX_FREQ, ScalarMsg(0, 3, 1555000).pack())
    client.set_param(ParamId.SAMPLE_MS, SampleMs(10).pack())
    assert service.advance(4 * MS) == 1  # the window already due at 8 ms
    assert events[-1] == (8 * MS, 0, 1555000)
    assert source.calls[-1][1] == 4000  # that window still covered 4 ms
    assert service.advance(9 * MS) == 0 and service.advance(1 * MS) == 1  # then every 10 ms
    assert source.calls[-1][1] == 10000


def test_none_window_is_skipped() -> None:
    source = StepSource([1000, 3000], gaps=frozenset({1}))
    _, service, client = _boot(source)
    service.advance(8 * MS)
    assert len(source.calls) == 2 and service.sampler.windows_run == 1
    assert client.get_cur_freq(0, 0) == 768000  # window 2 skipped: unchanged
    service.advance(4 * MS)
    assert client.get_cur_freq(0, 0) == 4224000


def test_idle_platform_without_source_votes_first_rows() -> None:
    _, service, client = _boot(None)
    service.advance(4 * MS)
    # all CPUs idle: best 0 gives the first map row, then the min clamp
    assert client.get_cur_freq(0, 0) == 547000
    assert client.get_cur_freq(1, 0) == 300000
    assert service.group_vote(2) == 0


def test_advance_needs_sim_clock() -> None:
    loop = SamplingLoop(WallClock())
    with pytest.raises(TypeError, match="SimClock"):
        loop.advance(MS)


def test_sim_clock_rules() -> None:
    clock = SimClock(5)
    assert clock.advance(10) == 15
    with pytest.raises(ValueError, match="back"):
        clock.set(3)
    with pytest.raises(ValueError, match="back"):
        clock.advance(-1)
    clock.set(20)
    assert clock.now_ns() == 20
    assert WallClock(from_zero=True).now_ns() >= 0


def test_wall_clock_thread_runs_windows_and_stops() -> None:
    source = StepSource([1000, 3000])
    platform, service = make_cpucp_platform(source=source, clock=WallClock())
    agent = Agent(InProcessTransport(platform))
    seq = hamoa_v8_sequence()
    seq[-3] = type(seq[-3])(seq[-3].message_id, ParamId.SAMPLE_MS,
                            seq[-3].payload[:16] + SampleMs(1).pack())
    events: list[tuple[int, int, int]] = []
    service.subscribe(lambda t, hw, v: events.append((t, hw, v)))
    service.sampler.start_thread()
    try:
        for cmd in seq:
            agent.call(PROTOCOL_ID, cmd.message_id, cmd.payload, rx_size=0)
        deadline = time.monotonic() + 20.0  # generous bound; not a speed assertion
        while service.sampler.windows_run < 3 and time.monotonic() < deadline:
            time.sleep(0.005)
    finally:
        service.sampler.stop_thread()
    assert service.sampler.windows_run >= 3
    assert service.sampler._thread is None
    assert (0, 4224000) in [(hw, v) for _, hw, v in events]
    ran = service.sampler.windows_run
    time.sleep(0.01)
    assert service.sampler.windows_run == ran  # thread stopped: nothing more runs
