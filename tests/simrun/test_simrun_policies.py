"""Closed-loop policies: equalities the model must honour, memlat through SCMI, oracle bound."""

from __future__ import annotations

import numpy as np
import pytest

from memlat.agent.offline import programmed_governor as governor_config
from memlat.analysis.compare import run_workload
from memlat.config.profiles import load_profile
from memlat.sim.batch import limit_duration
from memlat.sim.policies import ONLINE, Bwmon, Memlat, StaticMap
from memlat.sim.run import make_setup, simulate
from memlat.sim.tuning import Tunables
from memlat.sim.workload import load_suite, parse_workloads

SUITE = load_suite()
SHORT = 0.6  # seconds per workload: every phase kept, runs stay fast


def _short(name: str):
    return limit_duration(SUITE[name], SHORT)


def _by_policy(results):
    return {r.policy: r for r in results}


def test_memlat_with_maps_at_max_equals_performance() -> None:
    setup = make_setup(tunables=Tunables(maps_at_max=True))
    for name in ("mcf", "mobile_ui", "video"):
        res = _by_policy(run_workload(_short(name), ["memlat", "performance"], setup)[0])
        m, p = res["memlat"], res["performance"]
        assert m.time_s == p.time_s
        assert m.energy_j == pytest.approx(p.energy_j, rel=1e-12)
        assert set(m.timeline.ddr_mhz) == {4224.0} and set(m.timeline.llcc_mhz) == {1066.0}


def test_compute_bound_work_is_insensitive_to_the_bus() -> None:
    # default profile: memlat vs performance on the compute suite workload
    res = _by_policy(run_workload(_short("compute"), ["memlat", "performance"],
                                  make_setup())[0])
    assert res["memlat"].time_s == pytest.approx(res["performance"].time_s, rel=0.01)
    # a cache-resident workload: memlat and the static map both stay within 1 %
    wl = parse_workloads({"workloads": [{"name": "resident", "phases": [
        {"name": "resident", "duration_s": 0.4, "cpu_mhz": 3860, "cpi0": 0.4,
         "mpki_llcc": 0.05, "mpki_ddr": 0.01, "mlp": 1}]}]}, "test")["resident"]
    res = _by_policy(run_workload(wl, ["memlat", "performance", "static-map"],
                                  make_setup())[0])
    for name in ("memlat", "static-map"):
        assert res[name].time_s == pytest.approx(res["performance"].time_s, rel=0.01)


def test_memlat_policy_runs_what_the_scmi_programmed_cpucp_holds() -> None:
    setup = make_setup()
    policy = Memlat(setup.soc)  # boots a CPUCP, probes it over SCMI once, reads it back
    assert policy.config == governor_config(setup.soc)
    wl = _short("mobile_ui")
    r = simulate(setup, wl, policy)
    assert r.transitions["ddr"] > 0  # the governor really moved the bus
    again = simulate(setup, wl, Memlat(setup.soc, policy.config))
    np.testing.assert_array_equal(r.timeline.ddr_mhz, again.timeline.ddr_mhz)


@pytest.mark.parametrize("tunables", [Tunables(), Tunables(map_scale=0.5, ipm_ceil=400)],
                         ids=["profile", "scaled"])
def test_oracle_is_never_beaten(tunables: Tunables) -> None:
    setup = make_setup(tunables=tunables)
    for name in SUITE:
        results, (ft, fe) = run_workload(_short(name), [*ONLINE, "oracle"], setup)
        for r in results:
            # E*(T) at the policy's own completion time is a lower bound on its energy
            assert np.interp(r.time_s, ft, fe) <= r.energy_j * (1 + 1e-9), (name, r.policy)
        oracle = _by_policy(results)["oracle"]
        for r in results:
            if r.slowdown is not None and r.slowdown <= 1 + setup.oracle_budget:
                assert oracle.energy_j <= r.energy_j * (1 + 1e-9), (name, r.policy)


def _one_cpu_workload(cpu: int, mhz: float, name: str = "one") -> object:
    return parse_workloads({"workloads": [{"name": name, "cpus": [cpu], "phases": [
        {"name": "p", "duration_s": 0.012, "cpu_mhz": mhz, "cpi0": 1.0, "mpki_llcc": 0.0,
         "mpki_ddr": 0.0}]}]}, "test")[name]


def test_static_map_follows_the_requested_frequency() -> None:
    setup = make_setup()
    policy = StaticMap(governor_config(load_profile("x1e80100")))
    # one CPU of cluster 1 at 2189 MHz: DDR 2092, LLCC 806, QoS 0
    r = simulate(setup, _one_cpu_workload(5, 2189.0), policy)
    assert (r.timeline.ddr_mhz[0], r.timeline.llcc_mhz[0], r.timeline.ddr_qos[0]) == (
        2092.0, 806.0, 0)
    r = simulate(setup, _one_cpu_workload(0, 3860.0), policy)
    assert (r.timeline.ddr_mhz[0], r.timeline.llcc_mhz[0], r.timeline.ddr_qos[0]) == (
        4224.0, 1066.0, 1)
    # a CPU with nothing to run requests nothing: the first rows of the maps
    idle = parse_workloads({"workloads": [{"name": "idle", "tracks": [
        {"cpus": [0], "phases": [{"name": "short", "duration_s": 0.004, "cpu_mhz": 3860,
                                  "cpi0": 1.0, "mpki_llcc": 0.0, "mpki_ddr": 0.0}]},
        {"cpus": [1], "phases": [{"name": "long", "duration_s": 0.02, "cpu_mhz": 3860,
                                  "util": 0.01, "cpi0": 1.0, "mpki_llcc": 0.0,
                                  "mpki_ddr": 0.0}]}]}]}, "test")["idle"]
    r = simulate(setup, idle, policy)
    assert r.timeline.ddr_mhz[0] == 4224.0
    assert r.timeline.ddr_mhz[-1] == 4224.0  # CPU 1 still requests 3860 MHz


def test_bwmon_ceiling_with_headroom_and_slow_decay() -> None:
    setup = make_setup()
    # non-CPU traffic only: 17.5 GB/s on DDR for 40 ms, then nothing for 60 ms
    wl = parse_workloads({"workloads": [{"name": "bw", "phases": [
        {"name": "busy", "duration_s": 0.04, "cpu_mhz": 1000, "util": 0.01, "cpi0": 1.0,
         "mpki_llcc": 0.0, "mpki_ddr": 0.0, "noncpu_gbps": 17.5},
        {"name": "quiet", "duration_s": 0.06, "cpu_mhz": 1000, "util": 0.01, "cpi0": 1.0,
         "mpki_llcc": 0.0, "mpki_ddr": 0.0}]}]}, "test")["bw"]
    r = simulate(setup, wl, Bwmon(io_percent=80, down_count=3, initial=(200.0, 300.0, 0)))
    ddr = list(r.timeline.ddr_mhz)
    assert ddr[0] == 200.0  # the initial state before any observation
    # 17,500 B/us / 0.8 = 21,875 B/us > 547 MHz x 32 B: the ceiling is 768 MHz, at once
    assert ddr[1] == 768.0 and set(ddr[1:10]) == {768.0}
    # the phase ends at 40 ms (window 10): down only after down_count quiet windows
    assert ddr[10:14] == [768.0, 768.0, 768.0, 200.0]


def test_bwmon_sees_non_cpu_traffic_memlat_does_not() -> None:
    # gameplay with GPU traffic: bwmon raises DDR above its CPU-only need
    wl = parse_workloads({"workloads": [{"name": "gpu", "phases": [
        {"name": "gpu", "duration_s": 0.3, "cpu_mhz": 999, "util": 0.05, "cpi0": 1.0,
         "mpki_llcc": 0.1, "mpki_ddr": 0.01, "noncpu_gbps": 40.0}]}]}, "test")["gpu"]
    res = _by_policy(run_workload(wl, ["bwmon", "memlat"], make_setup())[0])
    assert float(np.median(res["bwmon"].timeline.ddr_mhz)) >= 1555.0  # 40 GB/s / 0.8
    assert float(np.median(res["memlat"].timeline.ddr_mhz)) <= 768.0


def test_unknown_policy_is_refused() -> None:
    from memlat.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown policy"):
        run_workload(_short("mcf"), ["turbo"], make_setup())
