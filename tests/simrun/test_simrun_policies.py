"""Closed-loop policies: equalities the model must honour, memlat through SCMI, oracle bound."""

from __future__ import annotations

import numpy as np
import pytest

from memlat.agent.offline import programmed_governor as governor_config
from memlat.config.profiles import load_profile
from memlat.governor.spec import N_COUNTERS, CounterWindow
from memlat.sim.closed_loop import ONLINE, make_policy, make_setup, run_policy, run_workload
from memlat.sim.policies import BwmonPolicy, Ladders, Observation, StaticMapPolicy
from memlat.sim.runner import limit_duration
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


def test_memlat_through_scmi_matches_the_reference_governor() -> None:
    wl = _short("mobile_ui")
    cpucp = run_policy(wl, make_policy("memlat", make_setup()), make_setup())
    ref_setup = make_setup(memlat_backend="reference")
    ref = run_policy(wl, make_policy("memlat", ref_setup), ref_setup)
    assert cpucp.transitions["ddr"] > 0  # the governor really moved the bus
    np.testing.assert_array_equal(cpucp.timeline.ddr_mhz, ref.timeline.ddr_mhz)
    np.testing.assert_array_equal(cpucp.timeline.llcc_mhz, ref.timeline.llcc_mhz)
    np.testing.assert_array_equal(cpucp.timeline.ddr_qos, ref.timeline.ddr_qos)


def test_memlat_policy_probes_the_whole_v8_sequence() -> None:
    setup = make_setup()
    policy = make_policy("memlat", setup)
    assert policy.probe_commands == setup.soc.command_count("v8")
    policy.close()


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


def test_static_map_follows_the_requested_frequency() -> None:
    soc = load_profile("x1e80100")
    setup = make_setup()
    policy = StaticMapPolicy(setup.ladders, governor_config(soc))
    req = np.zeros(12)
    req[5] = 2189.0  # one CPU of cluster 1 at 2189 MHz: DDR 2092, LLCC 806, QoS 0
    vote = policy.decide(Observation(0, 0.0, req))
    assert (vote.ddr_mhz, vote.llcc_mhz, vote.ddr_qos) == (2092.0, 806.0, 0)
    req[0] = 3860.0
    vote = policy.decide(Observation(1, 4000.0, req))
    assert (vote.ddr_mhz, vote.llcc_mhz, vote.ddr_qos) == (4224.0, 1066.0, 1)
    idle = policy.decide(Observation(2, 8000.0, np.zeros(12)))
    assert (idle.ddr_mhz, idle.llcc_mhz) == (547.0, 300.0)  # first rows of the maps


def test_bwmon_ceiling_with_headroom_and_slow_decay() -> None:
    ladders = Ladders(ddr=(200.0, 547.0, 768.0, 1555.0), llcc=(300.0, 600.0),
                      ddr_bytes_per_mhz=32.0, llcc_bytes_per_mhz=128.0)
    bw = BwmonPolicy(ladders, io_percent=80, down_count=3, initial=ladders.bottom)
    window = CounterWindow(np.full(1, 4000), np.zeros((1, N_COUNTERS), dtype=np.uint64))
    # 547 MHz x 32 B = 17,504 B/us peak; 14,000 B/us / 0.8 = 17,500 -> 547 MHz
    up = bw.decide(Observation(1, 4000.0, np.zeros(1), window, ddr_bytes=14_000 * 4000,
                               llcc_bytes=0.0, prev_dt_us=4000.0))
    assert up.ddr_mhz == 547.0 and up.llcc_mhz == 300.0
    # above the top: the ceiling is the top OPP, at once
    up = bw.decide(Observation(2, 8000.0, np.zeros(1), window, ddr_bytes=1e12,
                               llcc_bytes=0.0, prev_dt_us=4000.0))
    assert up.ddr_mhz == 1555.0
    quiet = [bw.decide(Observation(3 + i, 0.0, np.zeros(1), window, ddr_bytes=0.0,
                                   llcc_bytes=0.0, prev_dt_us=4000.0)).ddr_mhz
             for i in range(3)]
    assert quiet == [1555.0, 1555.0, 200.0]  # down only after down_count quiet windows


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
