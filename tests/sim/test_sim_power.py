"""Power model: per-OPP tables, CPU curves, energy per byte, accounting in a run."""

from __future__ import annotations

import numpy as np
import pytest

from memlat.sim import Fixed, PowerModel, Workload, load_profile, load_suite, make_setup, simulate

X1E = load_profile("x1e80100")
SM8550 = load_profile("sm8550")
SETUP = make_setup("x1e80100")


def simulate_fixed(w: Workload, ddr: float, llcc: float):
    return simulate(SETUP, w, Fixed(ddr, llcc))


def test_sim_bus_power_per_opp_matches_model_params():
    # model-params.md §3.2/§3.3 (X1E: 8 channels / 8 slices)
    assert X1E.ddr.power_mw(4224) == pytest.approx(400, abs=1)
    assert X1E.ddr.power_mw(547) == pytest.approx(61, abs=1)
    assert X1E.llcc.power_mw(1066) == pytest.approx(140, abs=1)
    assert X1E.llcc.power_mw(300) == pytest.approx(35, abs=1)
    assert X1E.ddr.peak_bytes_per_us(4224) == pytest.approx(135_168)  # 135.2 GB/s


@pytest.mark.parametrize(("ghz", "watts"), [(1.0, 0.59), (2.0, 1.57), (3.0, 3.03), (4.0, 5.05)])
def test_sim_oryon_cpu_curve_matches_model_params(ghz, watts):
    pm = PowerModel(X1E)
    mw = pm.cpu_core_mw(np.full(X1E.ncpus, ghz * 1000))
    assert mw[0] / 1000 == pytest.approx(watts, abs=0.01)


def test_sim_sm8550_cpu_uses_measured_tables():
    pm = PowerModel(SM8550)
    mhz = np.array([2016, 2016, 2016, 2803, 2803, 2803, 2803, 3187], dtype=float)
    mw = pm.cpu_core_mw(mhz)
    assert mw[0] == 243 and mw[3] == 1215 and mw[7] == 3326


def test_sim_energy_per_byte_scales_with_traffic():
    pm = PowerModel(X1E)
    base = pm.ddr_energy_j(4000, 2092, 0.0)
    one = pm.ddr_energy_j(4000, 2092, 1e9) - base
    two = pm.ddr_energy_j(4000, 2092, 2e9) - base
    assert one == pytest.approx(50e-12 * 1e9)  # 50 pJ/B, model-params.md §3.1
    assert two == pytest.approx(2 * one)
    l1 = pm.llcc_energy_j(4000, 806, 1e9) - pm.llcc_energy_j(4000, 806, 0.0)
    assert l1 == pytest.approx(5e-12 * 1e9)


def test_sim_run_energy_is_background_plus_traffic():
    suite = load_suite()
    triad = next(p for p in suite["membench"].phases if p.name == "triad")
    runs = []
    for ncpu in (1, 2):
        w = Workload(name=f"triad{ncpu}", phases=[
            triad.model_copy(update={"duration_s": 0.1, "cpus": list(range(ncpu))})])
        runs.append(simulate_fixed(w, 2092, 806))
    for r in runs:
        background = X1E.ddr.power_mw(2092) * r.timeline.dt_s.sum() * 1e6 * 1e-9
        assert r.e_ddr_j == pytest.approx(background + 50e-12 * r.ddr_bytes)
    # twice the traffic (two CPUs, same time) -> twice the per-byte energy
    assert runs[1].ddr_bytes == pytest.approx(2 * runs[0].ddr_bytes, rel=0.02)
    traffic = [r.e_ddr_j - X1E.ddr.power_mw(2092) * r.timeline.dt_s.sum() * 1e-3
               for r in runs]
    assert traffic[1] == pytest.approx(2 * traffic[0], rel=0.02)


def test_sim_idle_and_static_cpu_energy():
    pm = PowerModel(X1E)
    idle = pm.cpu_energy_j(4000, np.zeros(X1E.ncpus), np.full(X1E.ncpus, 1000.0))
    assert idle == pytest.approx(12 * 5 * 4000 * 1e-9)  # 5 mW per idle core, no static
    busy = np.zeros(X1E.ncpus)
    busy[0] = 4000
    one = pm.cpu_energy_j(4000, busy, np.full(X1E.ncpus, 3000.0))
    expect = (3030 + 100) * 4000e-9 + 11 * 5 * 4000e-9  # core + cluster static + idle
    assert one == pytest.approx(expect, rel=0.01)


def test_sim_slower_bus_saves_bus_power_on_frame_work_but_not_time():
    video = load_suite()["video"]
    fast = simulate_fixed(video, 4224, 1066)
    slow = simulate_fixed(video, 547, 300)
    assert slow.time_s == pytest.approx(fast.time_s, rel=0.01)
    assert slow.e_ddr_j < fast.e_ddr_j / 2
    assert slow.edp < fast.edp
