"""`memlat platform serve` runs the emulated CPUCP on the wall clock: votes move by themselves."""

from __future__ import annotations

import time

from memlat.agent.probe import probe
from memlat.cli.platform import _wall_clock_platform
from memlat.config import load_config
from memlat.qcom.client import QcomClient
from memlat.scmi.agent import Agent
from memlat.transports.inproc import InProcessTransport


def test_wall_clock_platform_samples_without_anyone_advancing_time():
    platform, service = _wall_clock_platform("x1e80100", None)
    try:
        agent = Agent(InProcessTransport(platform), timeout_s=0.5)
        result = probe(agent, load_config(soc="x1e80100"))
        assert result.state == "running" and not result.failures
        client = QcomClient(agent)
        seen = set()
        deadline = time.monotonic() + 5.0
        # the staircase source steps the CPU frequency every 5 windows of 4 ms, so the
        # DDR monitor's target must take several values within a few hundred ms
        while len(seen) < 3 and time.monotonic() < deadline:
            seen.add(client.get_cur_freq(0, 0))
            time.sleep(0.01)
        assert len(seen) >= 3, seen
    finally:
        service.sampler.stop_thread()
    assert service.sampler._thread is None
