"""The compiled governor: one window (`governor_window`) and a whole trace (`run_trace_numba`).

Same semantics as `memlat.governor.reference` (algorithm.md §2.11, decisions.md §2).
All arithmetic is done in uint64 with explicit masks so that numba never promotes to
float. `governor_window` is plain Python that numba can compile
(`register_jitable`): the simulator's run loop (memlat.sim.kernel) calls it once per
window, and the batch engine's trace kernel here calls it for every window of a trace,
so both use one implementation. Compiled code is cached on disk (`cache=True`).
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
from numba.extending import register_jitable

from memlat.governor.spec import (
    N_COUNTERS,
    UNUSED_EVENT,
    BatchResult,
    CounterTrace,
    GovernorConfig,
)

# gov_i layout
G_METHOD, G_INST, G_CYC, G_CONST, G_FE, G_BE, G_NGROUPS = 0, 1, 2, 3, 4, 5, 6
N_GOV_I = 7

_M32 = np.uint64(0xFFFF_FFFF)
_U0 = np.uint64(0)
_U100 = np.uint64(100)


def _event(e: int) -> int:
    """Counter column, or -1 for an unused slot / unknown id (reads as 0)."""
    return e if e != UNUSED_EVENT and 0 <= e < N_COUNTERS else -1


def pack_governor(config: GovernorConfig, ncpus: int) -> tuple[np.ndarray, ...]:
    """The arrays governor_window reads, for `ncpus` CPUs (CPUs beyond a mask are idle):
    (gov_i, cmax, grp_ev, grp_adapt, mon_grp, mon_u, mon_mask, mon_keys, mon_vals,
    mon_nrows, mon_minmax)."""
    ev = config.common
    groups = config.groups
    n_g = len(groups)
    gov_i = np.array(
        [
            config.method,
            _event(ev.inst),
            _event(ev.cyc),
            _event(ev.const_cyc),
            _event(ev.fe_stall),
            _event(ev.be_stall),
            n_g,
        ],
        np.int64,
    )
    cmax = np.zeros(ncpus, np.uint64)
    k = min(ncpus, len(config.cluster_max_mhz))
    cmax[:k] = np.asarray(config.cluster_max_mhz[:k], np.uint64)
    grp_ev = np.array(
        [[_event(g.miss_event), _event(g.wb_event), _event(g.acc_event)] for g in groups], np.int64
    ).reshape(n_g, 3)
    grp_adapt = np.array(
        [[g.adaptive_low_khz, g.adaptive_high_khz] for g in groups], np.int64
    ).reshape(n_g, 2)
    mons = config.monitors
    n_m = len(mons)
    rows = max([len(m.map_rows) for _, _, m in mons] + [1])
    mon_grp = np.array([g for g, _, _ in mons], np.int64)
    mon_u = np.array(
        [
            [
                int(m.compute),
                m.ipm_ceil,
                m.fe_stall_floor,
                m.be_stall_floor,
                m.wb_pct,
                m.ipm_filter,
                m.freq_scale_pct,
                m.freq_scale_floor_mhz,
                m.freq_scale_ceil_mhz,
            ]
            for _, _, m in mons
        ],
        np.uint64,
    ).reshape(n_m, 9)
    mon_mask = np.zeros((n_m, ncpus), np.bool_)
    mon_keys = np.zeros((n_m, rows), np.uint64)
    mon_vals = np.zeros((n_m, rows), np.int64)
    mon_nrows = np.zeros(n_m, np.int64)
    mon_minmax = np.zeros((n_m, 2), np.int64)
    for i, (_, _, m) in enumerate(mons):
        for c in m.cpus():
            if c < ncpus:
                mon_mask[i, c] = True
        scale = 1 if m.is_level else 1000
        for r, (key, val) in enumerate(m.map_rows):
            mon_keys[i, r] = key
            mon_vals[i, r] = val * scale
        mon_nrows[i] = len(m.map_rows)
        mon_minmax[i] = (m.min_freq, m.max_freq)
    return (
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
    )


@register_jitable
def _ctr(row: np.ndarray, e: int) -> np.uint64:
    if e < 0:
        return _U0
    return row[e]


@register_jitable
def _mf100(n: np.uint64, d: np.uint64) -> np.uint64:
    n = n & _M32
    d = d & _M32
    if d == _U0:
        return _U0
    q = _U100 // d
    r = _U100 % d
    return (((q * n) & _M32) + (((r * n) & _M32) // d)) & _M32


@register_jitable
def governor_window(
    deltas: np.ndarray,
    dt_us: np.ndarray,
    gov_i: np.ndarray,
    cmax: np.ndarray,
    grp_ev: np.ndarray,
    grp_adapt: np.ndarray,
    mon_grp: np.ndarray,
    mon_u: np.ndarray,
    mon_mask: np.ndarray,
    mon_keys: np.ndarray,
    mon_vals: np.ndarray,
    mon_nrows: np.ndarray,
    mon_minmax: np.ndarray,
    ipm: np.ndarray,
    f: np.ndarray,
    fe: np.ndarray,
    be: np.ndarray,
    wb: np.ndarray,
    targets: np.ndarray,
    votes: np.ndarray,
) -> None:
    """One governor window over deltas (ncpus, N_COUNTERS) uint64 and dt_us (ncpus,).

    ipm (ncpus, groups) uint64 is the stale-IPM state (decisions.md §2); writes
    targets (monitors,) and votes (groups,) int64 (after the adaptive snap).
    """
    n_cpu = deltas.shape[0]
    n_groups = gov_i[G_NGROUPS]
    method = gov_i[G_METHOD]
    e_inst, e_cyc, e_const, e_fe, e_be = (
        gov_i[G_INST],
        gov_i[G_CYC],
        gov_i[G_CONST],
        gov_i[G_FE],
        gov_i[G_BE],
    )
    for c in range(n_cpu):
        row = deltas[c]
        cyc = _ctr(row, e_cyc)
        if method == 0:
            const = _ctr(row, e_const)
            f[c] = ((cyc * cmax[c]) // const) & _M32 if const != _U0 else _U0
        else:
            dt = dt_us[c]
            f[c] = (cyc // np.uint64(dt)) & _M32 if dt > 0 else _U0
        fe[c] = _U100 if e_fe < 0 else _mf100(_ctr(row, e_fe), cyc)
        be[c] = _U100 if e_be < 0 else _mf100(_ctr(row, e_be), cyc)
        inst = _ctr(row, e_inst)
        for g in range(n_groups):
            miss = _ctr(row, grp_ev[g, 0])
            if miss > _U0:
                ipm[c, g] = (inst // miss) & _M32
            if grp_ev[g, 1] >= 0 and grp_ev[g, 2] >= 0:
                wb[c, g] = _mf100(_ctr(row, grp_ev[g, 1]), _ctr(row, grp_ev[g, 2]))
            else:
                wb[c, g] = _U0
    for g in range(n_groups):
        votes[g] = 0
    for m in range(mon_grp.shape[0]):
        g = mon_grp[m]
        compute = mon_u[m, 0]
        ceil = mon_u[m, 1]
        fe_fl = mon_u[m, 2]
        be_fl = mon_u[m, 3]
        wb_thr = mon_u[m, 4]
        filt = mon_u[m, 5]
        pct = mon_u[m, 6]
        sfloor = mon_u[m, 7]
        sceil = mon_u[m, 8]
        best = _U0
        for c in range(n_cpu):
            if not mon_mask[m, c]:
                continue
            fc = f[c]
            ip = ipm[c, g]
            if compute != _U0 or (wb[c, g] >= wb_thr and ip <= filt):
                cand = fc
            elif ip <= ceil:
                cand = fc
                if pct != _U0 and sfloor < fc and fc < sceil and (fe[c] >= fe_fl or be[c] >= be_fl):
                    prod = (((fc * (ceil - ip)) & _M32) * pct) & _M32
                    den = (ceil * _U100) & _M32
                    boost = prod // den if den != _U0 else _U0
                    boosted = (fc + boost) & _M32
                    cand = sceil if sceil < boosted else boosted
            else:
                continue
            if cand > best:
                best = cand
        nrows = mon_nrows[m]
        if nrows == 0:
            mem = 0
        else:
            mem = mon_vals[m, nrows - 1]
            for r in range(nrows):
                if mon_keys[m, r] >= best:
                    mem = mon_vals[m, r]
                    break
        lo = mon_minmax[m, 0]
        hi = mon_minmax[m, 1]
        if mem < lo:
            mem = lo
        if mem > hi:
            mem = hi
        targets[m] = mem
        if mem > votes[g]:
            votes[g] = mem
    for g in range(n_groups):
        low = grp_adapt[g, 0]
        high = grp_adapt[g, 1]
        v = votes[g]
        if v < low:
            votes[g] = low
        elif v < high:
            votes[g] = high


def _trace(
    deltas: np.ndarray,
    dt_us: np.ndarray,
    gov_i: np.ndarray,
    cmax: np.ndarray,
    grp_ev: np.ndarray,
    grp_adapt: np.ndarray,
    mon_grp: np.ndarray,
    mon_u: np.ndarray,
    mon_mask: np.ndarray,
    mon_keys: np.ndarray,
    mon_vals: np.ndarray,
    mon_nrows: np.ndarray,
    mon_minmax: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """governor_window over every window of a trace, from a fresh state."""
    n_win, n_cpu = dt_us.shape
    n_groups = max(gov_i[G_NGROUPS], 1)
    n_mon = mon_grp.shape[0]
    targets = np.zeros((n_win, n_mon), np.int64)
    votes = np.zeros((n_win, gov_i[G_NGROUPS]), np.int64)
    ipm = np.zeros((n_cpu, n_groups), np.uint64)
    f = np.zeros(n_cpu, np.uint64)
    fe = np.zeros(n_cpu, np.uint64)
    be = np.zeros(n_cpu, np.uint64)
    wb = np.zeros((n_cpu, n_groups), np.uint64)
    t = np.zeros(max(n_mon, 1), np.int64)
    v = np.zeros(n_groups, np.int64)
    for w in range(n_win):
        governor_window(
            deltas[w],
            dt_us[w],
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
            f,
            fe,
            be,
            wb,
            t,
            v,
        )
        for m in range(n_mon):
            targets[w, m] = t[m]
        for g in range(gov_i[G_NGROUPS]):
            votes[w, g] = v[g]
    return targets, votes


_COMPILED: dict[str, Any] = {}


def compiled(name: str) -> Any:
    """The numba-compiled `governor_window` or `_trace` (compiled on first use, then
    loaded from the disk cache next to this module)."""
    fn = _COMPILED.get(name)
    if fn is None:
        src = {"governor_window": governor_window, "trace": _trace}[name]
        fn = numba.njit(cache=True, nogil=True, error_model="numpy")(src)
        _COMPILED[name] = fn
    return fn


def run_trace_numba(config: GovernorConfig, trace: CounterTrace) -> BatchResult:
    """run_trace with the compiled kernel (first call compiles, later calls are cached)."""
    arrays = pack_governor(config, trace.ncpus)
    deltas = np.ascontiguousarray(trace.deltas, dtype=np.uint64)
    dt = np.ascontiguousarray(trace.dt_us, dtype=np.int64)
    targets, votes = compiled("trace")(deltas, dt, *arrays)
    prev = np.vstack([np.zeros((1, votes.shape[1]), np.int64), votes[:-1]])
    return BatchResult(targets, votes, votes != prev)
