"""The closed-loop latency/performance model against model-params.md and workloads.md."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from memlat.governor.spec import (
    CNT_CYCLES,
    CPU_CYCLES,
    INST_RETIRED,
    L2_D_RFILL,
    STALL_BACKEND_MEM,
)
from memlat.sim import MemoryModel, PhaseArrays, load_profile, load_suite

X1E = load_profile("x1e80100")
SUITE = load_suite()


@pytest.fixture(scope="module")
def model() -> MemoryModel:
    return MemoryModel(X1E)


# model-params.md §1.3 table: (f_ddr, f_llcc, L_llcc, L_ddr)
LATENCY_TABLE = [
    (547, 300, 65, 348),
    (768, 466, 46, 261),
    (1555, 600, 39, 167),
    (2092, 806, 32, 139),
    (3187, 933, 29, 115),
    (4224, 1066, 27, 103),
]


@pytest.mark.parametrize(("ddr", "llcc", "l_llcc", "l_ddr"), LATENCY_TABLE)
def test_sim_latency_matches_model_params_table(model, ddr, llcc, l_llcc, l_ddr):
    assert model.llcc_latency_ns(llcc) == pytest.approx(l_llcc, abs=1.0)
    assert model.ddr_latency_ns(ddr, llcc) == pytest.approx(l_ddr, abs=1.0)


def test_sim_latency_unloaded_window_has_no_queueing(model):
    ph = PhaseArrays.uniform(1, cpi0=0.3, mpki_llcc=950, mpki_ddr=930, cpu_mhz=3860)
    lat = model.window_latency(4224, 1066, ph, np.ones(1))
    # one pointer chase moves 0.6 GB/s of 135 GB/s: the queueing term is well under 1 ns
    assert lat.l_ddr_ns == pytest.approx(102.8, abs=0.5)
    assert not lat.saturated


def _phase(workload: str, name: str):
    return next(p for p in SUITE[workload].phases if p.name == name)


def _arrays(p) -> PhaseArrays:
    return PhaseArrays.uniform(1, cpi0=p.cpi0, mpki_llcc=p.mpki_llcc, mpki_ddr=p.mpki_ddr,
                               mlp=p.mlp, read_frac=p.read_frac, cpu_mhz=p.cpu_mhz)


# workloads.md §8 (IPC, BE-mem %) at the top OPPs
SANITY = [
    ("membench", "triad", 0.45, 84),
    ("mcf", "build", 0.68, 59),
    ("mcf", "pricing", 0.36, 82),
    ("mcf", "simplex", 0.37, 82),
    ("omnetpp", "events", 0.45, 69),
    ("omnetpp", "xslt", 0.76, 55),
    ("lbm", "timestep", 0.75, 62),
    ("lbm", "roms_like", 0.80, 60),
    ("compute", "search", 1.86, 16),
    ("compute", "cache_resident", 2.45, 2),
    ("compute", "hash_probes", 1.24, 38),
    ("mobile_ui", "cold_launch", 0.38, 62),
    ("mobile_ui", "first_frames", 0.65, 41),
    ("mobile_ui", "scroll_120hz", 0.76, 31),
    ("mobile_ui", "js_burst", 0.86, 40),
    ("mobile_ui", "screen_on_idle", 0.91, 9),
    ("mobile_game", "level_load", 0.47, 72),
    ("mobile_game", "gameplay_60fps", 0.80, 36),
    ("mobile_game", "menu", 0.93, 17),
    ("video", "start_buffer", 0.79, 37),
    ("video", "steady", 0.96, 13),
]


@pytest.mark.parametrize(("workload", "phase", "ipc", "be_pct"), SANITY)
def test_sim_sanity_values_of_workloads_md_8(model, workload, phase, ipc, be_pct):
    p = _phase(workload, phase)
    ph = _arrays(p)
    got = model.ipc(ph, 4224, 1066)[0]
    assert got == pytest.approx(ipc, rel=0.05)
    lat = model.window_latency(4224, 1066, ph, np.zeros(1))
    pi = model.per_instruction(ph, lat)
    assert pi.stall_cycles[0] * got * 100 == pytest.approx(be_pct, abs=2.0)


def test_sim_chase_ipc_and_littles_law(model):
    """§8 lists chase IPC 0.0025 but also 0.62 GB/s = 64 B / 103 ns; the model follows the
    bandwidth check exactly and lands within 10 % of the rounded IPC."""
    for name, mlp, gbps in (("chase", 1.0, 0.62), ("dual_chase", 2.0, 1.24)):
        ph = _arrays(_phase("membench", name))
        ipc = model.ipc(ph, 4224, 1066)[0]
        assert ipc == pytest.approx(0.0025 * mlp, rel=0.10)
        lat = model.window_latency(4224, 1066, ph, np.zeros(1))
        pi = model.per_instruction(ph, lat)
        assert pi.rate[0] * pi.ddr_bytes[0] / 1000 == pytest.approx(gbps, rel=0.02)


def test_sim_faster_bus_raises_ips(model):
    ph = _arrays(_phase("mcf", "pricing"))
    rates = [model.ipc(ph, ddr, llcc)[0] for ddr, llcc, *_ in LATENCY_TABLE]
    assert all(a < b for a, b in itertools.pairwise(rates))


def test_sim_bandwidth_cap_binds_with_12x_triad(model):
    p = _phase("membench", "triad")
    ph = PhaseArrays.uniform(12, cpi0=p.cpi0, mpki_llcc=p.mpki_llcc, mpki_ddr=p.mpki_ddr,
                             mlp=p.mlp, read_frac=p.read_frac, cpu_mhz=p.cpu_mhz)
    for ddr, llcc in ((4224, 1066), (1555, 600), (547, 300)):
        lat = model.window_latency(ddr, llcc, ph, np.ones(12))
        pi = model.per_instruction(ph, lat)
        delivered = float(np.sum(pi.rate * pi.ddr_bytes))  # bytes/us
        cap = X1E.latency.eta * X1E.ddr.peak_bytes_per_us(ddr)
        assert lat.saturated
        assert delivered == pytest.approx(cap, rel=1e-6)
        # unthrottled demand (12 x 25 GB/s) is far above the cap
        assert 2 * cap < 12 * 25_000


def test_sim_noncpu_traffic_adds_queueing_and_takes_bandwidth_first(model):
    ph = _arrays(_phase("membench", "triad"))
    quiet = model.window_latency(1555, 600, ph, np.ones(1), 0.0)
    loaded = model.window_latency(1555, 600, ph, np.ones(1), 30_000.0)  # 30 GB/s GPU
    assert loaded.l_ddr_ns > quiet.l_ddr_ns
    assert loaded.rho > quiet.rho


def test_sim_queueing_is_finite_and_monotone(model):
    lo, hi = 0.0, 10 * X1E.ddr.peak_bytes_per_us(4224)
    w = [model.queue_ns("ddr", 4224, d)[0] for d in np.linspace(lo, hi, 50)]
    assert all(a <= b for a, b in itertools.pairwise(w))
    assert np.isfinite(w[-1])
    assert model.queue_ns("ddr", 4224, hi)[1] == X1E.latency.rho_max


def test_sim_model_step_counters(model):
    ph = _arrays(_phase("mcf", "pricing"))
    ph2 = PhaseArrays.idle(2)
    for k in ("cpi0", "mpki_llcc", "mpki_ddr", "mlp", "read_frac", "cpu_mhz"):
        getattr(ph2, k)[0] = getattr(ph, k)[0]
    cw, inst = model.step(ph2, np.array([4000.0, 0.0]), 4000, 4224, 1066)
    d = cw.deltas
    assert d[0, CPU_CYCLES] == 4000 * 3860
    assert d[0, CNT_CYCLES] == round(4000 * X1E.cpu_max_mhz[0])
    assert d[0, INST_RETIRED] == round(inst[0])
    assert d[0, L2_D_RFILL] == round(inst[0] * 30 / 1000)
    assert 0 < d[0, STALL_BACKEND_MEM] < d[0, CPU_CYCLES]
    assert d[0, INST_RETIRED] / d[0, CPU_CYCLES] == pytest.approx(0.36, rel=0.05)
    assert not d[1].any()  # an idle CPU counts nothing
    assert list(cw.dt_us) == [4000, 4000]


@pytest.mark.parametrize("soc", ["x1e80100", "sm8550"])
@pytest.mark.parametrize("seed", range(6))
def test_sim_kernel_equations_equal_the_vectorised_model(soc, seed):
    """The run loop's per-CPU latency and per-instruction costs (memlat.sim.kernel) are the
    equations of memlat.sim.model; only the summation order differs."""
    from memlat.sim import kernel as K
    from memlat.sim.run import make_setup

    setup = make_setup(soc)
    prof = setup.profile
    lat, d, ll = prof.latency, prof.ddr, prof.llcc
    prof_f = np.array([lat.l0_ns, lat.k_llcc_ns_mhz, lat.d0_ns, lat.k_ddr_ns_mhz, lat.eta,
                       lat.rho_max, float(lat.llcc_queueing), d.bytes_per_cycle,
                       float(d.channels), ll.bytes_per_cycle, float(ll.channels),
                       d.pj_per_byte, ll.pj_per_byte, 4000.0])
    rng = np.random.default_rng(seed)
    n = prof.ncpus
    ml = rng.uniform(0, 300, n)
    ph = PhaseArrays(cpi0=rng.uniform(0.2, 2, n), mpki_llcc=ml, mpki_ddr=ml * rng.random(n),
                     mlp=rng.uniform(1, 32, n), read_frac=rng.uniform(0.5, 1, n),
                     bytes_per_miss=np.full(n, 64.0), cpu_mhz=rng.uniform(500, 3800, n))
    cpu_f = np.zeros((K.N_CPU_F, n))
    for row, name in enumerate(("cpi0", "mpki_llcc", "mpki_ddr", "mlp", "read_frac",
                                "bytes_per_miss", "cpu_mhz")):
        cpu_f[row] = getattr(ph, name)
    busy = rng.random(n)
    noncpu = float(rng.choice([0.0, 20_000.0]))
    model = MemoryModel(prof)
    for ddr, llcc in ((d.ladder_mhz[0], ll.ladder_mhz[0]), (d.max_mhz, ll.max_mhz)):
        want = model.window_latency(ddr, llcc, ph, busy, noncpu)
        scratch = np.zeros((3, n))
        l_llcc, l_ddr = K.window_latency(prof_f, cpu_f, ddr, llcc, busy, noncpu, *scratch)
        assert (l_llcc, l_ddr) == pytest.approx((want.l_llcc_ns, want.l_ddr_ns), rel=1e-9)
        jit = 1.0 + 0.2 * rng.uniform(-1, 1, n)
        pi_want = model.per_instruction(ph, want, jit)
        pi = np.zeros((5, n))
        K.per_instruction(cpu_f, want.l_llcc_ns, want.l_ddr_ns, jit, pi)
        for row, name in enumerate(("rate", "stall_cycles", "refills", "ddr_bytes",
                                    "llcc_bytes")):
            np.testing.assert_allclose(pi[row], getattr(pi_want, name), rtol=1e-12)
