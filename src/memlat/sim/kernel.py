"""The closed loop as one whole-run kernel: executor, memory model, power, policies, governor.

Every function here is plain Python over numpy arrays and scalars, written so that numba
can compile it (`numba.extending.register_jitable`). The same source therefore runs two
ways, with the same operations in the same order:

* compiled: `run_loop_compiled` (numba, `cache=True` on disk; compiled once, loaded on
  later uses) - the default path;
* interpreted: `run_loop` called directly - the Python path (slow, kept as the
  executable reference and for the differential test in tests/simrun).

Sums run in CPU order, no fast-math, division by zero gives inf (numpy error model), so
both paths give bit-identical floats. The driver (memlat.sim.run) packs a workload,
profile and policy into the arrays below and grows the output arrays when a run needs
more room than estimated (the kernel stops with NEED_ROOM and resumes where it stopped).

The governor itself is memlat.governor._numba.governor_window (one implementation for
`memlat replay`'s batch engine and this loop).

Semantics (docs/model.md, docs/simulation.md): per window of dt_us the policy decides the
bus state from the previous window's observation; the executor runs the window (work
arrives per phase kind; phases end mid-window at their exact time); counters are the
floors of exact running sums; energy is charged per component, the last window only up to
the completion time. The memlat policy is the CPUCP governor (algorithm.md §2.11, the
same integer semantics as memlat.governor.reference) stepped once per window, its group
votes snapped up to the bus ladders (algorithm.md §2.5).
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np
from numba.extending import register_jitable

from memlat.governor._numba import G_NGROUPS, governor_window

# --- layout of the packed arrays (indices are compile-time constants for numba) ----------

# prof_f: profile scalars
P_L0, P_KLLCC, P_D0, P_KDDR, P_ETA, P_RHOMAX, P_LLCCQ = 0, 1, 2, 3, 4, 5, 6
P_DDR_BPC, P_DDR_CH, P_LLCC_BPC, P_LLCC_CH, P_DDR_PJ, P_LLCC_PJ, P_DT = 7, 8, 9, 10, 11, 12, 13
N_PROF = 14

# run_i / run_f: one row per phase run (repeats expanded), ordered by track
R_TRACK, R_KIND, R_CPU_OFF, R_NCPU, R_FRAMES, R_FRAME_OFF = 0, 1, 2, 3, 4, 5
N_RUN_I = 6
R_SPAN, R_PERIOD, R_NONCPU, R_CPI0, R_MPKI_LLCC, R_MPKI_DDR, R_MLP, R_READ, R_BPM, R_JIT = (
    0,
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
    9,
)
N_RUN_F = 10
# run_cf: per (run, cpu) columns of the flat cpu list
RC_WORK, RC_MHZ, RC_CORE_MW = 0, 1, 2
N_RUN_CF = 3
KIND_THROUGHPUT, KIND_STEADY, KIND_FRAMES = 0, 1, 2

# cpu_f: per-CPU float state (rows)
C_CPI0, C_MPKI_LLCC, C_MPKI_DDR, C_MLP, C_READ, C_BPM, C_MHZ = 0, 1, 2, 3, 4, 5, 6
C_CORE_MW, C_JIT, C_BACKLOG, C_RATE_IN, C_SPAN_END, C_NEXT_ARR, C_LAST_END = (
    7,
    8,
    9,
    10,
    11,
    12,
    13,
)
C_RATE0 = 14  # memo: unloaded instruction rate at (I_KEY_DDR, I_KEY_LLCC, I_KEY_VER)
N_CPU_F = 15
N_PARAMS = 7  # C_CPI0..C_MHZ: the PhaseArrays fields, in their order
# cpu_i: per-CPU int state
CI_FRAME_RUN, CI_FRAME_J, CI_FRAME_K, CI_IN_PHASE = 0, 1, 2, 3
N_CPU_I = 4

# st_f / st_i: scalar state
S_T, S_RETIRED, S_FINISH, S_NONCPU, S_E_CPU, S_E_DDR, S_E_LLCC = 0, 1, 2, 3, 4, 5, 6
S_OBS_DDR_B, S_OBS_LLCC_B, S_DDR_B, S_LLCC_B, S_WIN_NONCPU, S_INST = 7, 8, 9, 10, 11, 12
S_TOT_DDR_B, S_TOT_LLCC_B = 13, 14
N_ST_F = 15
I_W, I_ROWS, I_VER, I_FRAMES_LIVE, I_HAS_OBS, I_DDR, I_LLCC, I_QOS = 0, 1, 2, 3, 4, 5, 6, 7
I_BW_BELOW_DDR, I_BW_BELOW_LLCC, I_DONE = 8, 9, 10
I_KEY_DDR, I_KEY_LLCC, I_KEY_VER = 11, 12, 13  # the key of the C_RATE0 memo (-1: none)
I_JIT_BASE = 14  # window of jit_u's first row (the jitter arrives in chunks)
N_ST_I = 15
# track state: tr_i[t] = (current run index within the track, -1 before the first);
# tr_f[t] = (phase start us, finish us or -1)
TF_START, TF_FINISH = 0, 1

# policy kinds and pol_i / pol_f layout
POL_FIXED, POL_STATIC_MAP, POL_BWMON, POL_MEMLAT = 0, 1, 2, 3
PI_KIND, PI_DDR, PI_LLCC, PI_QOS, PI_DOWN = 0, 1, 2, 3, 4
N_POL_I = 5
PF_IO_PCT = 0
N_POL_F = 1
# buses of the static map / memlat group roles
B_DDR, B_LLCC, B_QOS = 0, 1, 2

# kernel status
DONE, NEED_ROOM = 0, 1

# counter ids (memlat.governor.spec, decisions.md §3) and the columns of the exact sums
L2_D_RFILL = 5
N_COUNTERS = 9

_INF = math.inf
_EPS_US = 1e-6
_EPS_INST = 1e-6
_MAX_SUBSTEPS = 256
_NEWTON_STEPS = 12
_MIN_CPU_SHARE = 0.05
_LINE_BYTES = 64.0
_NJ_PER_MW_US = 1e-9


# --- memory model (decisions.md §4, model-params.md §1.3; memlat.sim.model documents it) --


@register_jitable
def queue_ns(
    prof_f: np.ndarray, bpc_idx: int, ch_idx: int, mhz: float, demand: float
) -> tuple[float, float]:
    """M/M/1 wait (ns) and capped rho of one bus at `mhz` for `demand` bytes/us."""
    rho = demand / (prof_f[P_ETA] * (mhz * prof_f[bpc_idx] * prof_f[ch_idx]))
    rho = min(max(rho, 0.0), prof_f[P_RHOMAX])
    service = _LINE_BYTES / (prof_f[bpc_idx] * mhz) * 1000.0
    return service * rho / (1.0 - rho), rho


@register_jitable
def split_ab(cpu_f: np.ndarray, l_llcc: float, a: np.ndarray, b: np.ndarray) -> None:
    """a[c]: ns/inst independent of L_ddr; b[c]: DDR misses per inst / MLP (no jitter)."""
    n = a.shape[0]
    for c in range(n):
        ml = cpu_f[C_MPKI_LLCC, c]
        md = cpu_f[C_MPKI_DDR, c]
        mlp = cpu_f[C_MLP, c]
        a[c] = cpu_f[C_CPI0, c] * 1000.0 / cpu_f[C_MHZ, c] + (ml - md) * l_llcc / (1000.0 * mlp)
        b[c] = md / (1000.0 * mlp)


@register_jitable
def window_latency(
    prof_f: np.ndarray,
    cpu_f: np.ndarray,
    ddr_mhz: float,
    llcc_mhz: float,
    busy: np.ndarray,
    noncpu: float,
    a: np.ndarray,
    b: np.ndarray,
    k_ddr: np.ndarray,
) -> tuple[float, float]:
    """(L_llcc ns, L_ddr ns) of a window with CPU c busy about busy[c] of the time."""
    n = a.shape[0]
    l_llcc = prof_f[P_L0] + prof_f[P_KLLCC] / llcc_mhz
    l_ddr0 = l_llcc + prof_f[P_D0] + prof_f[P_KDDR] / ddr_mhz
    split_ab(cpu_f, l_llcc, a, b)
    for c in range(n):
        k_ddr[c] = busy[c] * cpu_f[C_MPKI_DDR, c] * (cpu_f[C_BPM, c] / cpu_f[C_READ, c])
    if prof_f[P_LLCCQ] != 0.0:
        dem = 0.0
        for c in range(n):
            k_llcc = busy[c] * cpu_f[C_MPKI_LLCC, c] * (cpu_f[C_BPM, c] / cpu_f[C_READ, c])
            dem += k_llcc / (a[c] + b[c] * l_ddr0)
        w, _ = queue_ns(prof_f, P_LLCC_BPC, P_LLCC_CH, llcc_mhz, dem)
        l_llcc += w
        l_ddr0 += w
        split_ab(cpu_f, l_llcc, a, b)
    demand = 0.0
    for c in range(n):
        demand += k_ddr[c] / (a[c] + b[c] * l_ddr0)
    demand += noncpu
    w, _ = queue_ns(prof_f, P_DDR_BPC, P_DDR_CH, ddr_mhz, demand)
    l_ddr = l_ddr0 + w
    peak = ddr_mhz * prof_f[P_DDR_BPC] * prof_f[P_DDR_CH] * prof_f[P_ETA]
    cap = max(peak - noncpu, _MIN_CPU_SHARE * peak)
    traffic = 0.0
    for c in range(n):
        traffic += k_ddr[c] / (a[c] + b[c] * l_ddr)
    if traffic > cap * (1 + 1e-9):
        # T(L) = sum k/(a+bL) is convex and decreasing: Newton from the left converges
        # monotonically to the latency at which the CPU traffic equals the cap.
        for _ in range(_NEWTON_STEPS):
            t = 0.0
            dt = 0.0
            for c in range(n):
                den = a[c] + b[c] * l_ddr
                t += k_ddr[c] / den
                dt -= k_ddr[c] * b[c] / (den * den)
            if dt == 0.0:
                break
            step = (t - cap) / -dt
            l_ddr += step
            if step < 1e-9 * l_ddr:
                break
    return l_llcc, l_ddr


@register_jitable
def per_instruction(
    cpu_f: np.ndarray, l_llcc: float, l_ddr: float, jit: np.ndarray, pi: np.ndarray
) -> None:
    """pi rows: rate (inst/us), stall cycles, refills, DDR bytes, LLCC bytes per inst.

    jit[c]: multiplicative jitter on the miss rates (1.0 = none).
    """
    n = pi.shape[1]
    for c in range(n):
        ml = cpu_f[C_MPKI_LLCC, c] * jit[c]
        md = cpu_f[C_MPKI_DDR, c] * jit[c]
        mlp = cpu_f[C_MLP, c]
        mhz = cpu_f[C_MHZ, c]
        core = cpu_f[C_CPI0, c] * 1000.0 / mhz
        a = core + (ml - md) * l_llcc / (1000.0 * mlp)
        b = md / (1000.0 * mlp)
        tpi = a + b * l_ddr
        per_miss = cpu_f[C_BPM, c] / cpu_f[C_READ, c] / 1000.0
        pi[0, c] = 1000.0 / tpi
        pi[1, c] = (tpi - core) * mhz / 1000.0
        pi[2, c] = ml / 1000.0
        pi[3, c] = md * per_miss
        pi[4, c] = ml * per_miss


# --- executor (docs/model.md) -----------------------------------------------------------


@register_jitable
def advance_track(
    tr: int,
    t: float,
    run_i: np.ndarray,
    run_f: np.ndarray,
    run_cpu: np.ndarray,
    run_cf: np.ndarray,
    track_runs: np.ndarray,
    tr_i: np.ndarray,
    tr_f: np.ndarray,
    cpu_f: np.ndarray,
    cpu_i: np.ndarray,
    st_f: np.ndarray,
    st_i: np.ndarray,
    ver_runs: np.ndarray,
    ver_params: np.ndarray,
) -> None:
    """Finish track tr's current phase at time t and load its next one (if any)."""
    n_tracks = tr_i.shape[0]
    first = track_runs[tr, 0]
    k = tr_i[tr]
    st_i[I_VER] += 1
    if 0 <= k < track_runs[tr, 1]:
        r = first + k
        if run_i[r, R_KIND] == KIND_FRAMES:
            st_i[I_FRAMES_LIVE] -= 1
        off = run_i[r, R_CPU_OFF]
        for j in range(run_i[r, R_NCPU]):
            c = run_cpu[off + j]
            cpu_f[C_MPKI_LLCC, c] = 0.0
            cpu_f[C_MPKI_DDR, c] = 0.0
            cpu_f[C_RATE_IN, c] = 0.0
            cpu_f[C_BACKLOG, c] = 0.0
            cpu_f[C_NEXT_ARR, c] = _INF
            cpu_f[C_SPAN_END, c] = -_INF
            cpu_f[C_JIT, c] = 0.0
            cpu_i[CI_FRAME_RUN, c] = -1
            cpu_i[CI_IN_PHASE, c] = 0
        st_f[S_NONCPU] -= run_f[r, R_NONCPU]
    k += 1
    tr_i[tr] = k
    if k >= track_runs[tr, 1]:
        tr_f[tr, TF_FINISH] = t
        fin = -1.0
        for x in range(n_tracks):
            if tr_f[x, TF_FINISH] < 0.0:
                fin = -2.0
                break
        if fin == -1.0:
            last = 0.0
            for x in range(n_tracks):
                last = max(last, tr_f[x, TF_FINISH])
            st_f[S_FINISH] = last
            st_i[I_DONE] = 1
    else:
        r = first + k
        off = run_i[r, R_CPU_OFF]
        tr_f[tr, TF_START] = t
        st_f[S_NONCPU] += run_f[r, R_NONCPU]
        kind = run_i[r, R_KIND]
        if kind == KIND_FRAMES:
            st_i[I_FRAMES_LIVE] += 1
        for j in range(run_i[r, R_NCPU]):
            c = run_cpu[off + j]
            cpu_f[C_CPI0, c] = run_f[r, R_CPI0]
            cpu_f[C_MPKI_LLCC, c] = run_f[r, R_MPKI_LLCC]
            cpu_f[C_MPKI_DDR, c] = run_f[r, R_MPKI_DDR]
            cpu_f[C_MLP, c] = run_f[r, R_MLP]
            cpu_f[C_READ, c] = run_f[r, R_READ]
            cpu_f[C_BPM, c] = run_f[r, R_BPM]
            cpu_f[C_MHZ, c] = run_cf[RC_MHZ, off + j]
            cpu_f[C_CORE_MW, c] = run_cf[RC_CORE_MW, off + j]
            cpu_f[C_JIT, c] = run_f[r, R_JIT]
            cpu_f[C_LAST_END, c] = t
            cpu_i[CI_IN_PHASE, c] = 1
            if kind == KIND_THROUGHPUT:
                cpu_f[C_BACKLOG, c] = run_cf[RC_WORK, off + j]
                cpu_f[C_SPAN_END, c] = t
            elif kind == KIND_STEADY:
                cpu_f[C_RATE_IN, c] = run_cf[RC_WORK, off + j]
                cpu_f[C_SPAN_END, c] = t + run_f[r, R_SPAN]
            else:
                cpu_f[C_SPAN_END, c] = t + run_f[r, R_SPAN]
                cpu_f[C_NEXT_ARR, c] = t
                cpu_i[CI_FRAME_RUN, c] = r
                cpu_i[CI_FRAME_J, c] = j
                cpu_i[CI_FRAME_K, c] = 0
    v = st_i[I_VER]
    if v < ver_runs.shape[0]:
        for x in range(n_tracks):
            kk = tr_i[x]
            ver_runs[v, x] = track_runs[x, 0] + kk if 0 <= kk < track_runs[x, 1] else -1
        for p in range(N_PARAMS):
            for c in range(cpu_f.shape[1]):
                ver_params[v, p, c] = cpu_f[p, c]


@register_jitable
def track_span_end(
    tr: int,
    run_i: np.ndarray,
    run_cpu: np.ndarray,
    track_runs: np.ndarray,
    tr_i: np.ndarray,
    cpu_f: np.ndarray,
) -> float:
    """Span end of the track's current phase (its first CPU's), NaN when it has none."""
    k = tr_i[tr]
    if not 0 <= k < track_runs[tr, 1]:
        return math.nan
    r = track_runs[tr, 0] + k
    return cpu_f[C_SPAN_END, run_cpu[run_i[r, R_CPU_OFF]]]


@register_jitable
def quiet(
    t1: float,
    run_i: np.ndarray,
    run_cpu: np.ndarray,
    track_runs: np.ndarray,
    tr_i: np.ndarray,
    cpu_f: np.ndarray,
) -> bool:
    """No CPU has work and no event falls in [t, t1): the window is all idle."""
    n = cpu_f.shape[1]
    for c in range(n):
        if cpu_f[C_BACKLOG, c] != 0.0 or cpu_f[C_RATE_IN, c] != 0.0:
            return False
    for c in range(n):
        if cpu_f[C_NEXT_ARR, c] < t1:
            return False
    for tr in range(tr_i.shape[0]):
        se = track_span_end(tr, run_i, run_cpu, track_runs, tr_i, cpu_f)
        if se == se and se < t1:
            return False
    return True


@register_jitable
def costs(
    prof_f: np.ndarray,
    cpu_f: np.ndarray,
    cpu_i: np.ndarray,
    run_cpu: np.ndarray,
    run_cf: np.ndarray,
    frame_work: np.ndarray,
    run_i: np.ndarray,
    st_f: np.ndarray,
    st_i: np.ndarray,
    ddr_mhz: float,
    llcc_mhz: float,
    dt: float,
    t1: float,
    scratch: np.ndarray,
    pi: np.ndarray,
    jit: np.ndarray,
) -> tuple[float, float]:
    """Window latency (from the jitter-free mean demand) and per-instruction costs in pi.

    The busy estimate is quantised to 1/32 of the window (as the memoised Python
    executor did), so windows with similar load see the same latency.
    """
    n = cpu_f.shape[1]
    a = scratch[0]
    b = scratch[1]
    k_ddr = scratch[2]
    zero = scratch[3]
    busy = scratch[4]
    ones = scratch[5]
    d_key = int(ddr_mhz * 1000.0)
    l_key = int(llcc_mhz * 1000.0)
    if st_i[I_KEY_DDR] != d_key or st_i[I_KEY_LLCC] != l_key or st_i[I_KEY_VER] != st_i[I_VER]:
        for c in range(n):
            zero[c] = 0.0
            ones[c] = 1.0
        l_llcc0, l_ddr0 = window_latency(prof_f, cpu_f, ddr_mhz, llcc_mhz, zero, 0.0, a, b, k_ddr)
        per_instruction(cpu_f, l_llcc0, l_ddr0, ones, pi)
        for c in range(n):
            cpu_f[C_RATE0, c] = pi[0, c]
        st_i[I_KEY_DDR] = d_key
        st_i[I_KEY_LLCC] = l_key
        st_i[I_KEY_VER] = st_i[I_VER]
    nxt = _INF
    for c in range(n):
        nxt = min(nxt, cpu_f[C_NEXT_ARR, c])
    frames = st_i[I_FRAMES_LIVE] != 0 and nxt < t1
    for c in range(n):
        want = cpu_f[C_BACKLOG, c] + cpu_f[C_RATE_IN, c] * dt
        if frames:
            extra = 0.0
            r = cpu_i[CI_FRAME_RUN, c]
            if cpu_f[C_NEXT_ARR, c] < t1 and r >= 0:
                nc = run_i[r, R_NCPU]
                extra = frame_work[
                    run_i[r, R_FRAME_OFF] + cpu_i[CI_FRAME_K, c] * nc + cpu_i[CI_FRAME_J, c]
                ]
            want = want + extra
        rate0 = cpu_f[C_RATE0, c] * dt
        busy[c] = np.ceil(min(1.0, want / rate0) * 32.0) / 32.0
    l_llcc, l_ddr = window_latency(
        prof_f, cpu_f, ddr_mhz, llcc_mhz, busy, st_f[S_NONCPU], a, b, k_ddr
    )
    per_instruction(cpu_f, l_llcc, l_ddr, jit, pi)
    return l_llcc, l_ddr


@register_jitable
def arrive(
    c: int,
    e: float,
    cpu_f: np.ndarray,
    cpu_i: np.ndarray,
    run_i: np.ndarray,
    run_f: np.ndarray,
    frame_work: np.ndarray,
) -> None:
    """Deliver the next frame's work to CPU c at time e (its arrival time)."""
    r = cpu_i[CI_FRAME_RUN, c]
    j = cpu_i[CI_FRAME_J, c]
    k = cpu_i[CI_FRAME_K, c]
    nc = run_i[r, R_NCPU]
    cpu_f[C_BACKLOG, c] += frame_work[run_i[r, R_FRAME_OFF] + k * nc + j]
    if k + 1 < run_i[r, R_FRAMES]:
        cpu_i[CI_FRAME_K, c] = k + 1
        cpu_f[C_NEXT_ARR, c] = (
            cpu_f[C_SPAN_END, c] - run_f[r, R_SPAN] + (k + 1) * run_f[r, R_PERIOD]
        )
    else:
        cpu_f[C_NEXT_ARR, c] = _INF


@register_jitable
def flush(acc: np.ndarray, epoch: np.ndarray, pi: np.ndarray, inst: np.ndarray) -> None:
    """Add the per-instruction costs of `epoch` instructions into acc; epoch into inst."""
    for c in range(epoch.shape[0]):
        acc[0, c] += epoch[c] * pi[1, c]
        acc[1, c] += epoch[c] * pi[2, c]
        acc[2, c] += epoch[c] * pi[3, c]
        acc[3, c] += epoch[c] * pi[4, c]
        inst[c] += epoch[c]
        epoch[c] = 0.0


@register_jitable
def jitter_row(cpu_f: np.ndarray, jit_u: np.ndarray, w: int, jit: np.ndarray) -> None:
    """1 + amplitude x the pre-drawn uniform of window w, per CPU (1.0 without jitter)."""
    n = jit.shape[0]
    have = jit_u.shape[0] > 0
    for c in range(n):
        amp = cpu_f[C_JIT, c]
        jit[c] = 1.0 + amp * jit_u[w, c] if have and amp != 0.0 else 1.0


@register_jitable
def step(
    prof_f: np.ndarray,
    const_mhz: np.ndarray,
    run_i: np.ndarray,
    run_f: np.ndarray,
    run_cpu: np.ndarray,
    run_cf: np.ndarray,
    frame_work: np.ndarray,
    track_runs: np.ndarray,
    tr_i: np.ndarray,
    tr_f: np.ndarray,
    cpu_f: np.ndarray,
    cpu_i: np.ndarray,
    st_f: np.ndarray,
    st_i: np.ndarray,
    cum: np.ndarray,
    emitted: np.ndarray,
    deltas: np.ndarray,
    ver_runs: np.ndarray,
    ver_params: np.ndarray,
    jit_u: np.ndarray,
    ddr_mhz: float,
    llcc_mhz: float,
    inst: np.ndarray,
    busy_us: np.ndarray,
    scratch: np.ndarray,
    pi: np.ndarray,
    acc: np.ndarray,
    tau: np.ndarray,
) -> None:
    """Advance one window at (ddr_mhz, llcc_mhz): deltas, inst, busy_us and the window's
    bytes (st_f S_DDR_B incl. non-CPU, S_LLCC_B, S_WIN_NONCPU) are written."""
    n = cpu_f.shape[1]
    n_tracks = tr_i.shape[0]
    dt = prof_f[P_DT]
    t0 = st_f[S_T]
    t1 = t0 + dt
    w = st_i[I_W]
    for c in range(n):
        inst[c] = 0.0
        busy_us[c] = 0.0
        for k in range(N_COUNTERS):
            deltas[c, k] = np.uint64(0)
    if st_i[I_DONE] != 0 or quiet(t1, run_i, run_cpu, track_runs, tr_i, cpu_f):
        st_f[S_T] = t1
        nb = st_f[S_NONCPU] * dt if st_i[I_DONE] == 0 else 0.0
        st_f[S_DDR_B] = nb
        st_f[S_LLCC_B] = 0.0
        st_f[S_WIN_NONCPU] = nb
        return
    jit = scratch[6]
    epoch = scratch[7]
    jitter_row(cpu_f, jit_u, w - st_i[I_JIT_BASE], jit)
    l_llcc, l_ddr = costs(
        prof_f,
        cpu_f,
        cpu_i,
        run_cpu,
        run_cf,
        frame_work,
        run_i,
        st_f,
        st_i,
        ddr_mhz,
        llcc_mhz,
        dt,
        t1,
        scratch,
        pi,
        jit,
    )
    noncpu_bytes = st_f[S_NONCPU] * dt
    for c in range(n):
        epoch[c] = 0.0
        for k in range(4):
            acc[k, c] = 0.0
        tau[c] = t0 if cpu_i[CI_IN_PHASE, c] != 0 else t1
    for _ in range(_MAX_SUBSTEPS):
        any_live = False
        for c in range(n):
            if tau[c] < t1 - _EPS_US:
                any_live = True
                break
        if not any_live:
            break
        for c in range(n):
            tc = tau[c]
            if not tc < t1 - _EPS_US:
                continue
            se = cpu_f[C_SPAN_END, c]
            fut = se if se > tc + _EPS_US else _INF
            e = min(min(cpu_f[C_NEXT_ARR, c], fut), t1)
            e = max(e, tc)
            span = e - tc
            inflow = cpu_f[C_RATE_IN, c] * span
            rate = pi[0, c]
            have = cpu_f[C_BACKLOG, c] + inflow
            bb = min(span, have / rate)
            done = bb * rate
            left = have - done
            cpu_f[C_BACKLOG, c] = 0.0 if left < _EPS_INST else left
            epoch[c] += done
            busy_us[c] += bb
            if bb > 0:
                cpu_f[C_LAST_END, c] = tc + bb
            tau[c] = e
            if cpu_f[C_NEXT_ARR, c] <= e + _EPS_US:
                arrive(c, e, cpu_f, cpu_i, run_i, run_f, frame_work)
        for c in range(n):
            if cpu_f[C_SPAN_END, c] <= tau[c] + _EPS_US:
                cpu_f[C_RATE_IN, c] = 0.0
        changed = False
        for tr in range(n_tracks):
            k = tr_i[tr]
            if not 0 <= k < track_runs[tr, 1]:
                continue
            r = track_runs[tr, 0] + k
            off = run_i[r, R_CPU_OFF]
            nc = run_i[r, R_NCPU]
            now = -_INF
            for j in range(nc):
                now = max(now, tau[run_cpu[off + j]])
            span_end = cpu_f[C_SPAN_END, run_cpu[off]]
            if span_end > now + _EPS_US:
                continue
            pending = False
            last = -_INF
            for j in range(nc):
                c = run_cpu[off + j]
                if cpu_f[C_BACKLOG, c] > _EPS_INST or cpu_f[C_NEXT_ARR, c] < _INF:
                    pending = True
                    break
                last = max(last, cpu_f[C_LAST_END, c])
            if pending:
                continue
            fin = max(max(last, span_end), tr_f[tr, TF_START])
            advance_track(
                tr,
                fin,
                run_i,
                run_f,
                run_cpu,
                run_cf,
                track_runs,
                tr_i,
                tr_f,
                cpu_f,
                cpu_i,
                st_f,
                st_i,
                ver_runs,
                ver_params,
            )
            changed = True
            k = tr_i[tr]
            if 0 <= k < track_runs[tr, 1]:
                r = track_runs[tr, 0] + k
                off = run_i[r, R_CPU_OFF]
                for j in range(run_i[r, R_NCPU]):
                    tau[run_cpu[off + j]] = max(fin, t0)
        if changed:
            # new phases run at this window's latencies (and this window's jitter draw)
            flush(acc, epoch, pi, inst)
            jitter_row(cpu_f, jit_u, w - st_i[I_JIT_BASE], jit)
            per_instruction(cpu_f, l_llcc, l_ddr, jit, pi)
    flush(acc, epoch, pi, inst)
    st_f[S_T] = t1
    total = 0.0
    ddr_b = 0.0
    llcc_b = 0.0
    for c in range(n):
        total += inst[c]
        ddr_b += acc[2, c]
        llcc_b += acc[3, c]
    st_f[S_RETIRED] += total
    st_f[S_INST] = total
    st_f[S_DDR_B] = ddr_b + noncpu_bytes
    st_f[S_LLCC_B] = llcc_b
    st_f[S_WIN_NONCPU] = noncpu_bytes
    # integer deltas whose running sums are the floors of the exact running sums
    for c in range(n):
        cum[c, 0] += busy_us[c] * cpu_f[C_MHZ, c]
        cum[c, 1] += busy_us[c] * const_mhz[c]
        cum[c, 2] += inst[c]
        cum[c, 3] += acc[0, c]
        cum[c, 4] += acc[1, c]
        for k in range(5):
            fl = np.floor(cum[c, k] + 1e-6)
            d = max(fl - emitted[c, k], 0.0)
            emitted[c, k] += d
            ev = k if k < 4 else L2_D_RFILL
            deltas[c, ev] = np.uint64(d)


# --- power (model-params.md §3; memlat.sim.power documents it) ---------------------------


@register_jitable
def window_energy(
    prof_f: np.ndarray,
    cpu_f: np.ndarray,
    idle_mw: np.ndarray,
    cluster_of: np.ndarray,
    static_mw: np.ndarray,
    busiest: np.ndarray,
    span: float,
    busy_us: np.ndarray,
    ddr_mw: float,
    llcc_mw: float,
    ddr_b: float,
    llcc_b: float,
) -> tuple[float, float, float]:
    """(CPU J, DDR J, LLCC J) of a window of `span` us."""
    n = cpu_f.shape[1]
    mw_us = 0.0
    for c in range(n):
        mw_us += busy_us[c] * cpu_f[C_CORE_MW, c]
    for c in range(n):
        mw_us += (span - busy_us[c]) * idle_mw[c]
    for k in range(busiest.shape[0]):
        busiest[k] = 0.0
    for c in range(n):
        k = cluster_of[c]
        busiest[k] = max(busiest[k], busy_us[c])
    for k in range(busiest.shape[0]):
        mw_us += busiest[k] * static_mw[k]
    e_cpu = mw_us * _NJ_PER_MW_US
    e_ddr = ddr_mw * span * _NJ_PER_MW_US + prof_f[P_DDR_PJ] * ddr_b * 1e-12
    e_llcc = llcc_mw * span * _NJ_PER_MW_US + prof_f[P_LLCC_PJ] * llcc_b * 1e-12
    return e_cpu, e_ddr, e_llcc


# --- policies (decisions.md §4; memlat.sim.policies documents each) ---------------------


@register_jitable
def snap_up(ladder: np.ndarray, mhz: float) -> int:
    """Index of the lowest OPP >= mhz (the top OPP when mhz is above the ladder)."""
    x = mhz - 1e-9
    i = 0
    n = ladder.shape[0]
    while i < n and ladder[i] < x:
        i += 1
    return min(i, n - 1)


@register_jitable
def static_map_bus(
    bus: int,
    req: np.ndarray,
    sm_has: np.ndarray,
    sm_keys: np.ndarray,
    sm_vals: np.ndarray,
    sm_nrows: np.ndarray,
    sm_minmax: np.ndarray,
    sm_level: np.ndarray,
    ncfg: int,
) -> float:
    """The static-map vote of one bus in kHz (or a level): max over CPUs of their map."""
    best = 0.0
    for c in range(min(req.shape[0], ncfg)):
        if not sm_has[bus, c]:
            continue
        cand = int(req[c])
        nrows = sm_nrows[bus, c]
        value = 0
        if nrows > 0:
            value = sm_vals[bus, c, nrows - 1]
            for r in range(nrows):
                if sm_keys[bus, c, r] >= cand:
                    value = sm_vals[bus, c, r]
                    break
        khz = value if sm_level[bus] != 0 else value * 1000
        khz = min(max(khz, sm_minmax[bus, c, 0]), sm_minmax[bus, c, 1])
        best = max(best, float(khz))
    return best


@register_jitable
def decide(
    pol_i: np.ndarray,
    pol_f: np.ndarray,
    st_f: np.ndarray,
    st_i: np.ndarray,
    cpu_f: np.ndarray,
    cpu_i: np.ndarray,
    deltas: np.ndarray,
    dt_arr: np.ndarray,
    ddr_ladder: np.ndarray,
    llcc_ladder: np.ndarray,
    ddr_per_mhz: float,
    llcc_per_mhz: float,
    req: np.ndarray,
    sm_has: np.ndarray,
    sm_keys: np.ndarray,
    sm_vals: np.ndarray,
    sm_nrows: np.ndarray,
    sm_minmax: np.ndarray,
    sm_level: np.ndarray,
    sm_ncfg: int,
    gov_i: np.ndarray,
    cmax: np.ndarray,
    grp_ev: np.ndarray,
    grp_adapt: np.ndarray,
    grp_bus: np.ndarray,
    mon_grp: np.ndarray,
    mon_u: np.ndarray,
    mon_mask: np.ndarray,
    mon_keys: np.ndarray,
    mon_vals: np.ndarray,
    mon_nrows: np.ndarray,
    mon_minmax: np.ndarray,
    ipm: np.ndarray,
    gf: np.ndarray,
    gfe: np.ndarray,
    gbe: np.ndarray,
    gwb: np.ndarray,
    targets: np.ndarray,
    votes: np.ndarray,
) -> None:
    """Set st_i I_DDR / I_LLCC (ladder indices) and I_QOS for the coming window."""
    kind = pol_i[PI_KIND]
    top_d = ddr_ladder.shape[0] - 1
    top_l = llcc_ladder.shape[0] - 1
    has_obs = st_i[I_HAS_OBS] != 0
    if kind == POL_FIXED:
        st_i[I_DDR] = pol_i[PI_DDR]
        st_i[I_LLCC] = pol_i[PI_LLCC]
        st_i[I_QOS] = pol_i[PI_QOS]
    elif kind == POL_STATIC_MAP:
        n = req.shape[0]
        for c in range(n):
            req[c] = cpu_f[C_MHZ, c] if cpu_i[CI_IN_PHASE, c] != 0 else 0.0
        d = static_map_bus(
            B_DDR, req, sm_has, sm_keys, sm_vals, sm_nrows, sm_minmax, sm_level, sm_ncfg
        )
        ll = static_map_bus(
            B_LLCC, req, sm_has, sm_keys, sm_vals, sm_nrows, sm_minmax, sm_level, sm_ncfg
        )
        q = static_map_bus(
            B_QOS, req, sm_has, sm_keys, sm_vals, sm_nrows, sm_minmax, sm_level, sm_ncfg
        )
        st_i[I_DDR] = snap_up(ddr_ladder, d / 1000.0)
        st_i[I_LLCC] = snap_up(llcc_ladder, ll / 1000.0)
        st_i[I_QOS] = int(q)
    elif kind == POL_BWMON:
        if not has_obs:
            st_i[I_DDR] = pol_i[PI_DDR]
            st_i[I_LLCC] = pol_i[PI_LLCC]
            st_i[I_QOS] = pol_i[PI_QOS]
        else:
            dt = dt_arr[0]
            io = pol_f[PF_IO_PCT]
            for bus in range(2):
                nbytes = st_f[S_OBS_DDR_B] if bus == 0 else st_f[S_OBS_LLCC_B]
                per_mhz = ddr_per_mhz if bus == 0 else llcc_per_mhz
                need = nbytes / dt * 100.0 / io / per_mhz
                ladder = ddr_ladder if bus == 0 else llcc_ladder
                target = snap_up(ladder, need)
                slot = I_DDR if bus == 0 else I_LLCC
                below = I_BW_BELOW_DDR if bus == 0 else I_BW_BELOW_LLCC
                cur = st_i[slot]
                if ladder[target] >= ladder[cur]:
                    st_i[below] = 0
                    st_i[slot] = target
                else:
                    st_i[below] += 1
                    if st_i[below] >= pol_i[PI_DOWN]:
                        st_i[below] = 0
                        st_i[slot] = target
            st_i[I_QOS] = 0
    else:  # POL_MEMLAT
        if not has_obs:
            # boot state before the first vote: the top OPPs (docs/simulation.md)
            st_i[I_DDR] = top_d
            st_i[I_LLCC] = top_l
            st_i[I_QOS] = 1
        else:
            governor_window(
                deltas,
                dt_arr,
                gov_i,
                cmax,
                grp_ev,
                grp_adapt,
                mon_grp,
                mon_u,
                mon_mask,
                mon_keys,
                mon_vals,
                mon_nrows,
                mon_minmax,
                ipm,
                gf,
                gfe,
                gbe,
                gwb,
                targets,
                votes,
            )
            st_i[I_DDR] = top_d
            st_i[I_LLCC] = top_l
            st_i[I_QOS] = 1
            for g in range(gov_i[G_NGROUPS]):
                role = grp_bus[g]
                if role == B_DDR:
                    st_i[I_DDR] = snap_up(ddr_ladder, votes[g] / 1000.0)
                elif role == B_LLCC:
                    st_i[I_LLCC] = snap_up(llcc_ladder, votes[g] / 1000.0)
                elif role == B_QOS:
                    st_i[I_QOS] = votes[g]


# --- the run loop ------------------------------------------------------------------------


def run_loop(
    prof_f: np.ndarray,
    const_mhz: np.ndarray,
    idle_mw: np.ndarray,
    cluster_of: np.ndarray,
    static_mw: np.ndarray,
    ddr_ladder: np.ndarray,
    ddr_mw: np.ndarray,
    llcc_ladder: np.ndarray,
    llcc_mw: np.ndarray,
    run_i: np.ndarray,
    run_f: np.ndarray,
    run_cpu: np.ndarray,
    run_cf: np.ndarray,
    frame_work: np.ndarray,
    track_runs: np.ndarray,
    tr_i: np.ndarray,
    tr_f: np.ndarray,
    cpu_f: np.ndarray,
    cpu_i: np.ndarray,
    st_f: np.ndarray,
    st_i: np.ndarray,
    cum: np.ndarray,
    emitted: np.ndarray,
    deltas: np.ndarray,
    ver_runs: np.ndarray,
    ver_params: np.ndarray,
    jit_u: np.ndarray,
    pol_i: np.ndarray,
    pol_f: np.ndarray,
    sm_has: np.ndarray,
    sm_keys: np.ndarray,
    sm_vals: np.ndarray,
    sm_nrows: np.ndarray,
    sm_minmax: np.ndarray,
    sm_level: np.ndarray,
    sm_ncfg: int,
    gov_i: np.ndarray,
    cmax: np.ndarray,
    grp_ev: np.ndarray,
    grp_adapt: np.ndarray,
    grp_bus: np.ndarray,
    mon_grp: np.ndarray,
    mon_u: np.ndarray,
    mon_mask: np.ndarray,
    mon_keys: np.ndarray,
    mon_vals: np.ndarray,
    mon_nrows: np.ndarray,
    mon_minmax: np.ndarray,
    ipm: np.ndarray,
    tl_t: np.ndarray,
    tl_dt: np.ndarray,
    tl_ddr: np.ndarray,
    tl_llcc: np.ndarray,
    tl_qos: np.ndarray,
    tl_ver: np.ndarray,
    snap_on: bool,
    sn_ver: np.ndarray,
    sn_inst: np.ndarray,
    sn_busy: np.ndarray,
    sn_noncpu: np.ndarray,
    ctr_on: bool,
    ctr_out: np.ndarray,
    max_windows: int,
) -> tuple[int, int]:
    """Run windows until the workload is done (DONE) or an output array is full
    (NEED_ROOM: grow it and call again; every piece of state lives in the arrays).

    Output rows (one per charged window): tl_t/tl_dt (s), ladder indices, QoS level, the
    phase version at the window start; with snap_on the version at its end, per-CPU
    instructions and busy us, non-CPU bytes (the oracle's inputs); with ctr_on the
    counter deltas. Returns (status, error): error 1 = max_windows exceeded.
    """
    n = cpu_f.shape[1]
    dt = prof_f[P_DT]
    ddr_per_mhz = prof_f[P_DDR_BPC] * prof_f[P_DDR_CH]
    llcc_per_mhz = prof_f[P_LLCC_BPC] * prof_f[P_LLCC_CH]
    inst = np.zeros(n)
    busy_us = np.zeros(n)
    scratch = np.zeros((8, n))
    pi = np.zeros((5, n))
    acc = np.zeros((4, n))
    tau = np.zeros(n)
    req = np.zeros(n)
    busiest = np.zeros(static_mw.shape[0])
    dt_arr = np.full(n, np.int64(dt))
    n_mon = mon_grp.shape[0]
    targets = np.zeros(max(n_mon, 1), np.int64)
    votes = np.zeros(max(gov_i[G_NGROUPS], 1), np.int64)
    gf = np.zeros(n, np.uint64)
    gfe = np.zeros(n, np.uint64)
    gbe = np.zeros(n, np.uint64)
    gwb = np.zeros((n, max(gov_i[G_NGROUPS], 1)), np.uint64)
    cap = tl_t.shape[0]
    if st_i[I_W] == 0 and st_i[I_VER] == 0:  # a fresh run: every track loads its first phase
        for tr in range(tr_i.shape[0]):
            advance_track(
                tr,
                0.0,
                run_i,
                run_f,
                run_cpu,
                run_cf,
                track_runs,
                tr_i,
                tr_f,
                cpu_f,
                cpu_i,
                st_f,
                st_i,
                ver_runs,
                ver_params,
            )
    while True:
        w = st_i[I_W]
        if w >= max_windows:
            return NEED_ROOM, 1
        if st_i[I_ROWS] >= cap or (jit_u.shape[0] > 0
                                   and w - st_i[I_JIT_BASE] >= jit_u.shape[0]):
            return NEED_ROOM, 0
        decide(
            pol_i,
            pol_f,
            st_f,
            st_i,
            cpu_f,
            cpu_i,
            deltas,
            dt_arr,
            ddr_ladder,
            llcc_ladder,
            ddr_per_mhz,
            llcc_per_mhz,
            req,
            sm_has,
            sm_keys,
            sm_vals,
            sm_nrows,
            sm_minmax,
            sm_level,
            sm_ncfg,
            gov_i,
            cmax,
            grp_ev,
            grp_adapt,
            grp_bus,
            mon_grp,
            mon_u,
            mon_mask,
            mon_keys,
            mon_vals,
            mon_nrows,
            mon_minmax,
            ipm,
            gf,
            gfe,
            gbe,
            gwb,
            targets,
            votes,
        )
        d_idx = st_i[I_DDR]
        l_idx = st_i[I_LLCC]
        ver0 = st_i[I_VER]
        t0 = st_f[S_T]
        step(
            prof_f,
            const_mhz,
            run_i,
            run_f,
            run_cpu,
            run_cf,
            frame_work,
            track_runs,
            tr_i,
            tr_f,
            cpu_f,
            cpu_i,
            st_f,
            st_i,
            cum,
            emitted,
            deltas,
            ver_runs,
            ver_params,
            jit_u,
            ddr_ladder[d_idx],
            llcc_ladder[l_idx],
            inst,
            busy_us,
            scratch,
            pi,
            acc,
            tau,
        )
        st_i[I_W] = w + 1
        done = st_i[I_DONE] != 0
        span = dt if not done else max(0.0, st_f[S_FINISH] - t0)
        if span > 0:
            e_cpu, e_ddr, e_llcc = window_energy(
                prof_f,
                cpu_f,
                idle_mw,
                cluster_of,
                static_mw,
                busiest,
                span,
                busy_us,
                ddr_mw[d_idx],
                llcc_mw[l_idx],
                st_f[S_DDR_B],
                st_f[S_LLCC_B],
            )
            st_f[S_E_CPU] += e_cpu
            st_f[S_E_DDR] += e_ddr
            st_f[S_E_LLCC] += e_llcc
            st_f[S_TOT_DDR_B] += st_f[S_DDR_B]
            st_f[S_TOT_LLCC_B] += st_f[S_LLCC_B]
            row = st_i[I_ROWS]
            tl_t[row] = t0 / 1e6
            tl_dt[row] = span / 1e6
            tl_ddr[row] = d_idx
            tl_llcc[row] = l_idx
            tl_qos[row] = st_i[I_QOS]
            tl_ver[row] = ver0
            if snap_on:
                sn_ver[row] = st_i[I_VER]
                sn_noncpu[row] = st_f[S_WIN_NONCPU]
                for c in range(n):
                    sn_inst[row, c] = inst[c]
                    sn_busy[row, c] = busy_us[c]
            if ctr_on:
                for c in range(n):
                    for k in range(N_COUNTERS):
                        ctr_out[row, c, k] = deltas[c, k]
            st_i[I_ROWS] = row + 1
        if done:
            return DONE, 0
        st_i[I_HAS_OBS] = 1
        st_f[S_OBS_DDR_B] = st_f[S_DDR_B]
        st_f[S_OBS_LLCC_B] = st_f[S_LLCC_B]


_COMPILED: dict[str, Any] = {}


def _jit(name: str, fn: Any) -> Any:
    compiled = _COMPILED.get(name)
    if compiled is None:
        compiled = numba.njit(cache=True, nogil=True, error_model="numpy")(fn)
        _COMPILED[name] = compiled
    return compiled


def run_loop_compiled() -> Any:
    """The numba-compiled run_loop (compiled on first use, then loaded from the disk
    cache next to this module)."""
    return _jit("run_loop", run_loop)
