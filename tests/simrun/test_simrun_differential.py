"""The compiled run loop against the same source interpreted, and the kernel's memlat
against the emulated CPUCP it was programmed from.

1. Every online policy on every suite workload on every built-in SoC, through both paths:
   timelines, finish times, energies, instructions and the oracle's snapshots must be
   identical (bit for bit, not approximately).
2. The memlat policy's votes in a compiled run must be exactly what the emulated CPUCP,
   programmed by our agent over SCMI, votes when fed the same counter windows through its
   own sampling loop (memlat.cpucp.sampling, the ReferenceGovernor inside).
"""

from __future__ import annotations

import numpy as np
import pytest

from memlat.agent.probe import check, probe
from memlat.agent.session import make_agent
from memlat.cpucp.boot import make_cpucp_platform
from memlat.errors import ConfigError
from memlat.governor.spec import CounterWindow
from memlat.qcom.dialect import Dialect
from memlat.sim import BUILTIN_PROFILES, Memlat, load_suite, make_policy, make_setup, simulate
from memlat.sim.batch import limit_duration
from memlat.sim.policies import ONLINE
from memlat.transports.inproc import InProcessTransport

SUITE = load_suite()
SHORT = 0.08  # seconds per workload: every phase kept (frames, jitter, tracks)
# workloads that may need more CPUs than a SoC has (placement is absolute CPU numbers;
# the 12-CPU mix on the 8-CPU SoCs): refused with a ConfigError, every other pair runs
TOO_WIDE = {"kaanapali": {"mix"}, "sm8550": {"mix"}}


def _same(a, b) -> None:
    assert a.time_s == b.time_s
    assert (a.e_cpu_j, a.e_ddr_j, a.e_llcc_j) == (b.e_cpu_j, b.e_ddr_j, b.e_llcc_j)
    assert a.instructions == b.instructions
    assert (a.ddr_bytes, a.llcc_bytes) == (b.ddr_bytes, b.llcc_bytes)
    ta, tb = a.timeline, b.timeline
    for col in ("t_s", "dt_s", "ddr_mhz", "llcc_mhz", "ddr_qos", "phase"):
        np.testing.assert_array_equal(getattr(ta, col), getattr(tb, col), err_msg=col)
    assert ta.phase_names == tb.phase_names


@pytest.mark.parametrize("soc", BUILTIN_PROFILES)
def test_compiled_and_python_paths_are_identical(soc: str) -> None:
    setup = make_setup(soc)
    policies = {name: make_policy(name, setup.soc) for name in ONLINE}  # one probe per SoC
    ran = 0
    for wname, workload in SUITE.items():
        wl = limit_duration(workload, SHORT)
        try:
            simulate(setup, wl, "performance")
        except ConfigError as exc:
            assert wname in TOO_WIDE.get(soc, ()), exc  # only the known too-wide pairs
            assert "CPUs" in str(exc)
            continue
        for name, policy in policies.items():
            snap = name == "performance"
            a = simulate(setup, wl, policy, path="compiled", snapshots=snap, counters=True)
            b = simulate(setup, wl, policy, path="python", snapshots=snap, counters=True)
            _same(a, b)
            np.testing.assert_array_equal(a.counters.deltas, b.counters.deltas)
            if snap:
                for col in ("ver_after", "instructions", "busy_us", "noncpu_bytes", "params"):
                    np.testing.assert_array_equal(getattr(a.snapshots, col),
                                                  getattr(b.snapshots, col), err_msg=col)
            ran += 1
    assert ran >= len(ONLINE) * (len(SUITE) - len(TOO_WIDE.get(soc, ())))


def test_jitter_does_not_depend_on_the_path_or_the_output_growth(monkeypatch) -> None:
    # powersave stretches the run far beyond its estimate: the output arrays grow
    setup = make_setup()
    wl = limit_duration(SUITE["mobile_ui"], 0.6)
    a = simulate(setup, wl, "powersave", seed=5)
    assert a.windows > 1.25 * 0.6 / 0.004
    b = simulate(setup, wl, "powersave", seed=5, path="python")
    _same(a, b)
    # the jitter stream handed over in chunks of 7 windows instead of 4096: same values
    monkeypatch.setattr("memlat.sim.run._JIT_ROWS", 7)
    _same(a, simulate(setup, wl, "powersave", seed=5))
    c = simulate(setup, wl, "powersave", seed=6)
    assert c.energy_j != a.energy_j


@pytest.mark.parametrize("soc", BUILTIN_PROFILES)
@pytest.mark.parametrize("workload", ["mobile_ui", "omnetpp", "membench"])
def test_kernel_memlat_votes_equal_the_scmi_programmed_cpucp(soc: str, workload: str) -> None:
    setup = make_setup(soc)
    policy = Memlat(setup.soc)
    run = simulate(setup, limit_duration(SUITE[workload], 0.4), policy, counters=True)
    assert run.counters is not None

    class Source:
        pending: CounterWindow | None = None

        def window(self, now_ns: int, dt_us: int, ncpus: int) -> CounterWindow | None:
            w, self.pending = self.pending, None
            return w

    source = Source()
    platform, service = make_cpucp_platform(setup.soc.hardware(), source=source)
    votes: dict[int, int] = {}
    service.subscribe(lambda t, hw, v: votes.__setitem__(hw, v))
    agent = make_agent(InProcessTransport(platform), Dialect(setup.soc.dialect))
    check(probe(agent, setup.soc, setup.soc.dialect))
    key = {g.hw_type: g.key for g in setup.soc.groups}
    lad = setup.ladders
    dt_ns = setup.dt_us * 1000
    for w in range(run.windows - 1):
        source.pending = run.counters.window(w)
        assert service.advance(dt_ns) == 1  # one firmware window per simulated window
        by_bus = {key[hw]: v for hw, v in votes.items()}
        want = (lad.snap_up(lad.ddr, by_bus["ddr"] / 1000) if "ddr" in by_bus else lad.ddr[-1],
                lad.snap_up(lad.llcc, by_bus["llcc"] / 1000) if "llcc" in by_bus
                else lad.llcc[-1],
                by_bus.get("ddr_qos", 1))
        got = (run.timeline.ddr_mhz[w + 1], run.timeline.llcc_mhz[w + 1],
               run.timeline.ddr_qos[w + 1])
        assert got == want, (w, got, want)
    agent.close()
