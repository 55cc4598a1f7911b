"""The executor through fixed-frequency runs: fixed work, bus sensitivity, counters."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memlat.errors import ConfigError
from memlat.governor.spec import CPU_CYCLES, INST_RETIRED, L2_D_RFILL, STALL_BACKEND_MEM
from memlat.sim import Fixed, Workload, load_profile, load_suite, make_setup, parse_workloads
from memlat.sim.run import workload_instructions

X1E = load_profile("x1e80100")
SETUPS = {soc: make_setup(soc) for soc in ("x1e80100", "glymur", "kaanapali", "sm8550")}
SUITE = load_suite()
TOP = (4224, 1066)
LOW = (547, 300)
BOTTOM = (200, 300)


def simulate_fixed(w: Workload, soc: str = "x1e80100", ddr: float | None = None,
                   llcc: float | None = None, *, seed: int = 0, dt_us: int | None = None,
                   keep_trace: bool = True):
    """A fixed-frequency run (the Fixed policy), counters kept unless keep_trace=False."""
    from memlat.sim import simulate

    return simulate(SETUPS[soc], w, Fixed(ddr, llcc), seed=seed, dt_us=dt_us,
                    counters=keep_trace)


def single(workload: str, phase: str, **changes) -> Workload:
    """A one-phase workload cut from the suite (optionally modified)."""
    p = next(p for p in SUITE[workload].phases if p.name == phase)
    return Workload(name=f"{workload}.{phase}", phases=[p.model_copy(update=changes)])


def test_sim_compute_cache_resident_is_insensitive_to_the_bus():
    """workloads.md §7 cache-resident (L2 MPKI 0.05, LLC MPKI 0.01, MLP 1) keeps ~2 % memory
    stall at the top OPPs (§8); at the slowest buses that share grows with the latency, so
    the slowdown is a few percent, against ~240 % for the pointer chase."""
    w = single("compute", "cache_resident")
    fast = simulate_fixed(w, "x1e80100", *TOP, keep_trace=False)
    assert fast.time_s == pytest.approx(3.0, rel=1e-6)  # duration_s is at the top OPPs
    slow_map = simulate_fixed(w, "x1e80100", *LOW, keep_trace=False)  # lowest memlat-map pair
    slow_min = simulate_fixed(w, "x1e80100", *BOTTOM, keep_trace=False)  # ladder minimum
    assert slow_map.time_s / fast.time_s - 1 < 0.05
    assert slow_min.time_s / fast.time_s - 1 < 0.10
    # a cache-resident phase with no misses at all is exactly bus-independent
    none = single("compute", "cache_resident", mpki_llcc=0.0, mpki_ddr=0.0)
    a = simulate_fixed(none, "x1e80100", *TOP, keep_trace=False)
    b = simulate_fixed(none, "x1e80100", *BOTTOM, keep_trace=False)
    assert b.time_s / a.time_s - 1 < 0.01


def test_sim_pointer_chase_slows_strongly_at_low_bus():
    w = single("membench", "chase", duration_s=0.2)
    fast = simulate_fixed(w, "x1e80100", *TOP, keep_trace=False)
    slow = simulate_fixed(w, "x1e80100", *LOW, keep_trace=False)
    # latency-bound: the slowdown follows L_ddr, 348 ns / 103 ns
    assert slow.time_s / fast.time_s == pytest.approx(348 / 103, rel=0.03)


@pytest.mark.parametrize("name", ["membench", "mobile_ui", "lbm"])
def test_sim_same_work_regardless_of_bus(name):
    runs = [simulate_fixed(SUITE[name], "x1e80100", d, ll, seed=3) for d, ll in (TOP, LOW, BOTTOM)]
    budget = workload_instructions(SUITE[name], SETUPS["x1e80100"], seed=3)
    for r in runs:
        assert r.instructions == pytest.approx(budget, rel=1e-9)
        assert r.counters is not None
        total = int(r.counters.deltas[:, :, INST_RETIRED].sum())
        assert abs(total - budget) <= X1E.ncpus  # integer counters, floors of running sums
    assert runs[0].time_s < runs[1].time_s < runs[2].time_s


def test_sim_phase_changes_are_not_window_quantised():
    w = Workload(name="two", phases=[
        single("compute", "cache_resident", duration_s=0.0101).phases[0],
        single("membench", "compute", duration_s=0.0203).phases[0]])
    r = simulate_fixed(w, "x1e80100", *TOP, dt_us=4000)
    assert r.time_s == pytest.approx(0.0304, rel=1e-7)
    assert r.windows == 8


def test_sim_frames_keep_their_period_but_busy_time_grows():
    w = single("mobile_ui", "scroll_120hz", duration_s=0.5, jitter=0.0)
    fast = simulate_fixed(w, "x1e80100", *TOP)
    slow = simulate_fixed(w, "x1e80100", *LOW)
    frames = round(0.5e3 / 8.33)
    assert fast.time_s == pytest.approx(frames * 8.33e-3, rel=1e-9)
    assert slow.time_s == pytest.approx(fast.time_s, rel=1e-9)
    busy = [r.counters.deltas[:, 0, CPU_CYCLES].sum() for r in (fast, slow)]
    assert busy[1] > busy[0] * 1.05
    # the frame work arrives periodically: the CPU is busy ~3 of every 8.33 ms at the top
    assert busy[0] / 2189 / (fast.time_s * 1e6) == pytest.approx(3.0 / 8.33, rel=0.02)


def test_sim_steady_util_phase_busy_fraction():
    w = single("mobile_ui", "first_frames", jitter=0.0)  # util 0.8
    r = simulate_fixed(w, "x1e80100", *TOP)
    busy = r.counters.deltas[:, 0, CPU_CYCLES].sum() / 2516
    assert busy / (r.time_s * 1e6) == pytest.approx(0.8, rel=0.01)
    assert r.time_s == pytest.approx(0.3, rel=1e-6)


def test_sim_idle_cpus_count_nothing_and_counters_are_consistent():
    r = simulate_fixed(SUITE["mcf"], "x1e80100", *LOW)
    d = r.counters.deltas
    assert not d[:, 1:, :].any()  # mcf runs on CPU 0 only
    busy = d[:, 0, :]
    assert (busy[:, STALL_BACKEND_MEM] <= busy[:, CPU_CYCLES]).all()
    assert (busy[:, L2_D_RFILL] <= busy[:, INST_RETIRED]).all()
    assert r.counters.dt_us.shape == (r.windows, X1E.ncpus)


def test_sim_seeded_jitter_is_deterministic():
    w = SUITE["mobile_ui"]
    a = simulate_fixed(w, "x1e80100", *LOW, seed=7)
    b = simulate_fixed(w, "x1e80100", *LOW, seed=7)
    c = simulate_fixed(w, "x1e80100", *LOW, seed=8)
    assert np.array_equal(a.counters.deltas, b.counters.deltas)
    assert not np.array_equal(a.counters.deltas[:100], c.counters.deltas[:100])


def test_sim_mix_runs_on_all_clusters_and_stretches_at_low_bus():
    fast = simulate_fixed(SUITE["mix"], "x1e80100", *TOP)
    per_cluster = [fast.counters.deltas[:, cl.cpus, INST_RETIRED].sum() for cl in X1E.clusters]
    assert all(x > 0 for x in per_cluster)
    slow = simulate_fixed(SUITE["mix"], "x1e80100", *LOW, keep_trace=False)
    assert slow.time_s > fast.time_s


def test_sim_workload_too_wide_for_the_soc_is_refused():
    w = parse_workloads({"workloads": [{"name": "w", "phases": [
        {"name": "a", "duration_s": 1, "cpus": [0, 9], "cpu_mhz": 2000, "cpi0": 1,
         "mpki_llcc": 1, "mpki_ddr": 0}]}]}, "inline")["w"]
    with pytest.raises(ConfigError, match="has 8 CPUs"):
        simulate_fixed(w, "sm8550")


def test_sim_instruction_budget_phase():
    w = parse_workloads({"workloads": [{"name": "w", "phases": [
        {"name": "a", "instructions": 1e8, "cpus": [0, 1], "cpu_mhz": 2000, "cpi0": 1,
         "mpki_llcc": 10, "mpki_ddr": 5, "mlp": 2}]}]}, "inline")["w"]
    r = simulate_fixed(w, "x1e80100", *LOW)
    assert r.instructions == pytest.approx(2e8)
    assert r.counters.deltas[:, :2, INST_RETIRED].sum() == pytest.approx(2e8, abs=2)


@pytest.mark.parametrize("soc", ["glymur", "kaanapali", "sm8550"])
def test_sim_other_socs_run_the_suite_members(soc):
    prof = load_profile(soc)
    w = single("mcf", "pricing", duration_s=0.2)
    fast = simulate_fixed(w, soc, keep_trace=False)
    slow = simulate_fixed(w, soc, prof.ddr.min_mhz, prof.llcc.min_mhz, keep_trace=False)
    assert slow.time_s > 1.5 * fast.time_s
    assert slow.instructions == pytest.approx(fast.instructions, rel=1e-9)


@settings(max_examples=25)
@given(cpi0=st.floats(0.2, 2.0), mpki=st.floats(0.0, 200.0), ddr_share=st.floats(0.0, 1.0),
       mlp=st.floats(1.0, 16.0), util=st.floats(0.05, 1.0), ncpu=st.integers(1, 12),
       dt_us=st.sampled_from([1000, 4000, 8000]))
def test_sim_work_is_conserved_and_a_faster_bus_is_never_slower(cpi0, mpki, ddr_share, mlp,
                                                                 util, ncpu, dt_us):
    w = parse_workloads({"workloads": [{"name": "h", "phases": [
        {"name": "p", "duration_s": 0.05, "cpus": list(range(ncpu)), "cpu_mhz": 3000,
         "util": util, "cpi0": cpi0, "mpki_llcc": mpki, "mpki_ddr": mpki * ddr_share,
         "mlp": mlp, "read_frac": 0.7}]}]}, "inline")["h"]
    times = []
    for ddr, llcc in (BOTTOM, LOW, (1555, 600), TOP):
        r = simulate_fixed(w, "x1e80100", ddr, llcc, dt_us=dt_us, keep_trace=False)
        budget = workload_instructions(w, SETUPS["x1e80100"])
        assert r.instructions == pytest.approx(budget, rel=1e-9)
        times.append(r.time_s)
    assert all(a >= b * (1 - 1e-9) for a, b in itertools.pairwise(times))


def test_sim_a_run_beyond_max_windows_is_an_error_naming_the_workload():
    from memlat.errors import MemlatError
    from memlat.sim import simulate

    with pytest.raises(MemlatError, match="'mcf' did not finish within 3 windows"):
        simulate(SETUPS["x1e80100"], SUITE["mcf"], Fixed(), max_windows=3)
